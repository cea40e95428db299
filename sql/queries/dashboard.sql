-- Statements behind the operator dashboard (breakout_assets/dashboard). Every page reads in a
-- read-only transaction; the only writes are the approvals' (approvals.decide, shared with
-- `breakout approve`) and the kill-switch file.

-- name: read_only
-- A page load can never change a row: Postgres refuses any write in this transaction.
SET TRANSACTION READ ONLY;

-- name: journal_bounds
SELECT min(session) AS first, max(session) AS last, count(*) AS trades FROM journal;

-- name: journal
-- Trades whose latest fill falls in [first, last], narrowed by the page's filters (an empty
-- filter keeps everything); newest first.
SELECT trade_id, session, book, ticker, side, quantity, entry_session, entry_price,
       exit_session, exit_price, initial_stop, initial_risk, fees, gross_pnl, net_pnl, r_gross,
       r_net, confidence, tier, exit_reason, status, parent_ref, signal_id, broker, source
FROM journal
WHERE session BETWEEN :first AND :last
  AND (cardinality(CAST(:books AS text[])) = 0 OR book = ANY(CAST(:books AS text[])))
  AND (cardinality(CAST(:sides AS text[])) = 0 OR side = ANY(CAST(:sides AS text[])))
  AND (cardinality(CAST(:statuses AS text[])) = 0 OR status = ANY(CAST(:statuses AS text[])))
  AND (cardinality(CAST(:exit_reasons AS text[])) = 0
       OR exit_reason = ANY(CAST(:exit_reasons AS text[])))
  AND (:ticker = '' OR ticker = upper(:ticker))
ORDER BY session DESC, entry_session DESC, trade_id
LIMIT :limit;

-- name: closed_pnl_by_session
-- Realised net P&L per session of exit: the steps of the equity curve.
SELECT exit_session AS session, sum(net_pnl) AS net_pnl, count(*) AS trades
FROM journal
WHERE status = 'closed'
GROUP BY exit_session
ORDER BY exit_session;

-- name: open_positions
-- Open trades with the stop in force: the latest stop the broker accepted for the position (or
-- its primary, for an add-on), else the stop it was entered with, else its plan's; and the
-- last close we hold for the ticker. An option spread has no stop (its risk is the debit paid,
-- initial_risk) and its last close is the underlying's.
SELECT j.trade_id, j.book, j.ticker, j.side, j.quantity, j.entry_session, j.entry_price,
       j.initial_stop, j.initial_risk,
       coalesce(moved.new_stop, j.initial_stop, plan.stop, fade.stop) AS stop,
       moved.action AS stop_action, moved.session AS stop_session,
       coalesce(moved.new_take_profit, plan.take_profit, fade.take_profit) AS take_profit,
       bar.close AS last_close, bar.session AS last_session,
       j.confidence, j.tier, j.parent_ref
FROM journal j
LEFT JOIN LATERAL (
    SELECT u.new_stop, u.new_take_profit, u.action, u.session
    FROM stop_updates u
    WHERE u.order_ref IN (j.trade_id, j.parent_ref) AND u.status = 'applied'
      AND j.book <> 'option_spread'
    ORDER BY u.session DESC, u.recorded_at DESC
    LIMIT 1) moved ON true
LEFT JOIN trade_plan plan
       ON plan.order_ref = coalesce(j.parent_ref, j.trade_id) AND j.book <> 'option_spread'
LEFT JOIN opposing_orders fade ON fade.order_ref = j.trade_id
LEFT JOIN LATERAL (
    SELECT b.close, b.session FROM market_bars b
    WHERE b.ticker = j.ticker ORDER BY b.session DESC LIMIT 1) bar ON true
WHERE j.status = 'open'
ORDER BY j.entry_session, j.trade_id;

-- name: pending_plans
-- Everything awaiting a human: primary brackets, the opposing book's fades, option spreads
-- (the three tables `approvals.decide` updates).
SELECT 'bracket' AS kind, session, order_ref, ticker, side, quantity, entry AS price, stop,
       take_profit, risk_dollars, confidence, expected_value AS ev, tier, reason
FROM trade_plan WHERE status = 'pending_approval'
UNION ALL
SELECT 'fade', session, order_ref, ticker, side,
       alert_quantity + coalesce(limit_quantity, 0), alert_level, stop, take_profit,
       risk_dollars, confidence, NULL, NULL, reason
FROM opposing_orders WHERE status = 'pending_approval'
UNION ALL
SELECT 'option_spread', session, order_ref, ticker, side, contracts, net_debit, NULL, NULL,
       max_loss, confidence, ev, NULL, reason
FROM option_spreads WHERE status = 'pending_approval'
ORDER BY session, kind, order_ref;

-- name: recent_decisions
-- Who decided what and when, newest first, across the three tables.
SELECT * FROM (
    SELECT 'bracket' AS kind, session, order_ref, ticker, status, decided_by, decided_at
    FROM trade_plan WHERE decided_at IS NOT NULL
    UNION ALL
    SELECT 'fade', session, order_ref, ticker, status, decided_by, decided_at
    FROM opposing_orders WHERE decided_at IS NOT NULL
    UNION ALL
    SELECT 'option_spread', session, order_ref, ticker, status, decided_by, decided_at
    FROM option_spreads WHERE decided_at IS NOT NULL
) decided
ORDER BY decided_at DESC, order_ref
LIMIT :limit;

-- name: experiment_cards
-- Held-out metrics and reliability table of every training run (model cards).
SELECT experiment_id, side, created_at, promoted, promotion ->> 'passed' AS passed_rules,
       coalesce(split ->> 'label', 'booked_target') AS label,
       lower(test_range) AS test_first, upper(test_range) - 1 AS test_last,
       metrics -> 'metrics' AS metrics, metrics -> 'calibration' AS calibration
FROM model_experiments
ORDER BY side, created_at DESC;

-- name: live_scores
-- Live calibration: confidences the model gave signals whose outcomes are final, with the
-- outcome (a win by the model's own label: reporting.summary.is_win).
SELECT s.confidence, o.status, o.r_multiple
FROM signal_scores s
JOIN signal_outcomes o USING (signal_id)
WHERE s.experiment_id = :experiment_id AND o.status IN ('win', 'loss', 'expired');

-- name: drift_latest
-- The drift watch's latest verdict per side.
SELECT DISTINCT ON (side) session, side, experiment_id, live_outcomes, live_ece,
       calibration_gap, max_psi, drifted, reasons, calibration, psi, recorded_at
FROM model_drift
ORDER BY side, session DESC;

-- name: drift_history
SELECT session, side, experiment_id, live_outcomes, live_ece, calibration_gap, max_psi,
       drifted, array_to_string(reasons, '; ') AS reasons
FROM model_drift
ORDER BY session DESC, side
LIMIT :limit;

-- name: retrain_requests
SELECT requested_at, session, array_to_string(sides, ', ') AS sides,
       array_to_string(reasons, '; ') AS reasons, run_key
FROM retrain_requests
ORDER BY requested_at DESC
LIMIT :limit;
