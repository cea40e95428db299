-- Statements behind daily_report (breakout_assets/reporting): what one session left behind,
-- read as of that session (nothing after it), and the record of the report's email.

-- name: signals
-- The session's scored signals and what the scoring decided for each.
SELECT sc.signal_id, s.ticker, sc.side, sc.confidence, sc.expected_value, sc.tier, sc.decision,
       sc.reason, s.entry, s.stop, s.booked_target AS target
FROM signal_scores sc JOIN breakout_signals s USING (signal_id)
WHERE sc.session = :session
ORDER BY sc.decision DESC, sc.expected_value DESC, sc.signal_id;

-- name: pending_plans
-- Every book's plans of the session or before that still wait for `breakout approve|reject`.
SELECT 'primary' AS book, order_ref, session, ticker, side, quantity, entry, stop,
       take_profit AS target, risk_dollars, tier, confidence, expected_value
FROM trade_plan WHERE session <= :session AND status = 'pending_approval'
UNION ALL
SELECT 'opposing', order_ref, session, ticker, side, alert_quantity + coalesce(limit_quantity, 0),
       alert_level, stop, take_profit, risk_dollars, NULL, confidence, NULL
FROM opposing_orders WHERE session <= :session AND status = 'pending_approval'
UNION ALL
SELECT 'option_spread', order_ref, session, ticker, side, contracts, net_debit, NULL,
       close_trigger, max_loss, NULL, confidence, ev
FROM option_spreads WHERE session <= :session AND status = 'pending_approval'
ORDER BY session, book, order_ref;

-- name: orders
-- What was sent to (or recorded for) the broker for the session's plans, every book.
SELECT 'primary' AS book, order_ref, broker, dry_run, status, error, sent_at
FROM broker_orders WHERE session = :session
UNION ALL
SELECT 'opposing', order_ref, broker, dry_run, status, error, sent_at
FROM opposing_orders WHERE session = :session AND sent_at IS NOT NULL
UNION ALL
SELECT 'option_spread', order_ref, broker, dry_run, status, error, sent_at
FROM option_spreads WHERE session = :session AND sent_at IS NOT NULL
ORDER BY book, order_ref;

-- name: fills
-- The journal's entries and exits that happened on the session.
SELECT trade_id, book, ticker, side, 'entry' AS fill, entry_time AS filled_at,
       entry_price AS price, quantity, NULL AS exit_reason
FROM journal WHERE entry_session = :session
UNION ALL
SELECT trade_id, book, ticker, side, 'exit', exit_time, exit_price, quantity, exit_reason
FROM journal WHERE exit_session = :session
ORDER BY trade_id, fill;

-- name: open_positions
-- Positions open at the session's close, with the stop and target in force for the next session:
-- the last applied stop update (an add-on's are its primary's), else the initial stop; a moved
-- take-profit, else the plan's (a fade leg's plan is its parent, a spread's is its close
-- trigger).
SELECT j.trade_id, j.book, j.ticker, j.side, j.quantity, j.entry_session, j.entry_price,
       coalesce(u.new_stop, j.initial_stop) AS stop,
       coalesce(u.new_take_profit, p.take_profit, o.take_profit, s.close_trigger) AS target,
       j.initial_risk, j.confidence, j.tier
FROM journal j
CROSS JOIN LATERAL (
    SELECT CASE WHEN j.book = 'add_on' THEN coalesce(j.parent_ref, j.trade_id)
                ELSE j.trade_id END AS managed_ref) m
LEFT JOIN LATERAL (
    SELECT su.new_stop, su.new_take_profit FROM stop_updates su
    WHERE su.order_ref = m.managed_ref AND su.session <= :session AND su.status = 'applied'
    ORDER BY su.session DESC, su.recorded_at DESC LIMIT 1) u ON true
LEFT JOIN trade_plan p ON p.order_ref = m.managed_ref
LEFT JOIN opposing_orders o
       ON j.book = 'opposing' AND o.order_ref = coalesce(j.parent_ref, j.trade_id)
LEFT JOIN option_spreads s ON j.book = 'option_spread' AND s.order_ref = j.trade_id
WHERE j.entry_session <= :session AND (j.exit_session IS NULL OR j.exit_session > :session)
ORDER BY j.entry_session, j.trade_id;

-- name: closed_trades
-- Every trade closed on or before the session: the day's list, the figures to date and the
-- equity curve.
SELECT trade_id, book, ticker, side, quantity, entry_session, entry_price, exit_session,
       exit_price, exit_reason, fees, gross_pnl, net_pnl, r_gross, r_net, confidence, tier
FROM journal
WHERE status = 'closed' AND exit_session <= :session
ORDER BY exit_session, trade_id;

-- name: scored_outcomes
-- Scored signals whose outcome was final by the session: live calibration.
SELECT sc.side, sc.confidence, o.status, o.r_multiple
FROM signal_scores sc JOIN signal_outcomes o USING (signal_id)
WHERE sc.session <= :session AND o.status IN ('win', 'loss', 'expired')
  AND o.exit_session <= :session;

-- name: experiments
-- The serving models' cards: held-out metrics, calibration and expectancy.
SELECT experiment_id, side, metrics, lower(test_range) AS test_start,
       upper(test_range) AS test_end
FROM model_experiments WHERE experiment_id = ANY(:experiment_ids)
ORDER BY side;

-- name: lock_delivery
-- One email per session even when two runs of it overlap: the second waits, then sees 'sent'.
SELECT pg_advisory_xact_lock(hashtext('daily_report:' || CAST(:session AS text)));

-- name: delivery
SELECT session, report_path, status, recipients, error, attempts, updated_at
FROM report_deliveries WHERE session = :session;

-- name: record_delivery
INSERT INTO report_deliveries (session, report_path, status, recipients, error)
VALUES (:session, :report_path, :status, :recipients, :error)
ON CONFLICT (session) DO UPDATE SET
    report_path = EXCLUDED.report_path, status = EXCLUDED.status,
    recipients = EXCLUDED.recipients, error = EXCLUDED.error,
    attempts = report_deliveries.attempts + 1, updated_at = now()
RETURNING attempts;
