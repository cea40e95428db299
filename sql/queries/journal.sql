-- Statements behind the trade journal (breakout_assets/assets/journal.py) and the simulated
-- broker's executions (SimulatedBroker.executions).

-- name: sim_executions
-- Every fill of the simulated broker, brackets and combos, in the order they happened. A combo's
-- quantity is in shares (contracts x the contract multiplier) and its price per share.
SELECT * FROM (
    SELECT f.order_ref, o.ticker, o.side, f.leg, f.session, f.price, f.quantity, o.seq,
           false AS combo
    FROM sim_fills f JOIN sim_orders o USING (order_ref)
    UNION ALL
    SELECT f.order_ref, o.ticker, NULL, f.leg, f.session, f.price, f.contracts * :multiplier,
           o.seq, true
    FROM sim_spread_fills f JOIN sim_spread_orders o USING (order_ref)
) fills
ORDER BY session, seq, leg <> 'entry';

-- name: plans
-- Every sent plan, one row per order ref the broker may fill: the primary bracket, its add-on
-- (placed by an applied add_on action), each fade leg (the alert stop-entry -ALT, the 75% limit
-- -LIM), each option spread (quantity in shares). `session` is the signal (or add-on) session the
-- entry works after; valid_sessions NULL means the outcomes setting.
SELECT p.order_ref AS trade_id, 'primary' AS book, p.ticker, p.side, p.quantity,
       p.stop AS initial_stop, p.take_profit, p.session, NULL::integer AS valid_sessions,
       p.signal_id, NULL AS parent_ref, p.confidence, p.tier, NULL AS oca_group
FROM trade_plan p WHERE p.status = 'sent'
UNION ALL
SELECT u.order_ref || '-ADD', 'add_on', p.ticker, p.side, u.new_quantity - u.old_quantity,
       u.new_stop, u.new_take_profit, u.session, NULL, p.signal_id, p.order_ref, p.confidence,
       p.tier, NULL
FROM stop_updates u JOIN trade_plan p ON p.order_ref = u.order_ref
WHERE u.action = 'add_on' AND u.status = 'applied' AND u.new_quantity > u.old_quantity
UNION ALL
SELECT o.order_ref || leg.suffix, 'opposing', o.ticker, o.side, leg.quantity, o.stop,
       o.take_profit, o.session, o.valid_sessions, o.signal_id, o.order_ref, o.confidence,
       sc.tier, o.order_ref
FROM opposing_orders o
CROSS JOIN LATERAL (VALUES ('-ALT', o.alert_level, o.alert_quantity),
                           ('-LIM', o.limit_level, o.limit_quantity)) AS leg(suffix, level, quantity)
LEFT JOIN signal_scores sc ON sc.signal_id = o.signal_id
WHERE o.status = 'sent' AND leg.level IS NOT NULL AND leg.quantity > 0
UNION ALL
SELECT s.order_ref, 'option_spread', s.ticker, s.side, s.contracts * :multiplier, NULL,
       NULL, s.session, NULL, s.signal_id, p.order_ref, s.confidence,
       coalesce(p.tier, sc.tier), NULL
FROM option_spreads s
LEFT JOIN trade_plan p ON p.signal_id = s.signal_id
LEFT JOIN signal_scores sc ON sc.signal_id = s.signal_id
WHERE s.status = 'sent'
ORDER BY trade_id;

-- name: stop_moves
-- Management actions applied to the broker: the stop in force and planned expiries.
SELECT order_ref, session, action, old_stop, new_stop FROM stop_updates
WHERE status = 'applied' ORDER BY order_ref, session, recorded_at;

-- name: upsert_trade
-- A row rewritten with the same values keeps its recorded_at: a re-run changes nothing.
INSERT INTO journal (trade_id, session, book, parent_ref, signal_id, ticker, side, quantity,
                     entry_session, entry_time, entry_price, exit_session, exit_time, exit_price,
                     initial_stop, initial_risk, fees, gross_pnl, net_pnl, r_gross, r_net,
                     confidence, tier, exit_reason, status, broker, source)
VALUES (:trade_id, :session, :book, :parent_ref, :signal_id, :ticker, :side, :quantity,
        :entry_session, :entry_time, :entry_price, :exit_session, :exit_time, :exit_price,
        :initial_stop, :initial_risk, :fees, :gross_pnl, :net_pnl, :r_gross, :r_net,
        :confidence, :tier, :exit_reason, :status, :broker, :source)
