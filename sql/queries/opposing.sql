-- Statements behind fade_plan and opposing_orders.

-- name: candidates
-- Primaries scored below the gate whose legs window is still open on :session.
SELECT sc.signal_id, sc.confidence, s.ticker, s.session, s.side, s.entry, s.stop,
       s.booked_target, s.target_50
FROM signal_scores sc JOIN breakout_signals s USING (signal_id)
WHERE sc.decision = 'opposing' AND s.session < :session AND s.session >= :earliest
  AND NOT EXISTS (SELECT 1 FROM opposing_orders o WHERE o.signal_id = sc.signal_id)
ORDER BY s.session, sc.signal_id;

-- name: bars_after
SELECT session, open, high, low, close FROM market_bars
WHERE ticker = :ticker AND session > :after AND session <= :through ORDER BY session;

-- name: insert_plan
INSERT INTO opposing_orders (order_ref, signal_id, session, signal_session, ticker, side,
    confidence, alert_level, alert_quantity, limit_level, limit_quantity, stop, take_profit,
    risk_dollars, valid_sessions, status, reason, decided_by, decided_at)
VALUES (:order_ref, :signal_id, :session, :signal_session, :ticker, :side, :confidence,
    :alert_level, :alert_quantity, :limit_level, :limit_quantity, :stop, :take_profit,
    :risk_dollars, :valid_sessions, :status, :reason, :decided_by, :decided_at)
ON CONFLICT (order_ref) DO NOTHING;

-- name: approved
SELECT * FROM opposing_orders WHERE session = ANY(:sessions) AND status = 'approved'
ORDER BY session, order_ref;

-- name: approved_before
-- Approved fades of sessions before a run's range: never sent, and expired once stale.
SELECT * FROM opposing_orders WHERE session < :session AND status = 'approved'
ORDER BY session, order_ref;

-- name: expire
-- Final: an expired fade is never sent, retried or approved again.
UPDATE opposing_orders
SET status = 'expired', broker = :broker, dry_run = :dry_run, error = :reason
WHERE order_ref = :order_ref AND status = 'approved';

-- name: record_sent
UPDATE opposing_orders
SET status = CASE WHEN :dry_run THEN status ELSE 'sent' END, broker = :broker,
    dry_run = :dry_run, broker_order_ids = CAST(:ids AS jsonb), error = :error, sent_at = now()
WHERE order_ref = :order_ref AND status = 'approved';

-- name: decide
UPDATE opposing_orders
SET status = :status, decided_by = :decided_by, decided_at = now()
WHERE session = :session AND status = 'pending_approval'
  AND (:all_plans OR order_ref = ANY(:refs))
RETURNING order_ref;

-- name: counts
SELECT status, count(*) AS fades FROM opposing_orders
WHERE session = ANY(:sessions) GROUP BY status ORDER BY status;
