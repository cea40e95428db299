-- Statements behind the options_backtest asset (breakout_assets/assets/options_backtest.py).

-- name: labelled_signals
-- Every signal with a final outcome, the stock trade's R (NULL where the bracket never filled)
-- and the model's confidence where the signal was scored.
SELECT s.signal_id, s.ticker, s.session, s.side, s.target_50, s.target_75, s.target_100,
       o.status, o.r_multiple AS stock_r, o.net_r_multiple AS stock_net_r,
       c.confidence
FROM breakout_signals s
JOIN signal_outcomes o USING (signal_id)
LEFT JOIN signal_scores c USING (signal_id)
WHERE o.status <> 'pending'
ORDER BY s.session, s.signal_id;

-- name: closes
-- The daily closes of every ticker with a labelled signal, in one read (grouped in pandas).
SELECT b.ticker, b.session, b.close
FROM market_bars b
WHERE b.ticker IN (
    SELECT DISTINCT s.ticker
    FROM breakout_signals s JOIN signal_outcomes o USING (signal_id)
    WHERE o.status <> 'pending'
)
ORDER BY b.ticker, b.session;
