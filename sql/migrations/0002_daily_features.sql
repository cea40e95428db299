-- Daily features: per ticker and session market features, written by the `daily_features` asset
-- from `sql/features/daily_features.sql`. The definitions (a contract) are documented there.
-- Every feature is nullable: NULL while a ticker is warming up (too few bars for the window) or
-- when an input is missing (no shares outstanding, no industry, no index bar that session).

CREATE TABLE daily_features (
    ticker                       text COLLATE "C" NOT NULL,
    session                      date             NOT NULL,
    atr_14                       double precision,  -- helper: Wilder ATR(14) in price units
    atr_pct_14                   double precision,
    volatility_20d               double precision,
    rsi_14                       double precision,
    stoch_14                     double precision,
    dist_from_sma_5              double precision,
    dist_from_sma_20             double precision,
    dist_from_sma_20_atr_norm    double precision,
    trend_strength_20            double precision,
    vix_change_1d                double precision,
    vix_change_5d                double precision,
    sector_vs_spy_weekly_ret_w1  double precision,
    sector_vs_spy_weekly_ret_w2  double precision,
    sector_vs_spy_weekly_ret_w3  double precision,
    sector_vs_spy_weekly_ret_w4  double precision,
    sector_etf_weekly_oc_atr_w2  double precision,
    sector_etf_weekly_oc_atr_w3  double precision,
    sector_etf_weekly_oc_atr_w4  double precision,
    market_cap_to_sp500          double precision,
    market_cap_to_industry_index double precision,
    PRIMARY KEY (ticker, session)
);
-- Partition rewrites delete by session: this index makes that a range scan.
CREATE INDEX daily_features_session_idx ON daily_features (session);

-- Wilder's smoothing S_t = S_{t-1} + (x_t - S_{t-1}) / n, seeded (as TA-Lib seeds ATR and RSI)
-- with the mean of the first n values, has the closed form
--     S_t = (1/n) * b^t * sum_{k <= t} x_k * b^(-max(k, s)),   b = (n - 1) / n,
-- where k numbers a series' rows and s is the row of the seed (the n-th value): the seed's n
-- values all get the weight b^(-s), each later value b^(-k). A running sum() window of
-- x_k * wilder_weight(k) therefore gives the exact recursion in one ordered pass, without a
-- per-row aggregate state function (a plpgsql or SQL state function costs microseconds a row;
-- these two are plain SQL expressions the planner inlines). The summed terms are >= 0 (true
-- ranges, gains, losses), so the sums are well conditioned; b^(-k) stays finite for k below
-- ~9,000 rows with n = 14, and the asset keeps k under ~7,000 (lookback + chunk settings).

-- The weight of row k's value in the running sum (k >= 1; `seed` is the seed's row, n + 1 for
-- series whose first value is on row 2, like true ranges and close-to-close changes).
CREATE FUNCTION wilder_weight(k bigint, seed bigint, n integer)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN power((n - 1)::double precision / n, -greatest(k, seed)::double precision);

-- The smoothed value at row k from the running sum of value * wilder_weight; NULL before the seed.
CREATE FUNCTION wilder_value(running_sum double precision, k bigint, seed bigint, n integer)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN k >= seed
            THEN running_sum * power((n - 1)::double precision / n, k::double precision) / n
       END;
