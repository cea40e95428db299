-- The options overlay's plans (option_spreads) and the options book's promotion record
-- (options_promotions); tables in migration 0017. The simulated broker's combos are in
-- simulated_spreads.sql.

-- name: decide
-- Approve or reject pending spreads of one session: all of them, or the refs listed (the same
-- call as trade_plan's and the fades', breakout_assets/approvals.py).
UPDATE option_spreads
SET status = :status, decided_by = :decided_by, decided_at = now()
WHERE session = :session AND status = 'pending_approval'
  AND (:all_plans OR order_ref = ANY(:refs))
RETURNING order_ref;

-- name: counts
SELECT status, count(*) AS spreads, coalesce(sum(max_loss), 0) AS max_loss
FROM option_spreads WHERE session = ANY(:sessions) GROUP BY status ORDER BY status;

-- name: lock_promotions
-- Promotion and rollback decide on the latest record: one at a time.
SELECT pg_advisory_xact_lock(hashtext('options_promotions'));

-- name: latest_promotion
SELECT id, action, decided_by, decided_at, figures FROM options_promotions
ORDER BY id DESC LIMIT 1;

-- name: record_promotion
INSERT INTO options_promotions (action, decided_by, figures)
VALUES (:action, :decided_by, CAST(:figures AS jsonb))
RETURNING id, action, decided_by, decided_at, figures;

-- name: closed_paper_spreads
-- The paper forward test: every combo the simulated broker entered and exited (sold by its
-- condition, settled at expiry or closed by request), with R in debit units:
-- (exit price - entry price) / entry price, so a worthless expiry is -1R.
SELECT o.order_ref, o.ticker, o.option_right, o.contracts,
       e.session AS entry_session, e.price AS entry_price,
       x.leg AS exit_leg, x.session AS exit_session, x.price AS exit_price,
       (x.price - e.price) / e.price AS r
FROM sim_spread_orders o
JOIN sim_spread_fills e ON e.order_ref = o.order_ref AND e.leg = 'entry'
JOIN sim_spread_fills x ON x.order_ref = o.order_ref AND x.leg <> 'entry'
WHERE o.status = 'closed'
ORDER BY x.session, o.seq;