ON CONFLICT (trade_id) DO UPDATE SET
    session = EXCLUDED.session, book = EXCLUDED.book, parent_ref = EXCLUDED.parent_ref,
    signal_id = EXCLUDED.signal_id, ticker = EXCLUDED.ticker, side = EXCLUDED.side,
    quantity = EXCLUDED.quantity, entry_session = EXCLUDED.entry_session,
    entry_time = EXCLUDED.entry_time, entry_price = EXCLUDED.entry_price,
    exit_session = EXCLUDED.exit_session, exit_time = EXCLUDED.exit_time,
    exit_price = EXCLUDED.exit_price, initial_stop = EXCLUDED.initial_stop,
    initial_risk = EXCLUDED.initial_risk, fees = EXCLUDED.fees,
    gross_pnl = EXCLUDED.gross_pnl, net_pnl = EXCLUDED.net_pnl, r_gross = EXCLUDED.r_gross,
    r_net = EXCLUDED.r_net, confidence = EXCLUDED.confidence, tier = EXCLUDED.tier,
    exit_reason = EXCLUDED.exit_reason, status = EXCLUDED.status, broker = EXCLUDED.broker,
    source = EXCLUDED.source, recorded_at = now()
WHERE (journal.session, journal.book, journal.parent_ref, journal.signal_id, journal.ticker,
       journal.side, journal.quantity, journal.entry_session, journal.entry_time,
       journal.entry_price, journal.exit_session, journal.exit_time, journal.exit_price,
       journal.initial_stop, journal.initial_risk, journal.fees, journal.gross_pnl,
       journal.net_pnl, journal.r_gross, journal.r_net, journal.confidence, journal.tier,
       journal.exit_reason, journal.status, journal.broker, journal.source)
      IS DISTINCT FROM
      (EXCLUDED.session, EXCLUDED.book, EXCLUDED.parent_ref, EXCLUDED.signal_id,
       EXCLUDED.ticker, EXCLUDED.side, EXCLUDED.quantity, EXCLUDED.entry_session,
       EXCLUDED.entry_time, EXCLUDED.entry_price, EXCLUDED.exit_session, EXCLUDED.exit_time,
       EXCLUDED.exit_price, EXCLUDED.initial_stop, EXCLUDED.initial_risk, EXCLUDED.fees,
       EXCLUDED.gross_pnl, EXCLUDED.net_pnl, EXCLUDED.r_gross, EXCLUDED.r_net,
       EXCLUDED.confidence, EXCLUDED.tier, EXCLUDED.exit_reason, EXCLUDED.status,
       EXCLUDED.broker, EXCLUDED.source);

-- name: delete_unowned
-- Rows of the session whose trade's latest fill is no longer there (moved on, or gone).
DELETE FROM journal WHERE session = :session AND NOT (trade_id = ANY(CAST(:owned AS text[])));

-- name: delete_stale_exceptions
-- The session's exceptions that no longer hold (keys: kind || ' ' || ref).
DELETE FROM journal_exceptions
WHERE session = :session AND NOT (kind || ' ' || ref = ANY(CAST(:keys AS text[])));

-- name: upsert_exception
INSERT INTO journal_exceptions (session, kind, ref, detail)
VALUES (:session, :kind, :ref, :detail)
ON CONFLICT (session, kind, ref) DO UPDATE SET detail = EXCLUDED.detail, recorded_at = now()
WHERE journal_exceptions.detail IS DISTINCT FROM EXCLUDED.detail;

-- name: record_fill
-- A fill seen again keeps its first record, except what a later source says better: the
-- order's purpose (a Flex statement names the order type) and the commission (IB may report it
-- after the execution).
INSERT INTO journal_fills (broker, fill_id, order_ref, ticker, action, quantity, price, session,
                           purpose, fill_time, commission, source)
VALUES (:broker, :fill_id, :order_ref, :ticker, :action, :quantity, :price, :session, :purpose,
        :time, :commission, :source)
ON CONFLICT (broker, fill_id) DO UPDATE SET
    purpose = coalesce(EXCLUDED.purpose, journal_fills.purpose),
    commission = greatest(EXCLUDED.commission, journal_fills.commission)
WHERE EXCLUDED.purpose IS DISTINCT FROM journal_fills.purpose AND EXCLUDED.purpose IS NOT NULL
   OR EXCLUDED.commission > journal_fills.commission;

-- name: recorded_fills
SELECT fill_id, order_ref, ticker, action, quantity, price, session, purpose,
       fill_time AS time, commission
FROM journal_fills WHERE broker = :broker
ORDER BY session, fill_time NULLS FIRST, fill_id;
