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
       (SELECT count(*) FILTER (WHERE side = 'short') FROM breakout_signals) AS short_signals;
