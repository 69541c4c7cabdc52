-- Centroid outliers: images far from the centroid of their class (likely mislabels).
--
-- Answers: which labeled images does the CNN place away from the rest of
-- their class, and which class are they closest to instead?
-- Parameters:
--   :layer  feature set: layer alias or OpenCV name; '' = the set with the most vectors (default: '')
--   :limit  how many images to return (default: 20)
-- Returns, farthest first: path, label, distance (cosine distance to the
-- centroid of the *other* images of its class), nearest_label (the class
-- whose centroid is nearest: its own, by the same leave-one-out centroid,
-- or another), nearest_distance, class_size.
-- A row whose nearest_label differs from label is a good candidate for a
-- wrong label. Unlabeled images and classes of one image are left out.
-- The centroid is the mean vector of a class; cosine distance ignores
-- scale, so the sum serves as well. SQLite has no vector average: a
-- recursive CTE adds the vectors of each class one by one with sqlite-vec's
-- vec_add (float32), and vec_sub removes the image itself from its own
-- class's sum. About 0.2 s for 800 4096-d vectors and 0.9 s for 4,000:
-- linear in their number (averaging through vec_to_json and json_each
-- instead takes 11 s for 800).
-- Needs SQLite 3.35+ (MATERIALIZED) and sqlite-vec.
WITH RECURSIVE
chosen AS (
    SELECT fs.id
    FROM feature_sets fs
    WHERE :layer = '' OR fs.layer = :layer COLLATE NOCASE OR fs.alias = :layer COLLATE NOCASE
    ORDER BY (SELECT count(*) FROM features f WHERE f.feature_set_id = fs.id) DESC, fs.id
    LIMIT 1
),
members AS MATERIALIZED (
    SELECT i.id AS image_id, i.label AS label, f.vector AS vector,
           row_number() OVER (PARTITION BY i.label ORDER BY i.id) AS n
    FROM features f
    JOIN images i ON i.id = f.image_id
    WHERE f.feature_set_id = (SELECT id FROM chosen) AND i.label IS NOT NULL
),
sums(label, n, total) AS (
    SELECT label, n, vector FROM members WHERE n = 1
    UNION ALL
    SELECT m.label, m.n, vec_add(s.total, m.vector)
    FROM sums s
    JOIN members m ON m.label = s.label AND m.n = s.n + 1
),
centroids AS MATERIALIZED (
    -- the row with the largest n of each class holds the sum of all of it
    SELECT label, max(n) AS size, total FROM sums GROUP BY label
),
distances AS MATERIALIZED (
    SELECT m.image_id, m.label, c.label AS class, c.size AS size,
           CASE WHEN c.label = m.label
                THEN vec_distance_cosine(m.vector, vec_sub(c.total, m.vector))
                ELSE vec_distance_cosine(m.vector, c.total)
           END AS distance
    FROM members m CROSS JOIN centroids c
    WHERE c.label <> m.label OR c.size > 1
),
nearest AS (
    -- SQLite fills the bare column "class" from the row where min() is reached
    SELECT image_id, class, min(distance) AS distance FROM distances GROUP BY image_id
)
SELECT i.path          AS path,
       own.label       AS label,
       own.distance    AS distance,
       nearest.class   AS nearest_label,
       nearest.distance AS nearest_distance,
       own.size        AS class_size
FROM distances own
JOIN nearest ON nearest.image_id = own.image_id
JOIN images i ON i.id = own.image_id
WHERE own.class = own.label
ORDER BY own.distance DESC, i.id
LIMIT :limit;
