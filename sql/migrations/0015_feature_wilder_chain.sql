-- The Wilder chain state on each daily_features row (not features: `model_inputs` never reads
-- them). A run continues the ATR / RSI running sums from the stored row of each ticker's
-- previous bar instead of folding ~300 sessions of lookback again, so the daily run reads a
-- ticker's last 21 bars whatever the history stored (sql/features/daily_features.sql, header).
-- Rows written before this migration have NULL state: their next run folds the lookback once.
ALTER TABLE daily_features
    ADD COLUMN wilder_row       integer,           -- k: the row's number in its chain
    ADD COLUMN wilder_tr_base   double precision,  -- the folded lookback's sum (constant in a chain)
    ADD COLUMN wilder_tr_run    double precision,  -- the running sum since the fold
    ADD COLUMN wilder_gain_base double precision,
    ADD COLUMN wilder_gain_run  double precision,
    ADD COLUMN wilder_loss_base double precision,
    ADD COLUMN wilder_loss_run  double precision;
