-- Statements behind the model assets, the registry and the `breakout models` CLI.

-- name: training_rows
-- Signals of one side with a final, filled outcome, with their features; oldest first.
SELECT i.*, o.status, o.r_multiple, o.net_r_multiple, o.exit_session
FROM model_inputs i
JOIN signal_outcomes o USING (signal_id)
WHERE i.side = :side AND o.status IN ('win', 'loss', 'expired')
ORDER BY i.session, i.signal_id;

-- name: insert_experiment
INSERT INTO model_experiments (experiment_id, side, created_at, params, features, train_range,
                               test_range, split, metrics, artifact_path, model_sha256,
                               promoted, promotion)
VALUES (:experiment_id, :side, :created_at, CAST(:params AS jsonb), CAST(:features AS jsonb),
        daterange(:train_first, :train_last, '[]'), daterange(:test_first, :test_last, '[]'),
        CAST(:split AS jsonb), CAST(:metrics AS jsonb), :artifact_path, :model_sha256,
        :promoted, CAST(:promotion AS jsonb));

-- name: set_promoted
UPDATE model_experiments SET promoted = (experiment_id = :experiment_id) WHERE side = :side;

-- name: get_experiment
SELECT experiment_id, side, created_at, artifact_path, model_sha256, promoted, promotion,
       metrics -> 'metrics' AS metrics
FROM model_experiments WHERE experiment_id = :experiment_id;

-- name: list_experiments
SELECT experiment_id, side, created_at, promoted,
       lower(train_range) AS train_first, upper(train_range) - 1 AS train_last,
       lower(test_range) AS test_first, upper(test_range) - 1 AS test_last,
       jsonb_array_length(features) AS features,
       (metrics -> 'metrics' ->> 'roc_auc')::float8 AS roc_auc,
       (metrics -> 'metrics' ->> 'rows')::int AS test_rows,
       promotion ->> 'passed' AS passed_rules
FROM model_experiments
ORDER BY side, created_at;
