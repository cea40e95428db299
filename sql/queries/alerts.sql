-- Statements behind the alert sensors (breakout_assets/alerts.py): one row, and one email, per
-- alert key however often a sensor sees the same failure or missed deadline.

-- name: lock
-- Decided under a lock: two evaluations seeing the same alert at once send one email.
SELECT pg_advisory_xact_lock(hashtext('alert:' || :alert_key));

-- name: raised
SELECT alert_key, email_status, raised_at FROM alerts WHERE alert_key = :alert_key;

-- name: record
INSERT INTO alerts (alert_key, kind, run_id, job_name, asset_key, session, message,
                    email_status, email_error)
VALUES (:alert_key, :kind, :run_id, :job_name, :asset_key, :session, :message, :email_status,
        :email_error);
