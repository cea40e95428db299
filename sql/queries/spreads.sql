-- The options overlay's assets (breakout_assets/assets/options.py): planning spreads for the
-- traded signals and sending the approved ones. Table in migration 0017.

-- name: inputs
-- Signals scored to trade, with the targets the spread's strikes follow and the underlying's
-- close on the signal session (the model chain prices at it).
SELECT sc.signal_id, sc.session, sc.side, sc.confidence, sc.expected_value, s.ticker,
       s.target_50, s.target_75, s.target_100, b.close AS underlying_price
FROM signal_scores sc
JOIN breakout_signals s USING (signal_id)
JOIN market_bars b ON b.ticker = s.ticker AND b.session = sc.session
WHERE sc.session = ANY(:sessions) AND sc.decision = 'trade'
ORDER BY sc.session, sc.expected_value DESC, sc.signal_id;

-- name: closes
-- The closes the realised volatility of each signal's ticker is read from.
SELECT ticker, session, close FROM market_bars
WHERE ticker = ANY(:tickers) AND session BETWEEN :first AND :last
ORDER BY ticker, session;

-- name: kept
-- Spreads a human (or unattended mode) decided on, that were sent or expired: a re-run keeps
-- them, and those still at risk count against their session's cap.
SELECT order_ref, signal_id, session, status,
       CASE WHEN status IN ('approved', 'sent') THEN max_loss ELSE 0 END AS risk_dollars
FROM option_spreads
WHERE session = ANY(:sessions) AND status IN ('approved', 'rejected', 'sent', 'expired');

-- name: stock_risk
-- The stock book's planned risk and positions per session (plans not rejected or expired): the
-- spreads share the book's open-risk and open-positions caps with it.
SELECT session, coalesce(sum(risk_dollars), 0) AS risk_dollars,
       count(*) FILTER (WHERE quantity > 0) AS positions
FROM trade_plan
WHERE session = ANY(:sessions) AND status IN ('pending_approval', 'approved', 'sent')
GROUP BY session;

-- name: delete_undecided
DELETE FROM option_spreads
WHERE session = ANY(:sessions) AND status IN ('pending_approval', 'skipped');

-- name: insert
INSERT INTO option_spreads (order_ref, signal_id, session, ticker, side, option_right, expiry,
    long_strike, short_strike, net_debit, width, contracts, max_loss, max_gain, ev, confidence,
    close_trigger, status, reason, mode, decided_by, decided_at)
VALUES (:order_ref, :signal_id, :session, :ticker, :side, :option_right, :expiry, :long_strike,
    :short_strike, :net_debit, :width, :contracts, :max_loss, :max_gain, :ev, :confidence,
    :close_trigger, :status, :reason, :mode, :decided_by, :decided_at);

-- name: approved
SELECT order_ref, session, ticker, side, option_right, expiry, long_strike, short_strike,
       contracts, net_debit, close_trigger
FROM option_spreads
WHERE session = ANY(:sessions) AND status = 'approved'
ORDER BY session, ev DESC, order_ref;

-- name: approved_before
-- Approved spreads of earlier sessions never sent (dry-run, or a run that never came): expired
-- once their entry window has passed, so they never accumulate.
SELECT order_ref, session FROM option_spreads
WHERE session < :session AND status = 'approved'
ORDER BY session, order_ref;

-- name: record_answer
-- What the broker said (or, dry-run, what would have been sent). A spread the broker has is
-- 'sent' (never in dry-run); an expired one is 'expired'; others stay approved for a re-run.
UPDATE option_spreads
SET broker = :broker, dry_run = :dry_run, broker_order_ids = CAST(:broker_order_ids AS jsonb),
    error = :error,
    status = CASE WHEN :outcome = 'expired' THEN 'expired'
                  WHEN :outcome IN ('submitted', 'already_at_broker') AND NOT :dry_run
                      THEN 'sent'
                  ELSE status END,
    sent_at = CASE WHEN :outcome IN ('submitted', 'already_at_broker') AND NOT :dry_run
                   THEN coalesce(sent_at, now()) ELSE sent_at END,
    reason = CASE WHEN :outcome = 'expired' THEN :error ELSE reason END
WHERE order_ref = :order_ref;
