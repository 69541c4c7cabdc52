-- Class balance: how many distinct images each label has, and the share of
-- the labeled total. Unlabeled images (label NULL) are listed as '(none)'.
SELECT COALESCE(label, '(none)')                                  AS label,
       count(*)                                                   AS images,
       round(100.0 * count(*) / (SELECT count(*) FROM images), 1) AS percent
FROM images
GROUP BY label
ORDER BY images DESC, label;
