-- Statements behind stop_updates.

-- name: managed_plans
-- Sent primary plans with the levels management needs.
SELECT p.order_ref, p.ticker, p.side, p.quantity, p.entry, p.stop, p.take_profit, p.session,
       p.entry AS signal_entry, s.target_50, s.target_75, s.target_100
FROM trade_plan p JOIN breakout_signals s USING (signal_id)
WHERE p.status = 'sent' AND p.order_ref = ANY(:refs);

-- name: managed_fades
-- Sent fades whose leg (<ref>-ALT or <ref>-LIM) the broker holds, with the leg's levels.
SELECT o.order_ref || leg.suffix AS order_ref, o.ticker, o.side,
       leg.quantity, leg.level AS entry, o.stop, o.take_profit, o.session,
       s.entry AS signal_entry, s.target_50, s.target_75, s.target_100
FROM opposing_orders o
JOIN breakout_signals s USING (signal_id)
CROSS JOIN LATERAL (VALUES ('-ALT', o.alert_level, o.alert_quantity),
                           ('-LIM', o.limit_level, o.limit_quantity)) AS leg(suffix, level, quantity)
WHERE o.status = 'sent' AND o.order_ref || leg.suffix = ANY(:refs);

-- name: sent_refs
SELECT order_ref FROM trade_plan WHERE status = 'sent' AND session <= :session
UNION ALL
SELECT o.order_ref || leg.suffix FROM opposing_orders o, (VALUES ('-ALT'), ('-LIM')) leg(suffix)
WHERE o.status = 'sent' AND o.session <= :session;

-- name: prior_updates
SELECT * FROM stop_updates
WHERE order_ref = :order_ref AND session <= :session AND status IN ('applied', 'dry_run')
ORDER BY session, recorded_at;

-- name: ticker_bars
SELECT session, open, high, low, close FROM market_bars
WHERE ticker = :ticker AND session BETWEEN :first AND :last ORDER BY session;

-- name: insert_update
INSERT INTO stop_updates (order_ref, session, action, old_stop, new_stop, old_quantity,
                          new_quantity, old_take_profit, new_take_profit, price, reason,
                          dry_run, status, error)
VALUES (:order_ref, :session, :action, :old_stop, :new_stop, :old_quantity, :new_quantity,
        :old_take_profit, :new_take_profit, :price, :reason, :dry_run, :status, :error)
ON CONFLICT (order_ref, session, action) DO UPDATE SET
    status = EXCLUDED.status, error = EXCLUDED.error, recorded_at = now()
WHERE stop_updates.status IN ('halted', 'error');  -- a done action is never rewritten
