-- 0006: where the model file of a feature set is, so that `predict NAME` and `similar` find it without
-- being told, from any working directory, when its name (a file name for a model given by path) does not resolve.

-- The absolute path of the model file extract read, as last extracted; NULL for sets made before this column.
-- Only a hint: the file found there is used only when its SHA-256 is the set's model_sha256. Not part of the
-- set's identity (like model_name): the same file at two paths gives one feature set, and merge ignores it.
ALTER TABLE feature_sets ADD COLUMN model_path TEXT; -- absolute path of the model file (weights) extract read, as last extracted; NULL = unknown (made before schema 6)
