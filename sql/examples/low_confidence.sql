-- Low-confidence predictions of the last predict run (or of run :run).
--
-- Answers: which new images should a person look at?
-- Parameters:
--   :threshold  list predictions whose probability is below this (default: 0.6)
--   :run        a run id, or 'last' (or 0) for the latest predict run (default: last)
-- Returns, least confident first: probability (of the predicted class),
-- predicted, label (the image's own label, if it has one), path (as given
-- to predict), classifier, run. Predictions without a probability (a
-- classifier fitted without one) are left out. Only `pipeline predict
-- --store` records predictions.
WITH chosen AS (
    SELECT id
    FROM runs
    WHERE CASE WHEN :run IN ('last', 0) THEN command = 'predict' ELSE id = :run END
    ORDER BY id DESC
    LIMIT 1
)
SELECT p.probability              AS probability,
       p.label                    AS predicted,
       i.label                    AS label,
       COALESCE(p.path, i.path)   AS path,
       c.name                     AS classifier,
       p.run_id                   AS run
FROM predictions p
JOIN images i      ON i.id = p.image_id
JOIN classifiers c ON c.id = p.classifier_id
WHERE p.run_id = (SELECT id FROM chosen)
  AND p.probability < CAST(:threshold AS REAL)
ORDER BY p.probability, p.id;
