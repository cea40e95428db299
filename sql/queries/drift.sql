-- Statements behind the drift watch (`model_drift`) and its retrain sensor.

-- name: experiment
-- The serving model's record: its held-out reliability table and how its rows were split.
SELECT experiment_id, split, metrics -> 'calibration' AS held_out_calibration
FROM model_experiments WHERE experiment_id = :experiment_id;

-- name: training_candidates
-- One side's signals with a final, filled outcome signalled inside the model's training range:
-- the training rows are these minus its held-out rows (and, split in time, minus the embargo).
SELECT i.*, o.exit_session
FROM model_inputs i
JOIN signal_outcomes o USING (signal_id)
WHERE i.side = :side AND o.status IN ('win', 'loss', 'expired')
  AND i.session BETWEEN :first AND :last
ORDER BY i.session, i.signal_id;

-- name: recent_signals
-- One side's signals in the window signalled after the newest session the model saw, with the
-- serving model's confidence (NULL when another model scored it, or none did) and the outcome.
SELECT i.*, sc.confidence, o.status, o.r_multiple
FROM model_inputs i
LEFT JOIN signal_scores sc ON sc.signal_id = i.signal_id AND sc.experiment_id = :experiment_id
LEFT JOIN signal_outcomes o ON o.signal_id = i.signal_id
WHERE i.side = :side AND i.session BETWEEN :first AND :last AND i.session > :after
ORDER BY i.session, i.signal_id;

-- name: delete_drift
DELETE FROM model_drift WHERE session = ANY(:sessions);

-- name: insert_drift
INSERT INTO model_drift (session, side, experiment_id, live_outcomes, live_ece, calibration_gap,
                         calibration, psi, max_psi, drifted, reasons)
VALUES (:session, :side, :experiment_id, :live_outcomes, :live_ece, :calibration_gap,
        CAST(:calibration AS jsonb), CAST(:psi AS jsonb), :max_psi, :drifted, :reasons);

-- name: latest_drift
-- The drift watch's newest session, one row per side.
SELECT session, side, experiment_id, drifted, reasons
FROM model_drift
WHERE session = (SELECT max(session) FROM model_drift)
ORDER BY side;

-- name: lock_retrain_requests
-- One sensor evaluation at a time decides whether to ask (released at commit).
SELECT pg_advisory_xact_lock(hashtext('retrain_requests'));

-- name: last_retrain_request
-- The newest retrain request still inside the interval, if any.
SELECT id, requested_at, session, run_key
FROM retrain_requests
WHERE requested_at > now() - make_interval(secs => :interval_seconds)
ORDER BY requested_at DESC
LIMIT 1;

-- name: insert_retrain_request
-- Nothing when this drift reading already asked once (its run_key exists).
INSERT INTO retrain_requests (session, sides, reasons, run_key)
VALUES (:session, :sides, :reasons, :run_key)
ON CONFLICT (run_key) DO NOTHING
RETURNING id, requested_at;
