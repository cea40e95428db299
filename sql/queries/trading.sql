-- Statements behind signal_scores, trade_plan, approvals and broker_orders.

-- name: scoring_inputs
-- The model's inputs and the signal's ATR (its expected slippage, core.costs).
SELECT i.*, s.atr AS signal_atr
FROM model_inputs i JOIN breakout_signals s USING (signal_id)
WHERE i.session = ANY(:sessions) ORDER BY i.session, i.signal_id;

-- name: regime
-- Per session: SPY's close and its :sma_n-session average (NULL until :sma_n closes exist),
-- and VIX's change over 5 sessions; bars up to the session only (index scans on the PK).
SELECT d.session,
       spy.close AS spy_close,
       (SELECT avg(w.close) FROM (SELECT i.close FROM index_bars i
                                  WHERE i.ticker = 'SPY' AND i.session <= d.session
                                  ORDER BY i.session DESC LIMIT :sma_n) w
        HAVING count(*) = :sma_n) AS spy_sma,
       (SELECT vix.close / nullif(earlier.close, 0) - 1
        FROM index_bars vix,
             LATERAL (SELECT v.close FROM index_bars v
                      WHERE v.ticker = 'VIX' AND v.session < vix.session
                      ORDER BY v.session DESC OFFSET 4 LIMIT 1) earlier
        WHERE vix.ticker = 'VIX' AND vix.session = d.session) AS vix_change_5d
FROM unnest(CAST(:sessions AS date[])) AS d(session)
LEFT JOIN index_bars spy ON spy.ticker = 'SPY' AND spy.session = d.session;

-- name: delete_scores
DELETE FROM signal_scores WHERE session = ANY(:sessions);

-- name: insert_score
INSERT INTO signal_scores (signal_id, session, side, experiment_id, confidence, expected_value,
                           tier, decision, reason, regime, gross_expected_value, cost_r)
VALUES (:signal_id, :session, :side, :experiment_id, :confidence, :expected_value, :tier,
        :decision, :reason, CAST(:regime AS jsonb), :gross_expected_value, :cost_r);

-- name: plan_inputs
-- Scored signals of the sessions that are trades or skips (opposing candidates belong to the
-- opposing book), best EV first within a session: the order caps are applied in.
SELECT sc.signal_id, sc.session, sc.side, sc.confidence, sc.expected_value, sc.tier,
       sc.decision, sc.reason, coalesce(sc.cost_r, 0) AS cost_r, s.ticker, s.entry, s.stop,
       s.booked_target, s.reward_risk
FROM signal_scores sc JOIN breakout_signals s USING (signal_id)
WHERE sc.session = ANY(:sessions) AND sc.decision IN ('trade', 'skip')
ORDER BY sc.session, sc.expected_value DESC, sc.signal_id;

-- name: delete_undecided_plans
DELETE FROM trade_plan
WHERE session = ANY(:sessions) AND status IN ('pending_approval', 'skipped');

-- name: insert_plan
INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side, quantity, entry, stop,
                        take_profit, risk_dollars, tier, confidence, expected_value, status,
                        reason, decided_by, decided_at)
VALUES (:order_ref, :signal_id, :session, :ticker, :side, :quantity, :entry, :stop,
        :take_profit, :risk_dollars, :tier, :confidence, :expected_value, :status, :reason,
        :decided_by, :decided_at);

-- name: plan_counts
SELECT status, count(*) AS plans, coalesce(sum(risk_dollars), 0) AS risk_dollars
FROM trade_plan WHERE session = ANY(:sessions) GROUP BY status ORDER BY status;

-- name: decide_plans
-- Approve or reject pending plans of one session: all of them, or the refs listed.
UPDATE trade_plan
SET status = :status, decided_by = :decided_by, decided_at = now()
WHERE session = :session AND status = 'pending_approval'
  AND (:all_plans OR order_ref = ANY(:refs))
RETURNING order_ref;

-- name: approved_plans
SELECT * FROM trade_plan
WHERE session = ANY(:sessions) AND status = 'approved'
ORDER BY session, expected_value DESC, order_ref;

-- name: approved_before
-- Approved plans of sessions before a run's range: never sent, and expired once stale.
SELECT * FROM trade_plan
WHERE session < :session AND status = 'approved'
ORDER BY session, order_ref;

-- name: mark_sent
UPDATE trade_plan SET status = 'sent' WHERE order_ref = :order_ref AND status = 'approved';

-- name: mark_expired
-- Final: an expired plan is never sent, retried or approved again.
UPDATE trade_plan SET status = 'expired' WHERE order_ref = :order_ref AND status = 'approved';

-- name: record_order
-- A live answer (submitted / already at the broker) is final: a later run never overwrites it.
INSERT INTO broker_orders (order_ref, session, broker, dry_run, broker_order_ids, status, error,
                           sent_at, bracket)
VALUES (:order_ref, :session, :broker, :dry_run, CAST(:broker_order_ids AS jsonb), :status,
        :error, now(), CAST(:bracket AS jsonb))
ON CONFLICT (order_ref) DO UPDATE SET
    broker = EXCLUDED.broker, dry_run = EXCLUDED.dry_run,
    broker_order_ids = EXCLUDED.broker_order_ids, status = EXCLUDED.status,
    error = EXCLUDED.error, sent_at = EXCLUDED.sent_at, bracket = EXCLUDED.bracket
WHERE broker_orders.dry_run OR broker_orders.status NOT IN ('submitted', 'already_at_broker');

-- name: order_counts
SELECT status, dry_run, count(*) AS orders
FROM broker_orders WHERE session = ANY(:sessions) GROUP BY status, dry_run ORDER BY status;

-- name: record_halt
INSERT INTO halt_events (source, detail) VALUES (:source, CAST(:detail AS jsonb));

-- name: kept_plans
-- Plans a re-run of trade_plan keeps as they are: every status but pending_approval and skipped
-- (approved, rejected, sent, and any later final one). Approved and sent plans trade, so their
-- risk and notional count against their session's caps before the rest is sized.
SELECT order_ref, session, status, risk_dollars, quantity * entry AS notional
FROM trade_plan
WHERE session = ANY(:sessions) AND status NOT IN ('pending_approval', 'skipped');
