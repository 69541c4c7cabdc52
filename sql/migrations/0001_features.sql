-- 0001: images, the feature sets computed on them, and the runs that did it.
--
-- This schema is a public interface: people query it with SQL. Migrations are
-- append-only; a change is a new numbered file. Times are RFC 3339 UTC text
-- ('2026-11-28T12:00:00.123Z'). Hashes are lowercase hex SHA-256 of the file bytes.

-- One row per distinct image content. The same bytes seen at two paths are
-- one image with two rows in image_paths.
CREATE TABLE images (
    id         INTEGER PRIMARY KEY,
    sha256     TEXT    NOT NULL UNIQUE,  -- SHA-256 of the file bytes (hex)
    label      TEXT,                     -- class: first-level sub-folder or CSV label; NULL = unlabeled
    path       TEXT    NOT NULL,         -- canonical path: the first path this content was seen at
    width      INTEGER NOT NULL,         -- pixels, after EXIF orientation
    height     INTEGER NOT NULL,         -- pixels, after EXIF orientation
    bytes      INTEGER NOT NULL,         -- file size in bytes
    format     TEXT    NOT NULL,         -- container detected from the bytes: jpeg, png, webp, bmp, tiff, ...
    first_seen TEXT    NOT NULL          -- when this content was first stored
);
CREATE INDEX images_label ON images(label);

-- Every path an image was seen at. A path that later holds other bytes
-- points at the new image (the row is replaced).
CREATE TABLE image_paths (
    path      TEXT    PRIMARY KEY,       -- absolute, cleaned path
    relpath   TEXT    NOT NULL,          -- path relative to the --images root (or as listed)
    image_id  INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    label     TEXT,                      -- the label this path gave (may differ from images.label: see label conflicts)
    size      INTEGER NOT NULL,          -- file size when last read: with mtime_ns, lets a rerun skip unchanged files
    mtime_ns  INTEGER NOT NULL,          -- file modification time when last read, nanoseconds since the Unix epoch
    last_seen TEXT    NOT NULL,
    run_id    INTEGER REFERENCES runs(id)
);
CREATE INDEX image_paths_image ON image_paths(image_id);
CREATE INDEX image_paths_relpath ON image_paths(relpath);

-- One row per way of turning an image into a vector: which model file
-- (identified by its SHA-256, not its name), which layer, which pooling and
-- which preprocessing. Vectors of two feature sets are never mixed.
CREATE TABLE feature_sets (
    id            INTEGER PRIMARY KEY,
    model_sha256  TEXT    NOT NULL,      -- SHA-256 of the model file (ONNX, caffemodel or .pb)
    model_name    TEXT    NOT NULL,      -- catalog name (vgg16) or file name
    layer         TEXT    NOT NULL,      -- OpenCV layer name the vector is read from (resolved)
    alias         TEXT,                  -- the alias that resolved to it (fc2, avg_pool, ...), NULL if none
    pooling       TEXT    NOT NULL CHECK (pooling IN ('avg', 'max', 'none')),
                                         -- how a C x H x W output became a vector: mean or max over H x W,
                                         -- or 'none': flattened in C x H x W order (index = c*H*W + h*W + w)
    preprocess    TEXT    NOT NULL,      -- canonical JSON of the preprocessing (size, resize, interp, swap_rb, scale, mean, std)
    precision     TEXT    NOT NULL DEFAULT 'fp32', -- arithmetic of the forward pass: fp32 or fp16
    shape         TEXT    NOT NULL,      -- the layer's output shape per image before pooling, e.g. '512x7x7' or '4096'
    dim           INTEGER NOT NULL CHECK (dim > 0), -- length of every vector in this set
    encoding      TEXT    NOT NULL DEFAULT 'float32le', -- vector BLOB: dim little-endian IEEE-754 float32 (what sqlite-vec reads)
    created_at    TEXT    NOT NULL,
    UNIQUE (model_sha256, layer, pooling, preprocess, precision)
);

-- The CNN codes: one vector per (image, feature set).
CREATE TABLE features (
    image_id       INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    feature_set_id INTEGER NOT NULL REFERENCES feature_sets(id) ON DELETE CASCADE,
    vector         BLOB    NOT NULL,     -- feature_sets.encoding; length(vector) = 4 * feature_sets.dim
    run_id         INTEGER REFERENCES runs(id),
    PRIMARY KEY (image_id, feature_set_id)
);
CREATE INDEX features_set ON features(feature_set_id);

-- Every command that wrote to the database.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    command     TEXT    NOT NULL,        -- extract, fit, predict, ...
    args        TEXT    NOT NULL,        -- the command line, as a JSON array of strings
    started_at  TEXT    NOT NULL,
    ended_at    TEXT,                    -- NULL while running (or if the process was killed)
    status      TEXT    NOT NULL,        -- running, ok, partial (some files failed), interrupted, failed, abandoned (killed)
    exit_code   INTEGER,
    pid         INTEGER,
    host        TEXT,
    seen        INTEGER NOT NULL DEFAULT 0, -- input files looked at
    extracted   INTEGER NOT NULL DEFAULT 0, -- (image, feature set) vectors computed and stored by this run
    present     INTEGER NOT NULL DEFAULT 0, -- files whose vectors were already stored
    duplicates  INTEGER NOT NULL DEFAULT 0, -- files whose content equals another file's
    failed      INTEGER NOT NULL DEFAULT 0, -- files that got a failures row
    message     TEXT                     -- the error that ended the run, if any
);

-- Files a run could not use, and why. The run goes on without them.
CREATE TABLE failures (
    id      INTEGER PRIMARY KEY,
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    path    TEXT    NOT NULL,
    stage   TEXT    NOT NULL,            -- read, decode, size, forward, vector
    message TEXT    NOT NULL,
    at      TEXT    NOT NULL
);
CREATE INDEX failures_run ON failures(run_id);

-- For SQL users: one row per image and feature set, with the canonical path.
CREATE VIEW feature_vectors AS
SELECT i.path                      AS path,
       i.label                     AS label,
       i.sha256                    AS sha256,
       fs.model_name               AS model,
       COALESCE(fs.alias, fs.layer) AS layer,
       fs.layer                    AS opencv_layer,
       fs.pooling                  AS pooling,
       fs.dim                      AS dim,
       f.vector                    AS vector,
       i.id                        AS image_id,
       fs.id                       AS feature_set_id
FROM features f
JOIN images i        ON i.id = f.image_id
JOIN feature_sets fs ON fs.id = f.feature_set_id;
