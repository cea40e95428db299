-- Statements behind the backtest assets.

-- name: held_out_signals
-- One side's signals in the held-out range of its active model, with their features.
SELECT i.*, s.target_50, s.atr AS signal_atr
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

-- name: label_trades
-- The static bracket without a time cut is exactly the labels: every filled signal the target
-- or the stop decided (expiries only when a label horizon is set), gross and net of costs.
SELECT s.side, count(*) FILTER (WHERE o.entry_session IS NOT NULL)         AS signals,
       count(*) FILTER (WHERE o.status IN ('win', 'loss', 'expired'))      AS trades,
       count(*) FILTER (WHERE o.status IN ('win', 'loss', 'expired') AND o.r_multiple > 0) AS wins,
       avg((o.r_multiple > 0)::int) FILTER (WHERE o.status IN ('win', 'loss', 'expired'))
                                                                            AS win_rate,
       avg(o.r_multiple) FILTER (WHERE o.status IN ('win', 'loss', 'expired'))  AS expectancy_r,
       coalesce(sum(o.r_multiple) FILTER (WHERE o.status IN ('win', 'loss', 'expired')), 0)
                                                                            AS sum_r,
       avg(o.net_r_multiple) FILTER (WHERE o.status IN ('win', 'loss', 'expired'))
                                                                            AS expectancy_net_r,
       coalesce(sum(o.net_r_multiple) FILTER (WHERE o.status IN ('win', 'loss', 'expired')), 0)
                                                                            AS sum_net_r
FROM breakout_signals s JOIN signal_outcomes o USING (signal_id)
GROUP BY s.side ORDER BY s.side;
