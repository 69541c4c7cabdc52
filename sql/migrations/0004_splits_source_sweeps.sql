-- 0004: who chose each image's split, and the results of pipeline sweep.

-- Who put the image in its part: 'auto' (AssignSplit's stratified split, made by fit and sweep; rows from before this migration are 'auto') or 'user' (a split-style folder layout DIR/{train,val,validation,test}/<class>/ or extract --split). The automatic split never moves or counts 'user' rows; fit --reset-split deletes only 'auto' rows.
ALTER TABLE splits ADD COLUMN source TEXT NOT NULL DEFAULT 'auto' CHECK (source IN ('auto', 'user')); -- 'auto' (the stratified split) or 'user' (folder layout, extract --split)

-- One row per (sweep run, feature set, classifier): the stratified K-fold
-- cross-validation of one classifier on one layer's codes, over the training
-- split (pipeline sweep). Accuracies and F1 are fractions in [0, 1]; a
-- metric that is not a number is NULL.
-- Accuracy by depth for a run:
--   SELECT layer, classifier, accuracy FROM sweeps WHERE run_id = ? ORDER BY depth, classifier
CREATE TABLE sweeps (
    id             INTEGER PRIMARY KEY,
    run_id         INTEGER NOT NULL REFERENCES runs(id),
    feature_set_id INTEGER NOT NULL REFERENCES feature_sets(id),
    layer          TEXT    NOT NULL,         -- the layer as the sweep named it (its alias, else the OpenCV name)
    depth          INTEGER NOT NULL,         -- position of the layer in the network: OpenCV's layer id (topological; larger is deeper)
    classifier     TEXT    NOT NULL,         -- classifier kind, as fit --clf takes it (softmax, svm, mlp, logreg, ...)
    params         TEXT    NOT NULL,         -- JSON object: the hyper-parameters cross-validated (as classifiers.params)
    folds          INTEGER NOT NULL,         -- K of the K-fold cross-validation
    train          INTEGER NOT NULL,         -- training-split vectors cross-validated
    accuracy       REAL,                     -- mean accuracy over the folds
    accuracy_std   REAL,                     -- population standard deviation of the accuracy over the folds
    macro_f1       REAL,                     -- mean macro-averaged F1 over the folds
    macro_f1_std   REAL,                     -- its standard deviation over the folds
    fit_seconds    REAL,                     -- mean wall time of one fold's fit (on (K-1)/K of the training split)
    recommended    INTEGER NOT NULL DEFAULT 0 CHECK (recommended IN (0, 1)), -- 1 on the row the sweep's recommendation names
    at             TEXT    NOT NULL,
    UNIQUE (run_id, feature_set_id, classifier)
);
