-- `breakout research`: its own database and the tables it prints.

-- name: drop_database
DROP DATABASE IF EXISTS {name} WITH (FORCE);

-- name: create_database
CREATE DATABASE {name};

-- name: baseline
-- The scanner alone, per side, over every signal of :first..:last, the training period and
-- the held-out period (from :test_start). Closed trades are the final filled ones (target or
-- stop; expiries only when a label horizon is set). booked_expectancy_r is the description's
-- accounting: a win counts its R:R, a loss -1 R; expectancy_r is the realised fill-to-exit R.
WITH exposure AS (
    SELECT count(*) FILTER (WHERE session BETWEEN :first AND :last)              AS all_days,
           count(*) FILTER (WHERE session BETWEEN :first AND :last
                              AND session < :test_start)                          AS train_days,
           count(*) FILTER (WHERE session BETWEEN :first AND :last
                              AND session >= :test_start)                         AS test_days
    FROM market_bars
),
rows AS (
    SELECT s.side, s.session, s.reward_risk, o.status, o.r_multiple, o.net_r_multiple,
           unnest(CASE WHEN s.session < :test_start THEN ARRAY['all', 'train']
                       ELSE ARRAY['all', 'test'] END) AS period
    FROM breakout_signals s
    LEFT JOIN signal_outcomes o USING (signal_id)
    WHERE s.session BETWEEN :first AND :last
)
SELECT r.side, r.period,
       count(*)                                                          AS signals,
       count(*) / nullif(CASE r.period WHEN 'all' THEN e.all_days WHEN 'train' THEN e.train_days
                                       ELSE e.test_days END / 252.0, 0)  AS per_ticker_year,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY r.reward_risk)        AS median_reward_risk,
       count(*) FILTER (WHERE r.status IN ('win', 'loss', 'expired'))    AS closed,
       avg((r.status = 'win')::int) FILTER (WHERE r.status IN ('win', 'loss', 'expired'))
                                                                         AS win_rate,
       avg(r.r_multiple) FILTER (WHERE r.status IN ('win', 'loss', 'expired'))
                                                                         AS expectancy_r,
       avg(r.net_r_multiple) FILTER (WHERE r.status IN ('win', 'loss', 'expired'))
                                                                         AS expectancy_net_r,
       avg(CASE r.status WHEN 'win' THEN r.reward_risk WHEN 'loss' THEN -1.0
                         ELSE r.r_multiple END)
           FILTER (WHERE r.status IN ('win', 'loss', 'expired'))         AS booked_expectancy_r,
       avg(r.r_multiple) FILTER (WHERE r.status = 'win')                 AS avg_winner_r,
       count(*) FILTER (WHERE r.status = 'pending')                      AS pending,
       count(*) FILTER (WHERE r.status = 'unfilled')                     AS unfilled
FROM rows r CROSS JOIN exposure e
GROUP BY r.side, r.period, e.all_days, e.train_days, e.test_days
ORDER BY r.side, array_position(ARRAY['all', 'train', 'test'], r.period);

-- name: experiment
SELECT experiment_id, side, promoted, promotion, metrics, split, artifact_path,
       lower(train_range)::text || '..' || (upper(train_range) - 1)::text AS train_range,
       lower(test_range)::text || '..' || (upper(test_range) - 1)::text AS test_range
FROM model_experiments WHERE experiment_id = :experiment_id;

-- name: opposing_results
SELECT backtest, detail ->> 'direction' AS direction, variant, trades, win_rate, expectancy_r,
       sum_r, expectancy_net_r
FROM backtest_results
WHERE backtest LIKE 'opposing%'
ORDER BY backtest, direction, variant;

-- name: held_out_trades
-- One side's final, filled trades signalled in :first..:last with their features and what the
-- trade decision needs (R:R, entry, risk, ATR), gross and net R.
SELECT i.*, s.atr, o.status, o.r_multiple, o.net_r_multiple
FROM model_inputs i
JOIN breakout_signals s USING (signal_id)
JOIN signal_outcomes o USING (signal_id)
WHERE i.side = :side AND i.session BETWEEN :first AND :last
  AND o.status IN ('win', 'loss', 'expired')
ORDER BY i.session, i.signal_id;
