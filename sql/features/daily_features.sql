-- daily_features: per ticker and session market features (table from 0002_daily_features.sql).
--
-- Computed by ONE set-based statement (`compute`) over the sessions being written plus a
-- lookback of earlier sessions (:lookback_start .. :last_session), with window functions over
-- each series ordered by session. Only bars on or before a session feed its features (no
-- look-ahead): every window looks backwards, and nothing after :last_session is read.
-- "Row" below means a ticker's own bars in session order (a session it has no bar on is skipped,
-- exactly as TA-Lib sees an array of bars); c, o, h, l are close, open, high, low.
--
-- Definitions (a contract; NULL while the window is not full or an input is missing):
--   atr_14              Wilder's ATR(14) exactly as TA-Lib ATR: TR_t = max(h, c_{t-1}) -
--                       min(l, c_{t-1}) from the 2nd row; seed = mean of the first 14 TRs (the
--                       15th row); then ATR_t = (13 ATR_{t-1} + TR_t) / 14. Price units (helper).
--   atr_pct_14          atr_14 / c.
--   rsi_14              Wilder's RSI(14) exactly as TA-Lib RSI: average gain G and loss L of the
--                       close-to-close changes, seeded with the mean of the first 14 changes and
--                       smoothed like the ATR; 100 G / (G + L), 0 when G + L is ~0 (|.| < 1e-8).
--   stoch_14            Fast %K(14) as TA-Lib STOCHF fastk: 100 (c - LL14) / (HH14 - LL14) with
--                       HH14 / LL14 the highest high / lowest low of the last 14 rows; 0 when
--                       HH14 = LL14.
--   dist_from_sma_N     c / SMA_N(c) - 1, N = 5, 20 (mean of the last N closes, this one included).
--   dist_from_sma_20_atr_norm
--                       (c - SMA_20(c)) / atr_14: the distance from the 20-day mean in ATRs.
--   volatility_20d      Sample standard deviation (n - 1) of the last 20 daily log returns
--                       ln(c_t / c_{t-1}); not annualised. Needs 21 rows.
--   trend_strength_20   beta * 20 / (volatility_20d * sqrt(20)), beta = least-squares slope of
--                       ln(c) on the row number over the last 20 rows: the trend line's 20-day
--                       log move in units of the 20-day move a driftless random walk with this
--                       volatility would show (a t-statistic-like, scale-free number; > 0 up,
--                       < 0 down, |x| > ~2 a strong trend). NULL when volatility_20d is 0.
--   vix_change_Nd       VIX c / VIX c N rows earlier - 1, N = 1, 5 (ticker 'VIX' of index_bars,
--                       its own rows; same value for every ticker of the session).
--   sector_vs_spy_weekly_ret_wK
--                       Weekly relative strength of the ticker's sector ETF (tickers.sector_etf;
--                       SPY when the ticker has no reference row). For an index series let
--                       R5_t = c_t / c_{t-5} - 1 (a 5-session "week" ending at row t); week K back
--                       ends 5 (K - 1) rows before the session: wK = R5_{t-5(K-1)}(ETF) -
--                       R5_{t-5(K-1)}(SPY). w1 is the 5 sessions ending on the session. Tickers
--                       whose sector ETF is SPY get 0.
--   sector_etf_weekly_oc_atr_wK  (K = 2, 3, 4)
--                       The sector ETF's week K back measured open to close in its own ATRs:
--                       (c at the week's last row - o at its first row) / ETF atr_14 at the
--                       week's last row, i.e. OC_{t-5(K-1)} with OC_u = (c_u - o_{u-4}) / ATR14_u.
--                       Using each week's own ATR makes wK(t) = w1(t - 5 (K - 1)): a pure shift.
--   market_cap_to_sp500 Ticker market cap / an S&P 500 market-cap proxy. Cap = shares_outstanding
--                       (tickers) * c. Proxy = :sp500_cap_per_spy * SPY close that session (the
--                       setting `sp500_cap_per_spy`, default 8.3e10 = S&P 500 total cap of about
--                       $42.5T over SPY's ~512 in March 2024). Why not the sum of the universe's
--                       caps: that would depend on which tickers happen to be loaded (the bundled
--                       sample has 150, a synthetic market any number), so adding a ticker would
--                       change every other ticker's feature; the SPY-scaled proxy is the same for
--                       any universe, tracks the index day by day, and reads one index bar.
--                       (Dividend-adjusted SPY closes understate the index by the dividends
--                       since, ~1.5 % a year back from 2024: a slow drift, not noise.)
--   market_cap_to_industry_index
--                       Ticker cap / sum of the caps of all tickers with the same
--                       tickers.industry and a bar that session (the ticker included, so in
--                       (0, 1]); NULL without industry or shares outstanding.
--
-- Numerics. Wilder recursions use `wilder_weight` / `wilder_value` (0002 migration): a running
-- sum() window gives the exact TA-Lib recursion, seeded at each series' first row in the
-- lookback. A series with more history than the lookback starts there instead of at its first
-- bar ever; Wilder's smoothing forgets its start as (13/14)^rows, so after the 300-row default
-- lookback the difference is ~2e-10 relative (TA-Lib parity is tested at 1e-6 after 250 rows).
-- The stock's Wilder sums form a chain: every row stores its state (wilder_* columns, 0015
-- migration: its row number k, the folded lookback's sums and the running sums since), and a
-- later run continues from the state on each ticker's previous bar, adding exactly the terms one
-- longer run would, so a session's ATR and RSI are bit-for-bit the same whether it was computed
-- in a long range run or alone the day after. Only a ticker without that state (a first run, a
-- bulk rebuild's chunks, a gap, a chain past WILDER_MAX_ROW rows) folds its lookback, as above.
-- This is what keeps a one-session run independent of the stored history and of the lookback.
-- 5/20-row sums (means, squared returns, the regression's sums) are differences of running sums
-- over small terms: exact to ~1e-14. Industry totals are summed exactly in whole cents. Results
-- are deterministic: a re-run of the same range writes identical rows.
-- Caveat: shares outstanding and industry come from the latest reference snapshot (lookahead in
-- history, as the data's README says); bars are what the table holds. A run trusts the stored
-- row of each ticker's previous bar: after bars are corrected, re-run from the first corrected
-- session on (one range run), as for any feature that reads earlier bars.

-- name: set_work_mem
-- For this transaction only: the statement's sorts and windows stay in memory.
SELECT set_config('work_mem', :work_mem, true);

-- name: delete_sessions
DELETE FROM daily_features WHERE session = ANY(:sessions);

-- name: compute
-- The features of the sessions :sessions (first .. last), reading bars from :lookback_start.
-- Nothing reads more than the lookback before the range, whatever the history stored, and
-- nothing scans an index in an order other than its own (the old lookback read every primary-key
-- entry of market_bars to get (ticker, session) order: time grew with the years stored). Window
-- functions do not run in parallel, so the point is doing less per row:
--   split     per written ticker, where its tail starts (its last 20 bars before the range) and
--             where its Wilder sums continue from: the chain stored on its last bar before the
--             range (see the header; one primary-key probe), else the lookback up to the tail's
--             first row folded into Wilder sums (its primary-key range, one small window);
--   range     (tail_bars .. range_windows) per ticker its tail and the range, read in ticker
--             order: the Wilder running sums continue from the split, and 5/20-row sums come
--             from differences of running sums (one O(1) pass) instead of frames re-aggregated
--             for every row; the 14-row high / low is the one fixed frame;
--   fast      (:one_session, the daily run) tickers with a bar on each of the 20 sessions
--             before and a chain to continue: the 21 sessions read as one session-index range
--             for all of them, and the range path's sums at its last row computed as plain sums
--             in one aggregate pass, with the same additions in the same order, so the rows are
--             bit-for-bit the range path's; other tickers (gaps, new listings, no chain) take
--             the range path;
--   context   the index series' features per sector ETF and session, and the industries' total
--             caps, joined on at the end.
INSERT INTO daily_features (
    ticker, session, atr_14, atr_pct_14, volatility_20d, rsi_14, stoch_14,
    dist_from_sma_5, dist_from_sma_20, dist_from_sma_20_atr_norm, trend_strength_20,
    vix_change_1d, vix_change_5d,
    sector_vs_spy_weekly_ret_w1, sector_vs_spy_weekly_ret_w2,
    sector_vs_spy_weekly_ret_w3, sector_vs_spy_weekly_ret_w4,
    sector_etf_weekly_oc_atr_w2, sector_etf_weekly_oc_atr_w3, sector_etf_weekly_oc_atr_w4,
    market_cap_to_sp500, market_cap_to_industry_index,
    wilder_row, wilder_tr_base, wilder_tr_run, wilder_gain_base, wilder_gain_run,
    wilder_loss_base, wilder_loss_run
)
WITH written AS (
    -- The tickers with a bar to write, in ticker order, with their reference (sector ETF,
    -- shares outstanding, industry).
    SELECT w.ticker, coalesce(t.sector_etf, 'SPY') AS sector_etf, t.shares_outstanding,
           t.industry
    FROM (SELECT DISTINCT ticker FROM market_bars WHERE session = ANY(:sessions)) w
    LEFT JOIN tickers t ON t.ticker = w.ticker
    ORDER BY w.ticker
),
recent AS NOT MATERIALIZED (
    -- One session: the 20 sessions before it and itself, every ticker, as one range of the
    -- session index (~21 pages a session) rather than 21 primary-key probes a ticker.
    SELECT ticker, session, high, low, close
    FROM market_bars
    WHERE :one_session AND session BETWEEN :recent_start AND :last_session
),
complete AS (
    -- Tickers with a bar on each of those 20 sessions: they are their last 20 bars.
    SELECT ticker FROM recent WHERE session < :first_session GROUP BY ticker HAVING count(*) = 20
),
split AS (
    -- Per written ticker: where its tail starts (its last 20 bars before the range) and where
    -- its Wilder sums continue from. With 20 rows before the range, the split is the 20th: the
    -- last bar before the range when its stored chain continues, else the tail's first row,
    -- the lookback folded up to it. With fewer, nothing is folded and the sums start on the
    -- ticker's first lookback row. `complete` tickers need no probe to find their tail.
    SELECT w.ticker, w.sector_etf, w.shares_outstanding, w.industry,
           r.ticker IS NOT NULL AND c.wilder_row IS NOT NULL AS fast,
           coalesce(e.tail_start, CASE WHEN r.ticker IS NOT NULL THEN :recent_start END)
               AS tail_start,
           CASE WHEN c.wilder_row IS NOT NULL THEN c.wilder_row - 20
                WHEN coalesce(e.pre_rows, 20) = 20 THEN f.k0 - 1
                ELSE 0 END AS k_offset,
           CASE WHEN c.wilder_row IS NOT NULL THEN coalesce(e.prev_session, :prev_session)
                WHEN coalesce(e.pre_rows, 20) = 20 THEN coalesce(e.tail_start, :recent_start)
           END AS split_session,
           coalesce(c.wilder_tr_base, f.tr_base, 0) AS tr_base,
           coalesce(c.wilder_gain_base, f.gain_base, 0) AS gain_base,
           coalesce(c.wilder_loss_base, f.loss_base, 0) AS loss_base,
           c.wilder_tr_run AS tr_seed, c.wilder_gain_run AS gain_seed,
           c.wilder_loss_run AS loss_seed
    FROM written w
    LEFT JOIN complete r ON r.ticker = w.ticker
    LEFT JOIN LATERAL (
        SELECT min(session) AS tail_start, count(*) AS pre_rows, max(session) AS prev_session
        FROM (SELECT m.session
              FROM market_bars m
              WHERE r.ticker IS NULL AND m.ticker = w.ticker
                AND m.session >= :lookback_start AND m.session < :first_session
              ORDER BY m.session DESC
              LIMIT 20) pre
    ) e ON r.ticker IS NULL
    LEFT JOIN LATERAL (
        -- The chain state on the last bar before the range (one primary-key probe).
        SELECT f.wilder_row, f.wilder_tr_base, f.wilder_tr_run, f.wilder_gain_base,
               f.wilder_gain_run, f.wilder_loss_base, f.wilder_loss_run
        FROM daily_features f
        WHERE :continue_chain AND coalesce(e.pre_rows, 20) = 20
          AND f.ticker = w.ticker AND f.session = coalesce(e.prev_session, :prev_session)
          AND f.wilder_row BETWEEN 20 AND :max_chain_row
    ) c ON true
    LEFT JOIN LATERAL (
        -- Rows 1..k0 of the lookback, folded (read only when there is no chain to continue).
        SELECT count(*) AS k0, sum(tr * weight) AS tr_base, sum(gain * weight) AS gain_base,
               sum(loss * weight) AS loss_base
        FROM (
            SELECT wilder_weight(row_number() OVER w, 15, 14) AS weight,
                   CASE WHEN row_number() OVER w > 1
                        THEN greatest(high, lag(close) OVER w) - least(low, lag(close) OVER w)
                   END AS tr,
                   greatest(close - lag(close) OVER w, 0) AS gain,
                   greatest(lag(close) OVER w - close, 0) AS loss
            FROM market_bars m
            WHERE coalesce(e.pre_rows, 20) = 20 AND c.wilder_row IS NULL
              AND m.ticker = w.ticker
              AND m.session >= :lookback_start
              AND m.session <= coalesce(e.tail_start, :recent_start)
            WINDOW w AS (ORDER BY m.session)
        ) lookback
    ) f ON true
),
tail_bars AS (
    -- Each written ticker's tail, but for `fast` ones: its last 20 bars before the range, then
    -- the range (primary-key range scans, in ticker order so the windows sort less).
    SELECT s.ticker, s.sector_etf, s.shares_outstanding, s.industry, s.tr_base, s.gain_base,
           s.loss_base, b.session, b.high, b.low, b.close, s.k_offset, s.split_session,
           s.tr_seed, s.gain_seed, s.loss_seed
    FROM (SELECT * FROM split ORDER BY ticker) s
    CROSS JOIN LATERAL (
        SELECT m.session, m.high, m.low, m.close
        FROM market_bars m
        WHERE NOT s.fast AND m.ticker = s.ticker
          AND m.session BETWEEN :lookback_start AND :last_session
          AND m.session >= coalesce(s.tail_start, :first_session)
        OFFSET 0  -- a range scan per ticker, never a join over the whole table
    ) b
),
tail_rows AS (
    -- Row number k in the chain (j in the tail), the Wilder terms of the rows after the split
    -- (the split row itself carries the chain's running sums: NULL when folded), log prices and
    -- returns. Per-row expressions are computed here, once.
    SELECT ticker, sector_etf, shares_outstanding, industry, tr_base, gain_base, loss_base,
           session, high, low, close,
           k_offset + row_number() OVER w AS k,
           row_number() OVER w AS j,
           ln(close / lag(close) OVER w) AS log_return,
           ln(close / lag(close, 20) OVER w) AS log_return_20,
           ln(close / first_value(close) OVER w) AS log_growth,
           CASE WHEN session = split_session THEN tr_seed
                WHEN split_session IS NULL OR session > split_session
                THEN CASE WHEN row_number() OVER w > 1
                          THEN greatest(high, lag(close) OVER w) - least(low, lag(close) OVER w)
                     END * wilder_weight(k_offset + row_number() OVER w, 15, 14)
           END AS tr_term,
           CASE WHEN session = split_session THEN gain_seed
                WHEN split_session IS NULL OR session > split_session
                THEN greatest(close - lag(close) OVER w, 0)
                     * wilder_weight(k_offset + row_number() OVER w, 15, 14)
           END AS gain_term,
           CASE WHEN session = split_session THEN loss_seed
                WHEN split_session IS NULL OR session > split_session
                THEN greatest(lag(close) OVER w - close, 0)
                     * wilder_weight(k_offset + row_number() OVER w, 15, 14)
           END AS loss_term
    FROM tail_bars
    WINDOW w AS (PARTITION BY ticker ORDER BY session)
),
tail_running AS (
    -- A range: running sums (one pass, O(1) a row): Wilder's, continuing from the chain or the
    -- fold (the base and the running sum are kept apart, as stored, so a continued chain adds
    -- exactly what one longer run would), and plain ones whose differences 5 or 20 rows apart
    -- give the fixed-length windows' sums (see `range_windows`). The 14-row extremes are a
    -- frame of their own.
    SELECT ticker, sector_etf, shares_outstanding, industry, tr_base, gain_base, loss_base,
           session, close, k, j, log_return_20,
           sum(tr_term) OVER run AS tr_run,
           sum(gain_term) OVER run AS gain_run,
           sum(loss_term) OVER run AS loss_run,
           sum(close) OVER run AS close_sum,
           sum(log_return * log_return) OVER run AS return_square_sum,
           sum(log_growth) OVER run AS growth_sum,
           sum(j * log_growth) OVER run AS j_growth_sum,
           max(high) OVER w14 AS hh14,
           min(low) OVER w14 AS ll14
    FROM tail_rows
    WINDOW run AS (PARTITION BY ticker ORDER BY session ROWS UNBOUNDED PRECEDING),
           w14 AS (PARTITION BY ticker ORDER BY session ROWS 13 PRECEDING)
),
range_windows AS (
    -- Sums over the last 5 / 20 rows: running sum now minus 5 / 20 rows ago (0 before the
    -- tail). The terms are small (prices, squared returns, logs relative to the tail's first
    -- close, row numbers within the tail), so the differences keep ~14 significant digits.
    SELECT ticker, sector_etf, shares_outstanding, industry, tr_base, gain_base, loss_base,
           session, close, k, j, log_return_20, hh14, ll14, tr_run, gain_run, loss_run,
           close_sum - coalesce(lag(close_sum, 5) OVER w, 0) AS close_sum_5,
           close_sum - coalesce(lag(close_sum, 20) OVER w, 0) AS close_sum_20,
           return_square_sum - coalesce(lag(return_square_sum, 20) OVER w, 0)
               AS return_square_sum_20,
           growth_sum - coalesce(lag(growth_sum, 20) OVER w, 0) AS growth_sum_20,
           j_growth_sum - coalesce(lag(j_growth_sum, 20) OVER w, 0) AS j_growth_sum_20
    FROM tail_running
    WINDOW w AS (PARTITION BY ticker ORDER BY session)
),
fast_rows AS (
    -- One session, tickers whose tail is `recent` and whose chain continues from the session
    -- before (the daily run's ~all): row j of 21 and the per-row terms, no per-ticker input.
    SELECT ticker, session, high, low, close,
           row_number() OVER w AS j,
           lag(close) OVER w AS previous_close,
           ln(close / lag(close) OVER w) AS log_return,
           ln(close / first_value(close) OVER w) AS log_growth
    FROM recent
    WINDOW w AS (PARTITION BY ticker ORDER BY session)
),
fast_sums AS (
    -- The session is row 21, so each running sum of the range path is a plain sum over the
    -- tail in session order, and "the running sum 5 / 20 rows ago" the same sum over rows
    -- <= 16 / <= 1: the same additions in the same order, in one aggregate pass.
    SELECT ticker, max(session) AS session, count(*) AS j,
           max(close) FILTER (WHERE j = 21) AS close,
           max(high) FILTER (WHERE j = 21) AS high,
           max(low) FILTER (WHERE j = 21) AS low,
           max(previous_close) FILTER (WHERE j = 21) AS previous_close,
           ln(max(close) FILTER (WHERE j = 21) / max(close) FILTER (WHERE j = 1))
               AS log_return_20,
           max(high) FILTER (WHERE j > 7) AS hh14,
           min(low) FILTER (WHERE j > 7) AS ll14,
           sum(close) - coalesce(sum(close) FILTER (WHERE j <= 16), 0) AS close_sum_5,
           sum(close) - coalesce(sum(close) FILTER (WHERE j <= 1), 0) AS close_sum_20,
           sum(log_return * log_return)
               - coalesce(sum(log_return * log_return) FILTER (WHERE j <= 1), 0)
               AS return_square_sum_20,
           sum(log_growth) - coalesce(sum(log_growth) FILTER (WHERE j <= 1), 0)
               AS growth_sum_20,
           sum(j * log_growth) - coalesce(sum(j * log_growth) FILTER (WHERE j <= 1), 0)
               AS j_growth_sum_20
    FROM fast_rows
    GROUP BY ticker
),
fast AS (
    -- The Wilder running sums: the chain's (the split row's term) plus the session's term,
    -- as sum() over the tail would add them.
    SELECT s.ticker, s.sector_etf, s.shares_outstanding, s.industry, s.tr_base, s.gain_base,
           s.loss_base, f.session, f.close, s.k_offset + 21 AS k, f.j, f.log_return_20,
           f.hh14, f.ll14,
           CASE WHEN s.tr_seed IS NULL THEN t.tr ELSE s.tr_seed + t.tr END AS tr_run,
           CASE WHEN s.gain_seed IS NULL THEN t.gain ELSE s.gain_seed + t.gain END AS gain_run,
           CASE WHEN s.loss_seed IS NULL THEN t.loss ELSE s.loss_seed + t.loss END AS loss_run,
           f.close_sum_5, f.close_sum_20, f.return_square_sum_20, f.growth_sum_20,
           f.j_growth_sum_20
    FROM fast_sums f
    JOIN split s ON s.ticker = f.ticker
    CROSS JOIN LATERAL (
        SELECT (greatest(f.high, f.previous_close) - least(f.low, f.previous_close)) * weight
                   AS tr,
               greatest(f.close - f.previous_close, 0) * weight AS gain,
               greatest(f.previous_close - f.close, 0) * weight AS loss
        FROM (SELECT wilder_weight(s.k_offset + 21, 15, 14) AS weight) w
    ) t
    WHERE s.fast  -- so its tail is 21 rows: 20 complete sessions and the session
),
tail_windows AS (
    SELECT ticker, sector_etf, shares_outstanding, industry, session, close, k, j,
           log_return_20, hh14, ll14, tr_base, gain_base, loss_base, tr_run, gain_run, loss_run,
           tr_base + coalesce(tr_run, 0) AS tr_sum,
           gain_base + coalesce(gain_run, 0) AS gain_sum,
           loss_base + coalesce(loss_run, 0) AS loss_sum,
           close_sum_5, close_sum_20, return_square_sum_20, growth_sum_20, j_growth_sum_20
    FROM (SELECT ticker, sector_etf, shares_outstanding, industry, tr_base, gain_base,
                 loss_base, session, close, k, j, log_return_20, hh14, ll14, tr_run, gain_run,
                 loss_run, close_sum_5, close_sum_20, return_square_sum_20, growth_sum_20,
                 j_growth_sum_20
          FROM range_windows
          WHERE session = ANY(:sessions)
          UNION ALL
          SELECT ticker, sector_etf, shares_outstanding, industry, tr_base, gain_base,
                 loss_base, session, close, k, j, log_return_20, hh14, ll14, tr_run, gain_run,
                 loss_run, close_sum_5, close_sum_20, return_square_sum_20, growth_sum_20,
                 j_growth_sum_20
          FROM fast) t
),
stock AS (
    -- Least squares over rows j-19..j: slope = sum((i - (j - 9.5)) y_i) / 665, 665 = sum of the
    -- squared centred row numbers; the 20 returns' variance = (sum r^2 - (sum r)^2 / 20) / 19
    -- with sum r = ln(close / close 20 rows ago).
    SELECT ticker, sector_etf, shares_outstanding, industry, session, close, gain_sum, loss_sum,
           k, tr_base, gain_base, loss_base, tr_run, gain_run, loss_run,
           wilder_value(tr_sum, k, 15, 14) AS atr14,
           wilder_value(gain_sum + loss_sum, k, 15, 14) AS gain_plus_loss,
           CASE WHEN k >= 14 THEN
               CASE WHEN hh14 > ll14 THEN 100 * (close - ll14) / (hh14 - ll14) ELSE 0 END
           END AS stoch14,
           CASE WHEN k >= 5 THEN close_sum_5 / 5 END AS sma5,
           CASE WHEN k >= 20 THEN close_sum_20 / 20 END AS sma20,
           CASE WHEN k >= 21 THEN
               sqrt(greatest(return_square_sum_20 - log_return_20 * log_return_20 / 20, 0) / 19)
           END AS vol20,
           CASE WHEN k >= 20 THEN (j_growth_sum_20 - (j - 9.5) * growth_sum_20) / 665 END AS slope20
    FROM tail_windows
),
index_rows AS (
    SELECT ticker, session, close,
           row_number() OVER w AS k,
           close / lag(close) OVER w - 1 AS change_1d,
           close / lag(close, 5) OVER w - 1 AS ret5,
           close - lag(open, 4) OVER w AS oc5,
           wilder_weight(row_number() OVER w, 15, 14) AS weight,
           CASE WHEN row_number() OVER w > 1
                THEN greatest(high, lag(close) OVER w) - least(low, lag(close) OVER w) END AS tr
    FROM index_bars
    WHERE session BETWEEN :lookback_start AND :last_session
    WINDOW w AS (PARTITION BY ticker ORDER BY session)
),
index_weeks AS (
    SELECT ticker, session, close, change_1d, ret5,
           oc5 / wilder_value(sum(tr * weight) OVER (PARTITION BY ticker ORDER BY session
                                                     ROWS UNBOUNDED PRECEDING),
                              k, 15, 14) AS oc_atr
    FROM index_rows
),
idx AS MATERIALIZED (
    SELECT * FROM (
        SELECT ticker, session, close, change_1d,
               ret5 AS change_5d,
               ret5 AS ret5_w1,
               lag(ret5, 5) OVER w AS ret5_w2,
               lag(ret5, 10) OVER w AS ret5_w3,
               lag(ret5, 15) OVER w AS ret5_w4,
               lag(oc_atr, 5) OVER w AS oc_atr_w2,
               lag(oc_atr, 10) OVER w AS oc_atr_w3,
               lag(oc_atr, 15) OVER w AS oc_atr_w4
        FROM index_weeks
        WINDOW w AS (PARTITION BY ticker ORDER BY session)
    ) weeks
    WHERE session = ANY(:sessions)
),
context AS (
    -- Per sector ETF and session: everything a stock reads from the index series.
    SELECT etf.sector_etf, s.session,
           spy.close AS spy_close,
           vix.change_1d AS vix_change_1d,
           vix.change_5d AS vix_change_5d,
           sector.ret5_w1 - spy.ret5_w1 AS rel_w1,
           sector.ret5_w2 - spy.ret5_w2 AS rel_w2,
           sector.ret5_w3 - spy.ret5_w3 AS rel_w3,
           sector.ret5_w4 - spy.ret5_w4 AS rel_w4,
           sector.oc_atr_w2, sector.oc_atr_w3, sector.oc_atr_w4
    FROM unnest(CAST(:sessions AS date[])) AS s(session)
    CROSS JOIN (SELECT DISTINCT sector_etf FROM written) etf
    LEFT JOIN idx sector ON sector.ticker = etf.sector_etf AND sector.session = s.session
    LEFT JOIN idx spy ON spy.ticker = 'SPY' AND spy.session = s.session
    LEFT JOIN idx vix ON vix.ticker = 'VIX' AND vix.session = s.session
),
industry_caps AS (
    -- Summed exactly, in whole cents: the total does not depend on the order rows arrive in.
    SELECT t.industry, b.session,
           sum(round(t.shares_outstanding * b.close * 100)::bigint)::double precision / 100 AS cap
    FROM market_bars b
    JOIN tickers t ON t.ticker = b.ticker
    WHERE b.session = ANY(:sessions)
      AND t.industry IS NOT NULL AND t.shares_outstanding IS NOT NULL
    GROUP BY t.industry, b.session
)
SELECT s.ticker, s.session,
       s.atr14,
       s.atr14 / s.close,
       s.vol20,
       CASE WHEN s.gain_plus_loss IS NULL THEN NULL
            WHEN abs(s.gain_plus_loss) < 1e-8 THEN 0
            ELSE 100 * s.gain_sum / (s.gain_sum + s.loss_sum) END,
       s.stoch14,
       s.close / s.sma5 - 1,
       s.close / s.sma20 - 1,
       (s.close - s.sma20) / nullif(s.atr14, 0),
       s.slope20 * 20 / (nullif(s.vol20, 0) * sqrt(20)),
       c.vix_change_1d,
       c.vix_change_5d,
       c.rel_w1, c.rel_w2, c.rel_w3, c.rel_w4,
       c.oc_atr_w2, c.oc_atr_w3, c.oc_atr_w4,
       s.shares_outstanding * s.close / (:sp500_cap_per_spy * c.spy_close),
       s.shares_outstanding * s.close / industry.cap,
       s.k, s.tr_base, s.tr_run, s.gain_base, s.gain_run, s.loss_base, s.loss_run
FROM stock s
LEFT JOIN context c ON c.sector_etf = s.sector_etf AND c.session = s.session
LEFT JOIN industry_caps industry ON industry.industry = s.industry AND industry.session = s.session;

-- name: range_stats
-- Rows written for the sessions, and NULLs per feature (warm-up or missing inputs).
SELECT count(*) AS rows, count(DISTINCT ticker) AS tickers, count(DISTINCT session) AS sessions,
       count(*) - count(atr_14)                       AS atr_14,
       count(*) - count(atr_pct_14)                   AS atr_pct_14,
       count(*) - count(volatility_20d)               AS volatility_20d,
       count(*) - count(rsi_14)                       AS rsi_14,
       count(*) - count(stoch_14)                     AS stoch_14,
       count(*) - count(dist_from_sma_5)              AS dist_from_sma_5,
       count(*) - count(dist_from_sma_20)             AS dist_from_sma_20,
       count(*) - count(dist_from_sma_20_atr_norm)    AS dist_from_sma_20_atr_norm,
       count(*) - count(trend_strength_20)            AS trend_strength_20,
       count(*) - count(vix_change_1d)                AS vix_change_1d,
       count(*) - count(vix_change_5d)                AS vix_change_5d,
       count(*) - count(sector_vs_spy_weekly_ret_w1)  AS sector_vs_spy_weekly_ret_w1,
       count(*) - count(sector_vs_spy_weekly_ret_w2)  AS sector_vs_spy_weekly_ret_w2,
       count(*) - count(sector_vs_spy_weekly_ret_w3)  AS sector_vs_spy_weekly_ret_w3,
       count(*) - count(sector_vs_spy_weekly_ret_w4)  AS sector_vs_spy_weekly_ret_w4,
       count(*) - count(sector_etf_weekly_oc_atr_w2)  AS sector_etf_weekly_oc_atr_w2,
       count(*) - count(sector_etf_weekly_oc_atr_w3)  AS sector_etf_weekly_oc_atr_w3,
       count(*) - count(sector_etf_weekly_oc_atr_w4)  AS sector_etf_weekly_oc_atr_w4,
       count(*) - count(market_cap_to_sp500)          AS market_cap_to_sp500,
       count(*) - count(market_cap_to_industry_index) AS market_cap_to_industry_index
FROM daily_features
WHERE session = ANY(:sessions);

-- name: rows_outside
-- Any stored row outside [first, last]? Two index probes, instant on any table size.
SELECT EXISTS (SELECT 1 FROM daily_features WHERE session < :first_session)
    OR EXISTS (SELECT 1 FROM daily_features WHERE session > :last_session);

-- name: truncate
TRUNCATE daily_features;

-- name: drop_indexes
-- A rewrite of everything the table holds builds the indexes once at the end (a sort) instead
-- of row by row; after TRUNCATE in the same transaction (wal_level minimal) nothing is WAL-logged.
ALTER TABLE daily_features DROP CONSTRAINT daily_features_pkey;
DROP INDEX daily_features_session_idx;

-- name: create_indexes
SET LOCAL maintenance_work_mem = '1GB';
ALTER TABLE daily_features ADD CONSTRAINT daily_features_pkey PRIMARY KEY (ticker, session);
CREATE INDEX daily_features_session_idx ON daily_features (session);
