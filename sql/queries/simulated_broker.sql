-- Statements behind the simulated broker (breakout_assets/resources/broker/simulated.py).

-- name: create_account
INSERT INTO sim_account (starting_cash, cash) VALUES (:cash, :cash)
ON CONFLICT (id) DO NOTHING;

-- name: lock_account
-- Every change goes through this row lock, so buying-power checks and fills are serialised.
SELECT cash FROM sim_account FOR UPDATE;

-- name: cash
SELECT cash FROM sim_account;

-- name: add_cash
UPDATE sim_account SET cash = cash + :amount;

-- name: last_processed
SELECT max(session) FROM sim_processed_sessions;

-- name: is_processed
SELECT EXISTS (SELECT 1 FROM sim_processed_sessions WHERE session = :session);

-- name: record_session
INSERT INTO sim_processed_sessions (session, entries, exits, expired)
VALUES (:session, :entries, :exits, :expired);

-- name: ticker_has_traded
SELECT EXISTS (SELECT 1 FROM market_bars WHERE ticker = :ticker);

-- name: earliest_working
SELECT min(signal_session) FROM sim_orders WHERE status = 'working';

-- name: bars_exist
SELECT EXISTS (SELECT 1 FROM market_bars WHERE session = :session);

-- name: get_order
SELECT order_ref, ticker, side, quantity, entry, stop, take_profit, status, broker_order_ids,
       reason
FROM sim_orders WHERE order_ref = :order_ref;

-- name: lock_order
SELECT order_ref, side, entry, stop, take_profit, status
FROM sim_orders WHERE order_ref = :order_ref FOR UPDATE;

-- name: insert_order
WITH n AS (SELECT nextval('sim_order_seq') AS seq)
INSERT INTO sim_orders (order_ref, seq, ticker, side, quantity, entry, initial_stop, stop,
                        take_profit, signal_session, valid_sessions, status, broker_order_ids,
                        reason, entry_type, oca_group)
SELECT CAST(:order_ref AS text), n.seq, CAST(:ticker AS text), CAST(:side AS text),
       CAST(:quantity AS integer), CAST(:entry AS double precision),
       CAST(:stop AS double precision), CAST(:stop AS double precision),
       CAST(:take_profit AS double precision), CAST(:signal_session AS date),
       CAST(:valid_sessions AS integer), CAST(:status AS text),
       ARRAY['SIM-' || n.seq || '-P', 'SIM-' || n.seq || '-TP', 'SIM-' || n.seq || '-SL'],
       CAST(:reason AS text), CAST(:entry_type AS text), CAST(:oca_group AS text)
FROM n
RETURNING broker_order_ids;

-- name: set_status
UPDATE sim_orders
SET status = :status, reason = coalesce(CAST(:reason AS text), reason), updated_at = now()
WHERE order_ref = :order_ref;

-- name: set_stop
UPDATE sim_orders SET stop = :new_stop, updated_at = now() WHERE order_ref = :order_ref;

-- name: set_take_profit
UPDATE sim_orders SET take_profit = :take_profit, updated_at = now() WHERE order_ref = :order_ref;

-- name: record_stop_change
INSERT INTO sim_stop_changes (order_ref, after_session, old_stop, new_stop)
VALUES (:order_ref, :after_session, :old_stop, :new_stop);

-- name: find_refs
SELECT order_ref, status, broker_order_ids FROM sim_orders
WHERE order_ref = ANY(CAST(:refs AS text[]));

-- name: live_orders_on_session
-- Working entries and open positions whose signal session is before :session, with that
-- session's bar for their ticker (NULLs when it did not trade) and the entry fill, if any.
SELECT o.order_ref, o.ticker, o.side, o.quantity, o.entry, o.stop, o.take_profit,
       o.signal_session, o.valid_sessions, o.status, o.entry_type, o.oca_group,
       f.session AS fill_session, f.price AS fill_price,
       b.open, b.high, b.low, b.close
FROM sim_orders o
LEFT JOIN sim_fills f ON f.order_ref = o.order_ref AND f.leg = 'entry'
LEFT JOIN market_bars b ON b.ticker = o.ticker AND b.session = :session
WHERE o.status IN ('working', 'filled') AND o.signal_session < :session
ORDER BY o.seq;

-- name: last_close
-- The ticker's last close from :since through :session: where a position expires when the
-- ticker stopped trading before its holding limit.
SELECT session, close FROM market_bars
WHERE ticker = :ticker AND session BETWEEN :since AND :session
ORDER BY session DESC LIMIT 1;

-- name: insert_fill
INSERT INTO sim_fills (order_ref, leg, session, price, quantity, cash_change)
VALUES (:order_ref, :leg, :session, :price, :quantity, :cash_change);

-- name: open_positions
-- Open positions with their entry fill and the ticker's close at :as_of (the last session
-- processed), which values them.
SELECT o.order_ref, o.ticker, o.side, o.quantity, o.stop, f.price AS fill_price,
       f.session AS fill_session,
       (SELECT b.close FROM market_bars b
        WHERE b.ticker = o.ticker AND b.session <= :as_of
        ORDER BY b.session DESC LIMIT 1) AS last_close
FROM sim_orders o
JOIN sim_fills f ON f.order_ref = o.order_ref AND f.leg = 'entry'
WHERE o.status = 'filled'
ORDER BY o.seq;

-- name: working_entries
-- Cash reserved by working entries, and their risk to the stop. At most one entry of an OCA
-- group can fill, so a group counts its largest entry (each measure on its own).
SELECT coalesce(sum(reserved), 0) AS reserved, coalesce(sum(risk), 0) AS risk
FROM (SELECT max(quantity * entry) AS reserved, max(quantity * abs(entry - stop)) AS risk
      FROM sim_orders WHERE status = 'working'
      GROUP BY oca_group, CASE WHEN oca_group IS NULL THEN order_ref END) AS g;

-- name: oca_group_state
-- For a new entry joining :oca_group: the notional its working entries already reserve, and an
-- entry of the group that already filled (then the group is spent).
SELECT coalesce(max(quantity * entry) FILTER (WHERE status = 'working'), 0) AS reserved,
       min(order_ref) FILTER (WHERE status IN ('filled', 'closed'))     AS filled_ref
FROM sim_orders WHERE oca_group = :oca_group;

-- name: cancel_oca_siblings
-- One-cancels-other: the entry :order_ref filled, so its group's other working entries go.
UPDATE sim_orders
SET status = 'cancelled', reason = 'OCA: ' || CAST(:order_ref AS text) || ' filled',
    updated_at = now()
WHERE oca_group = :oca_group AND status = 'working' AND order_ref <> :order_ref
RETURNING order_ref;

-- name: fills_of
SELECT order_ref, leg, session, price, quantity, cash_change FROM sim_fills
WHERE order_ref = :order_ref ORDER BY session, leg <> 'entry';
