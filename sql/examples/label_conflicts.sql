-- Label conflicts: the same or nearly the same picture under different labels.
--
-- Answers: where does the training data contradict itself?
-- Parameters:
--   :layer      feature set for "near": layer alias or OpenCV name; '' = the set with the most vectors (default: '')
--   :threshold  cosine distance below which two images count as near-duplicates (default: 0.01)
-- Returns: kind, distance, path_a, label_a, path_b, label_b.
--   kind 'exact': the same content (same sha256) found at two paths that
--   give it different labels (image_paths.label; an unlabeled path against
--   a labeled one counts); distance 0. images.label keeps the label of the
--   first path.
--   kind 'near': two different images whose vectors are closer than the
--   threshold and whose labels (images.label, both set) differ.
-- Exact conflicts first, then near ones, closest first.
-- Cost: every pair of labeled images is compared: n^2/2 distances (about
-- 2 s for 800 4096-d vectors); for large sets narrow it down first.
WITH chosen AS (
    SELECT fs.id
    FROM feature_sets fs
    WHERE :layer = '' OR fs.layer = :layer COLLATE NOCASE OR fs.alias = :layer COLLATE NOCASE
    ORDER BY (SELECT count(*) FROM features f WHERE f.feature_set_id = fs.id) DESC, fs.id
    LIMIT 1
),
labeled AS MATERIALIZED (
    SELECT i.id, i.path, i.label, f.vector
    FROM features f
    JOIN images i ON i.id = f.image_id
    WHERE f.feature_set_id = (SELECT id FROM chosen) AND i.label IS NOT NULL
),
near AS (
    SELECT a.path AS path_a, a.label AS label_a, b.path AS path_b, b.label AS label_b,
           vec_distance_cosine(a.vector, b.vector) AS distance
    FROM labeled a
    JOIN labeled b ON a.id < b.id AND a.label <> b.label
)
SELECT 'exact' AS kind, 0.0 AS distance, a.path AS path_a, a.label AS label_a, b.path AS path_b, b.label AS label_b
FROM image_paths a
JOIN image_paths b ON b.image_id = a.image_id AND a.rowid < b.rowid
WHERE a.label IS NOT b.label
UNION ALL
SELECT 'near', distance, path_a, label_a, path_b, label_b
FROM near
WHERE distance < CAST(:threshold AS REAL)
ORDER BY kind, distance, path_a, path_b;
