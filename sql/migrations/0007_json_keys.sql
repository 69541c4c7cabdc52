-- 0007: the JSON columns use snake_case keys, as every --json output does (docs/JSON.md).
-- classifiers.params and sweeps.params held classify.Params under Go's field names
-- ({"Classifier":"svm","C":1,"Gamma":{"Rule":"scale","Value":0},"Transform":{"L2":false,"Scale":"none","PCA":0},...}),
-- classifiers.transform {"L2":...,"Scale":...,"PCA":...} and classifiers.metrics a grid_best
-- {"Stage":...,"Log2C":...,"MeanAccuracy":...}. This migration renames those keys to what the
-- program writes now ({"classifier":"svm","c":1,"gamma":{"rule":"scale","value":0},"transform":{"l2":false,...},...}),
-- at the top level and one level down (gamma, transform, grid_best); values and other keys stay.
-- Rows already in the new form are left alone. Readers of the old keys are gone: after this
-- migration no stored row has them.

-- What the classifier columns hold (the comments of 0002 were written before the code):
-- column classifiers.kind: the classifier, as `fit --clf` names it: softmax, mlp, svm, linear, logreg, knn or forest (an svm's kernel is params.kernel)
-- column classifiers.params: JSON object, every hyper-parameter of the fit (snake_case keys: classifier, kernel, c, gamma {rule, value}, degree, coef0, probability, balanced, tol, cache_mb, k, metric, trees, max_features, hidden, dropout, epochs, patience, batch_size, learning_rate, alpha, val_frac, seed, transform); docs/JSON.md says what each means
-- column classifiers.transform: JSON object, the feature transform as fit was asked for it: {"l2": bool, "scale": "none", "standard" or "minmax", "pca": components, 0 = none} (the same as params.transform); what was fitted from the training split (means, scales, principal components) is inside model, not here
-- column classifiers.metrics: JSON object: train, test (vectors), train_counts (per class, in labels order), cv ({folds, mean_accuracy, std_accuracy, mean_macro_f1, std_macro_f1}, null without fit --cv), fit_seconds, grid_best (the grid search's best point {stage, log2_c, log2_gamma, c, gamma, mean_accuracy, std_accuracy, mean_macro_f1, std_macro_f1}, null without --grid), grid_edges, final, final_train; NULL if none
-- column sweeps.params: JSON object: the hyper-parameters cross-validated, with the keys of classifiers.params

-- The old key and the new one (a temporary table: gone at the end of the migration).
CREATE TEMP TABLE json_keys_0007 (old TEXT PRIMARY KEY, new TEXT NOT NULL);
INSERT INTO temp.json_keys_0007 (old, new) VALUES
    ('Classifier', 'classifier'), ('Transform', 'transform'), ('Kernel', 'kernel'), ('C', 'c'),
    ('Gamma', 'gamma'), ('Degree', 'degree'), ('Coef0', 'coef0'), ('Probability', 'probability'),
    ('Balanced', 'balanced'), ('Tol', 'tol'), ('CacheMB', 'cache_mb'), ('K', 'k'),
    ('Metric', 'metric'), ('Trees', 'trees'), ('MaxFeatures', 'max_features'), ('Hidden', 'hidden'),
    ('Dropout', 'dropout'), ('Epochs', 'epochs'), ('Patience', 'patience'),
    ('BatchSize', 'batch_size'), ('LearningRate', 'learning_rate'), ('Alpha', 'alpha'),
    ('ValFrac', 'val_frac'), ('Seed', 'seed'), ('Rule', 'rule'), ('Value', 'value'), ('L2', 'l2'),
    ('Scale', 'scale'), ('PCA', 'pca'), ('Stage', 'stage'), ('Log2C', 'log2_c'),
    ('Log2Gamma', 'log2_gamma'), ('MeanAccuracy', 'mean_accuracy'), ('StdAccuracy', 'std_accuracy'),
    ('MeanMacroF1', 'mean_macro_f1'), ('StdMacroF1', 'std_macro_f1');

-- The JSON values to rewrite: every object that holds an old key.
CREATE TEMP TABLE json_values_0007 (tbl TEXT NOT NULL, col TEXT NOT NULL, id INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tbl, col, id));
INSERT INTO temp.json_values_0007 (tbl, col, id, doc)
    SELECT 'classifiers', 'params', id, params FROM classifiers UNION ALL
    SELECT 'classifiers', 'transform', id, transform FROM classifiers WHERE transform IS NOT NULL UNION ALL
    SELECT 'classifiers', 'metrics', id, metrics FROM classifiers WHERE metrics IS NOT NULL UNION ALL
    SELECT 'sweeps', 'params', id, params FROM sweeps;
DELETE FROM temp.json_values_0007 WHERE NOT (json_valid(doc) AND json_type(doc) = 'object'
    AND EXISTS (SELECT 1 FROM json_tree(json_values_0007.doc) t JOIN temp.json_keys_0007 k ON k.old = t.key));

-- Each object's keys renamed, and those of the objects it holds (-> gives each value as JSON text).
UPDATE temp.json_values_0007 SET doc = (
    SELECT json_group_object(coalesce(k.new, e.key), json(CASE WHEN e.type = 'object' THEN (
            SELECT json_group_object(coalesce(k2.new, f.key), json(e.value -> f.fullkey))
            FROM json_each(e.value) f LEFT JOIN temp.json_keys_0007 k2 ON k2.old = f.key)
        ELSE json_values_0007.doc -> e.fullkey END))
    FROM json_each(json_values_0007.doc) e LEFT JOIN temp.json_keys_0007 k ON k.old = e.key);

UPDATE classifiers SET params = (SELECT doc FROM temp.json_values_0007 v WHERE (v.tbl, v.col, v.id) = ('classifiers', 'params', classifiers.id))
    WHERE id IN (SELECT id FROM temp.json_values_0007 WHERE tbl = 'classifiers' AND col = 'params');
UPDATE classifiers SET transform = (SELECT doc FROM temp.json_values_0007 v WHERE (v.tbl, v.col, v.id) = ('classifiers', 'transform', classifiers.id))
    WHERE id IN (SELECT id FROM temp.json_values_0007 WHERE tbl = 'classifiers' AND col = 'transform');
UPDATE classifiers SET metrics = (SELECT doc FROM temp.json_values_0007 v WHERE (v.tbl, v.col, v.id) = ('classifiers', 'metrics', classifiers.id))
    WHERE id IN (SELECT id FROM temp.json_values_0007 WHERE tbl = 'classifiers' AND col = 'metrics');
UPDATE sweeps SET params = (SELECT doc FROM temp.json_values_0007 v WHERE (v.tbl, v.col, v.id) = ('sweeps', 'params', sweeps.id))
    WHERE id IN (SELECT id FROM temp.json_values_0007 WHERE tbl = 'sweeps' AND col = 'params');

DROP TABLE temp.json_values_0007;
DROP TABLE temp.json_keys_0007;
