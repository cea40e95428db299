-- Statements behind the backtest assets.

-- name: held_out_signals
-- One side's signals in the held-out range of its active model, with their features.
SELECT i.*, s.target_50
FROM model_inputs i JOIN breakout_signals s USING (signal_id)
WHERE i.side = :side AND i.session BETWEEN :first AND :last
ORDER BY i.session, i.signal_id;

-- name: filled_signals
-- Signals whose primary bracket filled, with the levels management needs.
SELECT s.signal_id, s.ticker, s.session, s.side, s.entry, s.stop, s.booked_target,
       s.target_50, s.target_75, s.target_100, s.risk, s.atr,
       o.entry_session, o.entry_price, o.status
FROM breakout_signals s JOIN signal_outcomes o USING (signal_id)
WHERE o.entry_session IS NOT NULL
ORDER BY s.session, s.signal_id;

-- name: delete_results
DELETE FROM backtest_results WHERE backtest = :backtest;

-- name: insert_result
-- expectancy_r and sum_r are gross; the net ones (after costs) are NULL where not computed.
INSERT INTO backtest_results (backtest, variant, side, signals, trades, wins, win_rate,
                              expectancy_r, sum_r, detail, expectancy_net_r, sum_net_r)
VALUES (:backtest, :variant, :side, :signals, :trades, :wins, :win_rate, :expectancy_r,
        :sum_r, CAST(:detail AS jsonb), :expectancy_net_r, :sum_net_r);
