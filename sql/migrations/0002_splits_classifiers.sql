-- 0002: settings, the train/test split, fitted classifiers and their predictions.
--
-- Same conventions as 0001: times are RFC 3339 UTC text, JSON columns hold
-- compact JSON text, ids are INTEGER PRIMARY KEYs.

-- Database-wide settings that must not change silently once used, as text.
-- Known keys:
--   split.test_fraction  the test fraction of the split (a decimal such as '0.2'),
--                        stored on first use; splits are never recomputed with another.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The train/test split, per image (content, not path), so that two copies of
-- the same bytes can never land on both sides. Assigned once per image and
-- never moved: adding images adds rows and leaves the existing ones alone.
-- Stratified per label (images.label) and deterministic: within a label, new
-- images are taken in sha256 order and each goes to 'test' while the label's
-- test count is below round(test_fraction x images of that label assigned so
-- far). Unlabeled images get no row.
CREATE TABLE splits (
    image_id    INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    part        TEXT    NOT NULL CHECK (part IN ('train', 'test')),
    assigned_at TEXT    NOT NULL
);
CREATE INDEX splits_part ON splits(part);

-- Fitted classifiers, by user-chosen name. The model itself is an opaque BLOB
-- in the format of its kind (see classify/); everything needed to apply it to
-- a vector of feature_set_id is in this row.
CREATE TABLE classifiers (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,  -- chosen by the user (pipeline fit --name)
    kind           TEXT    NOT NULL,         -- logistic, linear-svm, svm-rbf, knn, ...
    params         TEXT    NOT NULL,         -- JSON object: hyper-parameters as fitted (C, gamma, ...)
    transform      TEXT,                     -- JSON: feature transform applied before the model
                                             -- (L2 normalisation, standardisation means/scales, PCA), NULL = none
    labels         TEXT    NOT NULL,         -- JSON array of class names; array index = class id in the model
    feature_set_id INTEGER NOT NULL REFERENCES feature_sets(id),
    dim            INTEGER NOT NULL CHECK (dim > 0), -- input vector length (= feature_sets.dim)
    metrics        TEXT,                     -- JSON: training and cross-validation metrics, NULL if none
    command        TEXT    NOT NULL,         -- the command line that fitted it
    created_at     TEXT    NOT NULL,
    run_id         INTEGER REFERENCES runs(id),
    model          BLOB    NOT NULL          -- serialized model
);

-- What a classifier said about an image. A prediction is kept per run:
-- predicting the same image again adds a row (see runs for when).
CREATE TABLE predictions (
    id            INTEGER PRIMARY KEY,
    image_id      INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    classifier_id INTEGER NOT NULL REFERENCES classifiers(id) ON DELETE CASCADE,
    path          TEXT,                      -- the path the image was read from for this prediction
    label         TEXT    NOT NULL,          -- predicted class (one of classifiers.labels)
    probability   REAL,                      -- probability of that class, NULL when the model gives none
    run_id        INTEGER REFERENCES runs(id),
    at            TEXT    NOT NULL
);
CREATE INDEX predictions_classifier_image ON predictions(classifier_id, image_id);
CREATE INDEX predictions_image ON predictions(image_id);
