-- Statements behind the asset checks on the trading tables (breakout_assets/trading_checks.py).
-- Each returns the offending rows (none when the check passes), worst first where it matters.

-- name: duplicate_order_refs
-- Every ref that reaches the broker: a primary bracket (broker_orders), a fade's legs
-- (opposing_orders, <ref>-ALT / <ref>-LIM), an add-on bracket (stop_updates, <ref>-ADD, one per
-- position), an option spread's combo (option_spreads, sent by option_orders). A ref recorded twice is an order sent twice; so is one broker order id recorded
-- under two refs.
WITH refs AS (
    SELECT order_ref AS ref, 'broker_orders' AS source FROM broker_orders
    UNION ALL
    SELECT o.order_ref || leg.suffix, 'opposing_orders'
    FROM opposing_orders o, (VALUES ('-ALT'), ('-LIM')) AS leg(suffix)
    UNION ALL
    SELECT order_ref || '-ADD', 'stop_updates' FROM stop_updates
    WHERE action = 'add_on' AND status IN ('applied', 'dry_run')
    UNION ALL
    SELECT order_ref, 'option_orders' FROM option_spreads WHERE broker IS NOT NULL
), ids AS (
    SELECT id AS broker_order_id, b.order_ref, 'broker_orders' AS source
    FROM broker_orders b, jsonb_array_elements_text(b.broker_order_ids) AS id
    UNION ALL
    SELECT id, o.order_ref, 'opposing_orders'
    FROM opposing_orders o, jsonb_array_elements_text(o.broker_order_ids) AS id
    UNION ALL
    SELECT id, s.order_ref, 'option_orders'
    FROM option_spreads s, jsonb_array_elements_text(s.broker_order_ids) AS id
)
SELECT 'order_ref' AS kind, ref AS value, array_agg(DISTINCT source) AS sources,
       count(*) AS times
FROM refs GROUP BY ref HAVING count(*) > 1
UNION ALL
SELECT 'broker_order_id', broker_order_id, array_agg(DISTINCT source), count(DISTINCT order_ref)
FROM ids GROUP BY broker_order_id HAVING count(DISTINCT order_ref) > 1
ORDER BY times DESC, value;

-- name: dry_run_marked_sent
-- A dry-run record that claims the broker has it: a dry-run order with a live status or broker
-- ids, a plan marked sent whose only order was a dry run, a dry-run fade marked sent, a
-- dry-run stop change marked applied.
SELECT 'broker_orders' AS source, order_ref, status FROM broker_orders
WHERE dry_run AND (status IN ('submitted', 'already_at_broker') OR broker_order_ids <> '[]')
UNION ALL
SELECT 'trade_plan', p.order_ref, p.status
FROM trade_plan p LEFT JOIN broker_orders b USING (order_ref)
WHERE p.status = 'sent' AND (b.order_ref IS NULL OR b.dry_run)
UNION ALL
SELECT 'opposing_orders', order_ref, status FROM opposing_orders
WHERE dry_run AND (status = 'sent' OR broker_order_ids <> '[]')
UNION ALL
SELECT 'stop_updates', order_ref || ' ' || session || ' ' || action, status FROM stop_updates
WHERE dry_run AND status = 'applied'
UNION ALL
SELECT 'option_orders', order_ref, status FROM option_spreads
WHERE dry_run AND (status = 'sent' OR broker_order_ids <> '[]')
ORDER BY source, order_ref;

-- name: sized_plans
-- Plans with shares, and whether they count against their session's open risk and positions:
-- what trades (pending, approved, sent). A rejected or expired plan was sized, but a re-run
-- sizes the rest without it.
SELECT order_ref, session, side, quantity, entry, stop, risk_dollars, tier, status,
       status IN ('pending_approval', 'approved', 'sent') AS trades
FROM trade_plan WHERE quantity > 0
ORDER BY session, order_ref;

-- name: rewritten_finals
-- Finals whose result is not the one first recorded for the same signal (same geometry).
SELECT o.signal_id, r.status AS recorded_status, o.status, r.r_multiple AS recorded_r,
       o.r_multiple, r.exit_session AS recorded_exit_session, o.exit_session,
       r.exit_price AS recorded_exit_price, o.exit_price, r.recorded_at
FROM signal_outcomes o
JOIN final_outcomes_record r USING (signal_id)
LEFT JOIN breakout_signals s USING (signal_id)
WHERE (s.entry, s.stop, s.booked_target) IS NOT DISTINCT FROM (r.entry, r.stop, r.booked_target)
  AND (o.status, o.entry_session, o.entry_price, o.exit_session, o.exit_price, o.r_multiple)
      IS DISTINCT FROM
      (r.status, r.entry_session, r.entry_price, r.exit_session, r.exit_price, r.r_multiple)
ORDER BY r.recorded_at, o.signal_id;

-- name: final_counts
SELECT (SELECT count(*) FROM signal_outcomes WHERE status <> 'pending') AS finals,
       (SELECT count(*) FROM final_outcomes_record) AS recorded;

-- name: loosened_stops
-- Applied (or dry-run) stop changes in the order they were made: a session's rules run expire,
-- breakeven, add_on, trail, take_profit. A change loosens the stop when its new stop is below
-- (long) / above (short) its own old stop or the stop in force before it (the previous change's
-- new stop, else the plan's stop). Fade legs are <fade ref>-ALT / -LIM.
WITH positions AS (
    SELECT order_ref, side, stop FROM trade_plan
    UNION ALL
    SELECT o.order_ref || leg.suffix, o.side, o.stop
    FROM opposing_orders o, (VALUES ('-ALT'), ('-LIM')) AS leg(suffix)
), changes AS (
    SELECT u.order_ref, u.session, u.action, u.old_stop, u.new_stop, p.side,
           CASE p.side WHEN 'long' THEN 1 ELSE -1 END AS sign,
           coalesce(lag(u.new_stop) OVER (
               PARTITION BY u.order_ref
               ORDER BY u.session, array_position(
                   ARRAY['expire', 'breakeven', 'add_on', 'trail', 'take_profit'], u.action)),
               p.stop) AS stop_before
    FROM stop_updates u JOIN positions p USING (order_ref)
    WHERE u.status IN ('applied', 'dry_run')
)
SELECT order_ref, session, action, side, stop_before, old_stop, new_stop
FROM changes
WHERE sign * (new_stop - old_stop) < -:tolerance * abs(old_stop)
   OR sign * (new_stop - stop_before) < -:tolerance * abs(stop_before)
ORDER BY session, order_ref, action;
