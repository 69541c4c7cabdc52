-- Exact duplicates: the same file content stored at several paths.
--
-- Answers: which files are byte-identical copies of each other?
-- Parameters: none.
-- Returns one row per path: sha256, copies (paths with this content),
-- path, label (the label that path gives), canonical (1 for the path
-- images.path names, whose label the image carries). The content is one
-- image with one vector per feature set, however many copies: copies never
-- straddle the train/test split. Most-copied content first.
SELECT i.sha256                     AS sha256,
       c.copies                     AS copies,
       p.path                       AS path,
       p.label                      AS label,
       (p.path = i.path)            AS canonical
FROM (SELECT image_id, count(*) AS copies FROM image_paths GROUP BY image_id HAVING count(*) > 1) c
JOIN images i      ON i.id = c.image_id
JOIN image_paths p ON p.image_id = c.image_id
ORDER BY c.copies DESC, i.sha256, p.path;
