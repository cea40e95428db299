-- Statements behind stop_updates.

-- name: managed_plans
-- Sent primary plans with the levels management needs.
SELECT p.order_ref, p.ticker, p.side, p.quantity, p.entry, p.stop, p.take_profit, p.session,
       s.target_50, s.target_75, s.target_100
FROM trade_plan p JOIN breakout_signals s USING (signal_id)
WHERE p.status = 'sent' AND p.order_ref = ANY(:refs);

-- name: sent_refs
SELECT order_ref FROM trade_plan WHERE status = 'sent' AND session <= :session;

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
