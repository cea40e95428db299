-- Statements behind the signal_outcomes asset.

-- name: latest_bar_session
SELECT max(session) FROM market_bars;

-- name: signals_to_replay
-- The signals of :first..:last that are not final yet, and every earlier signal still pending
-- that was replayed through an older session than :as_of (the newest bars stored). Final rows
-- and rows already replayed through :as_of are never read again.
SELECT s.signal_id, s.ticker, s.session, s.side, s.entry, s.stop, s.booked_target,
       s.target_50, s.target_75, s.target_100, s.risk, s.atr
FROM breakout_signals s
LEFT JOIN signal_outcomes o USING (signal_id)
WHERE s.session <= :last
  AND CASE WHEN o.signal_id IS NULL THEN s.session >= :first
           ELSE o.status = 'pending' AND o.as_of < :as_of END
ORDER BY s.session, s.signal_id;

-- name: outcome_bars_packed
-- The bars after each signal (after < session <= until), as aligned binary arrays; row_number
-- is the 1-based position of the signal in the arrays passed in.
SELECT array_send(array_agg(s.row_number::int4))                   AS signal_row,
       array_send(array_agg((b.session - DATE '2000-01-01')::int4)) AS day,
       array_send(array_agg(b.open))                                AS open,
       array_send(array_agg(b.high))                                AS high,
       array_send(array_agg(b.low))                                 AS low,
       array_send(array_agg(b.close))                               AS close
FROM unnest(CAST(:tickers AS text[]), CAST(:after AS date[]), CAST(:until AS date[]))
     WITH ORDINALITY AS s(ticker, after, until, row_number)
JOIN market_bars b ON b.ticker = s.ticker AND b.session > s.after AND b.session <= s.until;

-- name: create_incoming
CREATE TEMPORARY TABLE incoming_outcomes (LIKE signal_outcomes) ON COMMIT DROP;

-- name: copy_incoming
COPY incoming_outcomes (signal_id, session, status, entry_session, entry_price, exit_session,
                        exit_price, r_multiple, mfe_r, mae_r, bars_held, hit_target_50,
                        hit_target_75, hit_target_100, as_of, cost_r, net_r_multiple)
FROM STDIN (FORMAT csv);

-- name: merge_incoming
-- The WHERE makes "final rows never change" a property of the database, not of the caller.
INSERT INTO signal_outcomes
SELECT * FROM incoming_outcomes
ON CONFLICT (signal_id) DO UPDATE SET
    status = EXCLUDED.status, entry_session = EXCLUDED.entry_session,
    entry_price = EXCLUDED.entry_price, exit_session = EXCLUDED.exit_session,
    exit_price = EXCLUDED.exit_price, r_multiple = EXCLUDED.r_multiple,
    mfe_r = EXCLUDED.mfe_r, mae_r = EXCLUDED.mae_r, bars_held = EXCLUDED.bars_held,
    hit_target_50 = EXCLUDED.hit_target_50, hit_target_75 = EXCLUDED.hit_target_75,
    hit_target_100 = EXCLUDED.hit_target_100, as_of = EXCLUDED.as_of,
    cost_r = EXCLUDED.cost_r, net_r_multiple = EXCLUDED.net_r_multiple
WHERE signal_outcomes.status = 'pending';

-- name: final_without_costs
-- Final, filled rows whose costs were never recorded (decided before migration 0012), with
-- what the costs need.
SELECT o.signal_id, o.entry_price, o.exit_price, o.r_multiple, s.risk, s.atr
FROM signal_outcomes o JOIN breakout_signals s USING (signal_id)
WHERE o.status IN ('win', 'loss', 'expired') AND o.cost_r IS NULL
ORDER BY o.signal_id;

-- name: set_missing_costs
-- Records the costs of those rows once; nothing else of a final row is ever written, and a
-- cost already recorded is never replaced.
UPDATE signal_outcomes o
SET cost_r = c.cost_r, net_r_multiple = o.r_multiple - c.cost_r
FROM unnest(CAST(:signal_ids AS text[]), CAST(:costs AS float8[])) AS c(signal_id, cost_r)
WHERE o.signal_id = c.signal_id AND o.cost_r IS NULL
  AND o.status IN ('win', 'loss', 'expired');

-- name: outcome_summary
-- Outcomes of the signals of :first..:last, per side and status.
SELECT s.side, o.status, count(*) AS signals, avg(o.r_multiple) AS mean_r,
       coalesce(sum(o.r_multiple), 0) AS sum_r, coalesce(sum(o.net_r_multiple), 0) AS sum_net_r
FROM signal_outcomes o JOIN breakout_signals s USING (signal_id)
WHERE o.session BETWEEN :first AND :last
GROUP BY s.side, o.status
ORDER BY s.side, o.status;
