-- 0003: the inference engine is part of a feature set's identity.
--
-- pipeline: foreign_keys off
-- (SQLite cannot change a table's UNIQUE key in place: feature_sets is
-- rebuilt with SQLite's documented procedure, foreign keys off for the
-- migration and checked before it commits. Ids, and so every features,
-- classifiers and predictions row, are kept.)
--
-- engine: which library computed the vectors: 'opencv' (OpenCV's DNN
-- module; every set made before this migration) or 'onednn' (oneDNN
-- primitives, ONNX models only). Vectors of two engines are never mixed,
-- even when they agree to 1e-5, as fp32 and bf16 codes are not: precision
-- now also takes 'bf16' (oneDNN, on CPUs with avx512_bf16 or AMX).

DROP VIEW feature_vectors;

CREATE TABLE feature_sets_new (
    id            INTEGER PRIMARY KEY,
    model_sha256  TEXT    NOT NULL,      -- SHA-256 of the model file (ONNX, caffemodel or .pb)
    model_name    TEXT    NOT NULL,      -- catalog name (vgg16) or file name
    layer         TEXT    NOT NULL,      -- OpenCV layer name the vector is read from (resolved)
    alias         TEXT,                  -- the alias that resolved to it (fc2, avg_pool, ...), NULL if none
    pooling       TEXT    NOT NULL CHECK (pooling IN ('avg', 'max', 'none')),
                                         -- how a C x H x W output became a vector: mean or max over H x W,
                                         -- or 'none': flattened in C x H x W order (index = c*H*W + h*W + w)
    preprocess    TEXT    NOT NULL,      -- canonical JSON of the preprocessing (size, resize, interp, swap_rb, scale, mean, std)
    precision     TEXT    NOT NULL DEFAULT 'fp32', -- arithmetic of the forward pass: fp32, fp16 (OpenCL/CUDA) or bf16 (oneDNN)
    shape         TEXT    NOT NULL,      -- the layer's output shape per image before pooling, e.g. '512x7x7' or '4096'
    dim           INTEGER NOT NULL CHECK (dim > 0), -- length of every vector in this set
    encoding      TEXT    NOT NULL DEFAULT 'float32le', -- vector BLOB: dim little-endian IEEE-754 float32 (what sqlite-vec reads)
    created_at    TEXT    NOT NULL,
    engine        TEXT    NOT NULL DEFAULT 'opencv' CHECK (engine IN ('opencv', 'onednn')),
                                         -- the library that computed the vectors
    UNIQUE (model_sha256, layer, pooling, preprocess, precision, engine)
);

INSERT INTO feature_sets_new (id, model_sha256, model_name, layer, alias, pooling, preprocess, precision, shape, dim, encoding, created_at, engine)
SELECT id, model_sha256, model_name, layer, alias, pooling, preprocess, precision, shape, dim, encoding, created_at, 'opencv'
FROM feature_sets;

DROP TABLE feature_sets;
ALTER TABLE feature_sets_new RENAME TO feature_sets;

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

-- The engine an extract or predict run computed its vectors on (opencv or
-- onednn); NULL for other commands, for runs before
-- this migration, and for runs that ended before a model was loaded.
ALTER TABLE runs ADD COLUMN engine TEXT;
