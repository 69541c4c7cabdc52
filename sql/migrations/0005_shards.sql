-- 0005: sharded extraction (`extract --shard I/N`) and merged databases (`pipeline merge`).
-- Every database gets a random identity (settings 'database.id'), so that a merge can tell
-- which database a run came from and copy it once, whatever the file is called or where it is mounted.

-- The shard a run extracted, 'I/N' (0-based I of N), NULL for a run over all its inputs.
ALTER TABLE runs ADD COLUMN shard TEXT; -- 'I/N': the run took the inputs whose key hashes to shard I of N (0-based); NULL = all inputs
ALTER TABLE runs ADD COLUMN source_db TEXT; -- for a run copied by `pipeline merge`: settings 'database.id' of the database it was recorded in; NULL = recorded here
ALTER TABLE runs ADD COLUMN source_run_id INTEGER; -- for a copied run: its runs.id in that database; NULL = recorded here

-- A run is copied once: merging the same database again finds it here.
CREATE UNIQUE INDEX runs_source ON runs(source_db, source_run_id);

-- The database's identity: 32 hex digits, made once. A copy of the file (cp) shares it.
INSERT OR IGNORE INTO settings (key, value) VALUES ('database.id', lower(hex(randomblob(16))));
