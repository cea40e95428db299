-- The models' inputs and their experiments.

-- One row per signal: the fixed features (breakout_assets/ml/features.py) as of the signal
-- session. Training and live scoring both read this view, so they see the same numbers.
CREATE VIEW model_inputs AS
SELECT s.signal_id, s.ticker, s.session, s.side, s.entry, s.stop, s.booked_target, s.risk,
       s.reward_risk,
       s.basic_tightness, s.consol_duration, s.rally_pct, s.rally_duration, s.rally_intensity,
       s.consol_end_close_pct, s.consol_rally_duration_ratio, s.consol_bearish_ratio,
       s.candles_close_above_entry, s.momentum_second_half, s.stock_vs_sector_rally_strength,
       s.stock_vs_qqq_rally_strength, s.sector_vs_market_strength, s.qqq_consol_vs_rally_pct,
       s.breakout_day_atr_multiple, s.rally_avg_volume_to_breakout_ratio, s.consol_volume_pct,
       s.rally_volume_pct, s.consol_avg_volume_to_breakout_ratio,
       s.breakout_range_to_consol_avg_range_ratio, s.fib_retracement_zone, s.old_entry_touches,
       s.old_entry_touches_ratio, s.stop_touches_ratio, s.entry_month::float8 AS entry_month,
       s.pattern_score,
       f.atr_pct_14, f.volatility_20d, f.rsi_14, f.stoch_14, f.dist_from_sma_5,
       f.dist_from_sma_20, f.dist_from_sma_20_atr_norm, f.trend_strength_20, f.vix_change_1d,
       f.vix_change_5d, f.sector_vs_spy_weekly_ret_w1, f.sector_vs_spy_weekly_ret_w2,
       f.sector_vs_spy_weekly_ret_w3, f.sector_vs_spy_weekly_ret_w4,
       f.sector_etf_weekly_oc_atr_w2, f.sector_etf_weekly_oc_atr_w3,
       f.sector_etf_weekly_oc_atr_w4, f.market_cap_to_sp500, f.market_cap_to_industry_index
FROM breakout_signals s
LEFT JOIN daily_features f ON f.ticker = s.ticker AND f.session = s.session;

-- Every training run, promoted or not (a contract).
CREATE TABLE model_experiments (
    experiment_id text PRIMARY KEY,
    side          text        NOT NULL CHECK (side IN ('long', 'short')),
    created_at    timestamptz NOT NULL,
    params        jsonb       NOT NULL,
    features      jsonb       NOT NULL,  -- ordered
    train_range   daterange   NOT NULL,
    test_range    daterange   NOT NULL,
    split         jsonb       NOT NULL,  -- split, cv, folds, seed, trials, embargo
    metrics       jsonb       NOT NULL,  -- held-out metrics, calibration, expectancy, importance
    artifact_path text        NOT NULL,
    model_sha256  text        NOT NULL,
    promoted      boolean     NOT NULL DEFAULT false,
    promotion     jsonb       NOT NULL   -- the rules applied and their verdicts
);
CREATE INDEX model_experiments_side_idx ON model_experiments (side, created_at);
