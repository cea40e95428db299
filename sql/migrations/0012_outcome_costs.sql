-- Trading costs in R (breakout_assets/core/costs.py): outcomes keep the gross R and add the net.
-- cost_r is the round trip's commissions and slippage in R of the signal's planned risk;
-- net_r_multiple = r_multiple - cost_r. Both are set exactly when the row is a final, filled
-- trade (win, loss, expired). Rows that were final before this migration get them once, from
-- the signal_outcomes asset (their gross columns are never rewritten).

ALTER TABLE signal_outcomes
    ADD COLUMN cost_r         double precision,
    ADD COLUMN net_r_multiple double precision,
    ADD CONSTRAINT signal_outcomes_cost_pair CHECK ((cost_r IS NULL) = (net_r_multiple IS NULL)),
    ADD CONSTRAINT signal_outcomes_cost_final
        CHECK (cost_r IS NULL OR status IN ('win', 'loss', 'expired')),
    ADD CONSTRAINT signal_outcomes_cost_non_negative CHECK (cost_r IS NULL OR cost_r >= 0),
    ADD CONSTRAINT signal_outcomes_net_below_gross
        CHECK (net_r_multiple IS NULL OR net_r_multiple <= r_multiple);

-- The scores keep the gross EV next to the net one (expected_value is net of costs from now on).
ALTER TABLE signal_scores
    ADD COLUMN gross_expected_value double precision,
    ADD COLUMN cost_r               double precision CHECK (cost_r IS NULL OR cost_r >= 0);

-- Backtests report both: expectancy_r and sum_r stay gross, these are after costs.
ALTER TABLE backtest_results
    ADD COLUMN expectancy_net_r double precision,
    ADD COLUMN sum_net_r        double precision;
