-- Class balance: images per label, their share, and how the train/test split divides them.
--
-- Answers: is a class under-represented, and is the held-out split fair?
-- Parameters: none.
-- Returns, largest class first: label ('(none)' for unlabeled images),
-- images (distinct contents: copies count once), percent (of all images,
-- so the column sums to 100 up to rounding), train and test (images of the
-- class on each side of the split), unsplit (images not yet in the split:
-- the next `pipeline fit` assigns labeled ones; unlabeled ones never are).
SELECT COALESCE(i.label, '(none)')                                   AS label,
       count(*)                                                      AS images,
       round(100.0 * count(*) / (SELECT count(*) FROM images), 1)    AS percent,
       count(CASE WHEN s.part = 'train' THEN 1 END)                  AS train,
       count(CASE WHEN s.part = 'test' THEN 1 END)                   AS test,
       count(CASE WHEN s.part IS NULL THEN 1 END)                    AS unsplit
FROM images i
LEFT JOIN splits s ON s.image_id = i.id
GROUP BY i.label
ORDER BY images DESC, label;
