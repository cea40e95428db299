-- Statements behind the breakout_signals asset and its checks.

-- name: copy_index_bars_window
-- psycopg-style params: streamed out with COPY and parsed by pyarrow.
COPY (
    SELECT ticker, session, open, high, low, close, volume
    FROM index_bars
    WHERE session BETWEEN %(start)s AND %(end)s
) TO STDOUT (FORMAT csv, HEADER true);

-- name: sector_etfs
SELECT ticker, sector_etf FROM tickers;

-- name: delete_signals
DELETE FROM breakout_signals WHERE session = ANY(:sessions);

-- name: signal_columns
SELECT column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = 'breakout_signals'
ORDER BY ordinal_position;

-- name: copy_signals
-- Columns in table order (see signal_columns).
COPY breakout_signals FROM STDIN (FORMAT csv);

-- name: signal_counts
SELECT side, count(*) AS signals, count(DISTINCT ticker) AS tickers,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY reward_risk) AS median_reward_risk
FROM breakout_signals
WHERE session = ANY(:sessions)
GROUP BY side;

-- name: geometry_violations
-- Every row of the sessions written must satisfy the strategy's geometry (DESIGN.md).
SELECT signal_id, rule FROM (
    SELECT signal_id, unnest(ARRAY[
        CASE WHEN consol_duration < :consol_ratio * rally_duration THEN 'consolidation shorter than ratio x rally' END,
        CASE WHEN side = 'long' AND NOT (stop < entry AND entry < target_50
                  AND target_50 < target_75 AND target_75 < target_100) THEN 'long levels out of order' END,
        CASE WHEN side = 'short' AND NOT (stop > entry AND entry > target_50
                  AND target_50 > target_75 AND target_75 > target_100) THEN 'short levels out of order' END,
        CASE WHEN abs(target_50 - (entry + sign * :f50 * move_height)) > 1e-6 * entry
               OR abs(target_75 - (entry + sign * :f75 * move_height)) > 1e-6 * entry
               OR abs(target_100 - (entry + sign * :f100 * move_height)) > 1e-6 * entry
             THEN 'targets not entry +- k x move height' END,
        CASE WHEN stop_rule = 'atr'
               AND abs(stop - (entry - sign * :stop_multiple * atr)) > 1e-6 * entry
             THEN 'atr stop not entry -+ k x atr' END,
        CASE WHEN atr_window > :atr_max_bars
               OR atr_window > rally_duration + consol_duration THEN 'atr window too long' END,
        CASE WHEN abs(risk - abs(entry - stop)) > 1e-9 * entry
               OR abs(reward_risk - abs(booked_target - entry) / risk) > 1e-6 * reward_risk
             THEN 'risk or reward:risk inconsistent' END,
        CASE WHEN adjusted_entry AND abs(booked_target - (entry + sign * :adjusted_fraction * move_height)) > 1e-6 * entry
             THEN 'adjusted entry without the stretched target' END,
        CASE WHEN NOT adjusted_entry AND booked_target <> target_50
             THEN 'booked target is not target_50' END
    ]) AS rule
    FROM (SELECT *, CASE side WHEN 'long' THEN 1 ELSE -1 END AS sign
          FROM breakout_signals WHERE session = ANY(:sessions)) s
) v
WHERE rule IS NOT NULL
ORDER BY signal_id
LIMIT 50;

-- name: window_tickers
-- Only tickers trading on the sessions being scanned can break out on them.
SELECT DISTINCT ticker FROM market_bars WHERE session BETWEEN :first AND :end ORDER BY ticker;

-- name: window_work_mem
-- The grouped window read below keeps one buffer per ticker; with the default work_mem its hash
-- aggregate spills to disk. Local to the transaction.
SELECT set_config('work_mem', '256MB', true);

-- name: window_bars_by_ticker
-- The window of :tickers, one row per ticker, its bars packed as 44-byte big-endian records
-- (int4 days since 2000-01-01, float8 open, high, low, close, volume) that numpy decodes in one
-- call: no per-bar Python step. Records within a ticker come in no particular order. (Measured
-- on 10,000 tickers: numbering the tickers with a join to the :tickers array, or aggregating
-- seven arrays, is 1.3-2x slower: the join sorts, and array_agg's states are larger.)
SELECT ticker,
       string_agg(int4send((session - DATE '2000-01-01')::int4) || float8send(open)
                  || float8send(high) || float8send(low) || float8send(close)
                  || float8send(volume::float8), ''::bytea) AS bars
FROM market_bars
WHERE ticker = ANY(CAST(:tickers AS text[])) AND session BETWEEN :start AND :end
GROUP BY ticker;

-- name: breakout_candidates
-- Tickers that can break out on :first..:last at all: the scanner only examines a session whose
-- close clears every one of the :cmin bars before it (above their highest high for a long,
-- below their lowest low for a short; core/scanner.py). A superset of the scanner's test (rows
-- rather than calendar sessions), so filtering by it changes no result.
WITH w AS (
    SELECT ticker, session, close,
           max(high) OVER prev AS hmax, min(low) OVER prev AS lmin, count(*) OVER prev AS n
    FROM market_bars
    WHERE session BETWEEN :base_start AND :last
    WINDOW prev AS (PARTITION BY ticker ORDER BY session
                    ROWS BETWEEN :cmin PRECEDING AND 1 PRECEDING)
)
SELECT DISTINCT ticker FROM w
WHERE session BETWEEN :first AND :last AND n = :cmin AND (close > hmax OR close < lmin)
ORDER BY ticker;
