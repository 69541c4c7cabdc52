-- Failures of the last run that read files (or of run :run): which files, at which stage, why.
--
-- Answers: what did the last extract or predict leave out, and why?
-- Parameters:
--   :run  a run id, or 'last' (or 0) for the latest extract or predict run (default: last)
-- Returns, in the order they happened: run, command, status (of the run),
-- path, stage (read, decode, size, forward, vector), message, at.
-- No rows: that run had no failures (pipeline runs shows its counts).
WITH chosen AS (
    SELECT id
    FROM runs
    WHERE CASE WHEN :run IN ('last', 0) THEN command IN ('extract', 'predict') ELSE id = :run END
    ORDER BY id DESC
    LIMIT 1
)
SELECT r.id      AS run,
       r.command AS command,
       r.status  AS status,
       f.path    AS path,
       f.stage   AS stage,
       f.message AS message,
       f.at      AS at
FROM failures f
JOIN runs r ON r.id = f.run_id
WHERE f.run_id = (SELECT id FROM chosen)
ORDER BY f.id;
