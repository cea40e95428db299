-- Statements behind the simulated broker's option combos (breakout_assets/resources/broker/
-- simulated.py; tables in migration 0017). The account row and the processed sessions are the
-- brackets' (simulated_broker.sql).

-- name: ref_taken
-- A ref is placed once, as a bracket or as a spread.
SELECT EXISTS (SELECT 1 FROM sim_orders WHERE order_ref = :order_ref);

-- name: get_spread
SELECT order_ref, status, broker_order_ids, reason FROM sim_spread_orders
WHERE order_ref = :order_ref;

-- name: lock_spread
SELECT o.order_ref, o.ticker, o.option_right, o.expiry, o.long_strike, o.short_strike,
       o.contracts, o.limit_debit, o.close_trigger, o.signal_session, o.status,
       f.vol AS entry_vol
FROM sim_spread_orders o
LEFT JOIN sim_spread_fills f ON f.order_ref = o.order_ref AND f.leg = 'entry'
WHERE o.order_ref = :order_ref
FOR UPDATE OF o;

-- name: insert_spread
WITH n AS (SELECT nextval('sim_order_seq') AS seq)
INSERT INTO sim_spread_orders (order_ref, seq, ticker, option_right, expiry, long_strike,
                               short_strike, contracts, limit_debit, close_trigger,
                               signal_session, valid_sessions, status, broker_order_ids, reason)
SELECT CAST(:order_ref AS text), n.seq, CAST(:ticker AS text), CAST(:option_right AS text),
       CAST(:expiry AS date), CAST(:long_strike AS double precision),
       CAST(:short_strike AS double precision), CAST(:contracts AS integer),
       CAST(:limit_debit AS double precision), CAST(:close_trigger AS double precision),
       CAST(:signal_session AS date), CAST(:valid_sessions AS integer), CAST(:status AS text),
       ARRAY['SIM-' || n.seq || '-COMBO', 'SIM-' || n.seq || '-CLOSE'], CAST(:reason AS text)
FROM n
RETURNING broker_order_ids;

-- name: set_status
UPDATE sim_spread_orders
SET status = :status, reason = coalesce(CAST(:reason AS text), reason), updated_at = now()
WHERE order_ref = :order_ref;

-- name: set_mark
UPDATE sim_spread_orders SET mark = :mark, marked_session = :session, updated_at = now()
WHERE order_ref = :order_ref;

-- name: earliest_working
SELECT min(signal_session) FROM sim_spread_orders WHERE status = 'working';

-- name: live_on_session
-- Working combos and held spreads whose signal session is before :session, with that
-- session's bar of the underlying (NULLs when it did not trade) and the entry fill, if any.
SELECT o.order_ref, o.ticker, o.option_right, o.expiry, o.long_strike, o.short_strike,
       o.contracts, o.limit_debit, o.close_trigger, o.signal_session, o.valid_sessions,
       o.status, f.session AS fill_session, f.vol AS entry_vol,
       b.open, b.high, b.low, b.close
FROM sim_spread_orders o
LEFT JOIN sim_spread_fills f ON f.order_ref = o.order_ref AND f.leg = 'entry'
LEFT JOIN market_bars b ON b.ticker = o.ticker AND b.session = :session
WHERE o.status IN ('working', 'filled') AND o.signal_session < :session
ORDER BY o.seq;

-- name: closes_before
-- The underlying's last :n closes before :session, newest first (the realised volatility).
SELECT close FROM market_bars
WHERE ticker = :ticker AND session < :session
ORDER BY session DESC LIMIT :n;

-- name: insert_fill
INSERT INTO sim_spread_fills (order_ref, leg, session, price, contracts, spot, vol, cash_change)
VALUES (:order_ref, :leg, :session, :price, :contracts, :spot, :vol, :cash_change);

-- name: book
-- Held spreads at their last mark (their entry debit until a close marks them) and at their
-- entry debit (what they risk), and working combos at their limit (cash reserved), in dollars.
SELECT coalesce(sum(coalesce(o.mark, f.price) * o.contracts * 100)
                FILTER (WHERE o.status = 'filled'), 0) AS held_value,
       coalesce(sum(f.price * o.contracts * 100) FILTER (WHERE o.status = 'filled'), 0)
           AS held_risk,
       count(*) FILTER (WHERE o.status = 'filled') AS held,
       coalesce(sum(o.limit_debit * o.contracts * 100) FILTER (WHERE o.status = 'working'), 0)
           AS reserved
FROM sim_spread_orders o
LEFT JOIN sim_spread_fills f ON f.order_ref = o.order_ref AND f.leg = 'entry'
WHERE o.status IN ('working', 'filled');

-- name: find_refs
SELECT order_ref, status, broker_order_ids FROM sim_spread_orders
WHERE order_ref = ANY(CAST(:refs AS text[]));

-- name: spreads
-- Every combo with its entry and exit (for the journal, the options promotion and tests).
SELECT o.order_ref, o.ticker, o.option_right, o.expiry, o.long_strike, o.short_strike,
       o.contracts, o.limit_debit, o.close_trigger, o.signal_session, o.status, o.reason,
       o.mark, o.marked_session,
       e.session AS entry_session, e.price AS entry_price,
       x.leg AS exit_leg, x.session AS exit_session, x.price AS exit_price
FROM sim_spread_orders o
LEFT JOIN sim_spread_fills e ON e.order_ref = o.order_ref AND e.leg = 'entry'
LEFT JOIN sim_spread_fills x ON x.order_ref = o.order_ref AND x.leg <> 'entry'
ORDER BY o.seq;

-- name: fills_of
SELECT order_ref, leg, session, price, contracts, spot, vol, cash_change FROM sim_spread_fills
WHERE order_ref = :order_ref ORDER BY session, leg <> 'entry';
