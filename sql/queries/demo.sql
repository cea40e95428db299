-- The summary `make demo` prints.

-- name: summary
SELECT (SELECT count(*) FROM market_bars)                   AS market_bars_rows,
       (SELECT count(DISTINCT ticker) FROM market_bars)     AS stock_tickers,
       (SELECT count(DISTINCT session) FROM market_bars)    AS sessions,
       (SELECT count(*) FROM index_bars)                    AS index_bars_rows,
       (SELECT count(*) FROM quarantined_bars)              AS quarantined_rows,
       (SELECT count(*) FROM tickers)                       AS reference_tickers,
       (SELECT count(*) FROM daily_features)                AS daily_features_rows,
       (SELECT count(*) FILTER (WHERE side = 'long') FROM breakout_signals)  AS long_signals,
       (SELECT count(*) FILTER (WHERE side = 'short') FROM breakout_signals) AS short_signals,
       (SELECT string_agg(status || ' ' || n, ', ' ORDER BY status)
          FROM (SELECT status, count(*) AS n FROM signal_outcomes GROUP BY status) o) AS outcomes,
       (SELECT round(sum(r_multiple)::numeric, 2) FROM signal_outcomes)      AS outcomes_sum_r,
       (SELECT string_agg(experiment_id || CASE WHEN promoted THEN ' (active)' ELSE '' END,
                          ', ' ORDER BY side)
          FROM model_experiments
          WHERE created_at = (SELECT max(created_at) FROM model_experiments e
                              WHERE e.side = model_experiments.side))    AS models;
