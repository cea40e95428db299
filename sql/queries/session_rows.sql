-- Rows per session of one asset's table, for that session's materialisation metadata.

-- name: market_bars
SELECT session, count(*) AS n FROM market_bars WHERE session = ANY(:sessions) GROUP BY session;

-- name: index_bars
SELECT session, count(*) AS n FROM index_bars WHERE session = ANY(:sessions) GROUP BY session;

-- name: daily_features
SELECT session, count(*) AS n FROM daily_features WHERE session = ANY(:sessions) GROUP BY session;

-- name: breakout_signals
SELECT session, count(*) AS n FROM breakout_signals WHERE session = ANY(:sessions) GROUP BY session;

-- name: signal_outcomes
SELECT session, count(*) AS n FROM signal_outcomes WHERE session = ANY(:sessions) GROUP BY session;

-- name: signal_scores
SELECT session, count(*) AS n FROM signal_scores WHERE session = ANY(:sessions) GROUP BY session;

-- name: trade_plan
SELECT session, count(*) AS n FROM trade_plan WHERE session = ANY(:sessions) GROUP BY session;

-- name: option_spreads
SELECT session, count(*) AS n FROM option_spreads WHERE session = ANY(:sessions) GROUP BY session;
