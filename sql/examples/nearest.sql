-- Nearest neighbours of an image by cosine distance in one feature set.
--
-- Answers: which stored images does the CNN see as most like this one?
-- Parameters:
--   :image  the image: its sha256, a stored path, its path relative to the --images root, or the end of a path (cats/cat.12.jpg) (required)
--   :layer  feature set: layer alias or OpenCV name; '' = the set with the most vectors that has the image (default: '')
--   :k      how many neighbours (default: 10)
-- Returns, nearest first: rank, distance (cosine distance: 0 = same direction,
-- 1 = orthogonal, 2 = opposite), path (canonical), label, sha256.
-- The image itself is left out, at whatever path; so are its exact copies
-- (same bytes = same image). If :image names several different images (the
-- same file name in two folders), the closest match kind wins (sha256 or
-- full path, then relative path, then path end) and their neighbours are
-- merged: give more of the path. No rows: the image is not stored, or has
-- no vector in that layer.
-- Cost: one distance per vector of the set, a scan: about 60 ms per
-- thousand 4096-d vectors.
-- sqlite3 shell: .param set :image 'cats/cat.12.jpg' / .param set :layer fc2 / .param set :k 10
WITH matches(image_id, kind) AS (
    SELECT id, 0 FROM images WHERE sha256 = lower(:image) OR path = :image
    UNION ALL
    SELECT image_id, 0 FROM image_paths WHERE path = :image
    UNION ALL
    SELECT image_id, 1 FROM image_paths WHERE relpath = :image
    UNION ALL
    SELECT image_id, 2 FROM image_paths WHERE substr(path, -length(:image) - 1) = '/' || :image
),
target AS (
    SELECT DISTINCT image_id FROM matches WHERE kind = (SELECT min(kind) FROM matches)
),
chosen AS (
    SELECT fs.id
    FROM feature_sets fs
    WHERE (:layer = '' OR fs.layer = :layer COLLATE NOCASE OR fs.alias = :layer COLLATE NOCASE)
      AND EXISTS (SELECT 1 FROM features f WHERE f.feature_set_id = fs.id AND f.image_id IN target)
    ORDER BY (SELECT count(*) FROM features f WHERE f.feature_set_id = fs.id) DESC, fs.id
    LIMIT 1
),
query AS (
    SELECT f.image_id, f.vector
    FROM features f
    WHERE f.feature_set_id = (SELECT id FROM chosen) AND f.image_id IN target
),
distances AS (
    SELECT f.image_id, min(vec_distance_cosine(f.vector, q.vector)) AS distance
    FROM features f, query q
    WHERE f.feature_set_id = (SELECT id FROM chosen)
      AND f.image_id NOT IN (SELECT image_id FROM query)
    GROUP BY f.image_id
)
SELECT row_number() OVER (ORDER BY d.distance, i.id) AS rank,
       d.distance                                    AS distance,
       i.path                                        AS path,
       i.label                                       AS label,
       i.sha256                                      AS sha256
FROM distances d
JOIN images i ON i.id = d.image_id
WHERE d.distance IS NOT NULL  -- an all-zero vector has no direction
ORDER BY d.distance, i.id
LIMIT :k;
