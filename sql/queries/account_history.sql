-- The simulated account as it stood after the close of past sessions, rebuilt from what the
-- simulated broker stores (sim_* tables, read only): breakout_assets/resources/account_history.py.

-- name: simulated_cash_as_of
-- Cash after each session's close: the starting cash plus every fill's cash up to that session.
SELECT d.session,
       a.starting_cash + coalesce((SELECT sum(f.cash_change) FROM sim_fills f
                                   WHERE f.session <= d.session), 0)
                       + coalesce((SELECT sum(f.cash_change) FROM sim_spread_fills f
                                   WHERE f.session <= d.session), 0) AS cash
FROM unnest(CAST(:sessions AS date[])) AS d(session)
CROSS JOIN sim_account a;

-- name: simulated_orders_as_of
-- Per session D, the brackets that may be live after D's close: placed for an earlier signal
-- session, never rejected, not exited by D, and either filled by D (a position) or recent enough
-- that their entry may still be working (the exact window is checked in sessions, in Python).
-- Each row carries the stop in force after D (the last change recorded by then, else the
-- initial stop), the ticker's last close at D, and when the bracket's OCA group first filled.
WITH o AS (
    SELECT o.order_ref, o.seq, o.ticker, o.side, o.quantity, o.entry, o.initial_stop,
           o.signal_session, o.valid_sessions, o.oca_group,
           e.session AS entry_session, e.price AS fill_price,
           (SELECT min(x.session) FROM sim_fills x
            WHERE x.order_ref = o.order_ref AND x.leg <> 'entry') AS exit_session
    FROM sim_orders o
    LEFT JOIN sim_fills e ON e.order_ref = o.order_ref AND e.leg = 'entry'
    WHERE o.status <> 'rejected'
)
SELECT d.session, o.order_ref, o.side, o.quantity, o.entry, o.signal_session,
       o.valid_sessions, o.oca_group, o.entry_session, o.fill_price,
       coalesce((SELECT c.new_stop FROM sim_stop_changes c
                 WHERE c.order_ref = o.order_ref
                   AND (c.after_session IS NULL OR c.after_session <= d.session)
                 ORDER BY c.changed_at DESC LIMIT 1), o.initial_stop) AS stop,
       (SELECT b.close FROM market_bars b
        WHERE b.ticker = o.ticker AND b.session <= d.session
        ORDER BY b.session DESC LIMIT 1) AS last_close,
       (SELECT min(f.session) FROM sim_orders g
        JOIN sim_fills f ON f.order_ref = g.order_ref AND f.leg = 'entry'
        WHERE g.oca_group = o.oca_group) AS group_filled
FROM unnest(CAST(:sessions AS date[])) AS d(session)
JOIN o ON o.signal_session < d.session
      AND (o.exit_session IS NULL OR o.exit_session > d.session)
      AND (o.entry_session <= d.session
           -- N sessions span at most 2N + 7 calendar days
           OR o.signal_session > d.session - (2 * o.valid_sessions + 7))
ORDER BY d.session, o.seq;

-- name: simulated_spreads_as_of
-- Per session D, the option combos held after D's close (entered by D, not exited by D), at
-- their entry cost: the debit paid is both their value here and the risk they carry (the
-- broker's own mark of a past close is not kept).
SELECT d.session, sum(e.price * 100 * e.contracts) AS debit
FROM unnest(CAST(:sessions AS date[])) AS d(session)
JOIN sim_spread_fills e ON e.leg = 'entry' AND e.session <= d.session
WHERE NOT EXISTS (SELECT 1 FROM sim_spread_fills x
                  WHERE x.order_ref = e.order_ref AND x.leg <> 'entry'
                    AND x.session <= d.session)
GROUP BY d.session;
