-- The summary `make demo` prints.

-- name: summary
SELECT (SELECT count(*) FROM market_bars)                   AS market_bars_rows,
       (SELECT count(DISTINCT ticker) FROM market_bars)     AS stock_tickers,
       (SELECT count(DISTINCT session) FROM market_bars)    AS sessions,
       (SELECT count(*) FROM index_bars)                    AS index_bars_rows,
       (SELECT count(*) FROM quarantined_bars)              AS quarantined_rows,
       (SELECT count(*) FROM tickers)                       AS reference_tickers,
       (SELECT count(*) FROM daily_features)                AS daily_features_rows,
       (SELECT count(*) FILTER (WHERE side = 'long') FROM breakout_signals)  AS long_signals,
       (SELECT count(*) FILTER (WHERE side = 'short') FROM breakout_signals) AS short_signals,
       (SELECT string_agg(status || ' ' || n, ', ' ORDER BY status)
          FROM (SELECT status, count(*) AS n FROM signal_outcomes GROUP BY status) o) AS outcomes,
       (SELECT round(sum(r_multiple)::numeric, 2) FROM signal_outcomes)      AS outcomes_sum_r,
       (SELECT string_agg(experiment_id || CASE WHEN promoted THEN ' (active)' ELSE '' END,
                          ', ' ORDER BY side)
          FROM model_experiments
          WHERE created_at = (SELECT max(created_at) FROM model_experiments e
                              WHERE e.side = model_experiments.side))    AS models;

-- name: trading_summary
-- The demo's trading year: decisions, plans, orders, and the simulated broker's closed trades
-- in R (exit - fill, per share, over the planned risk |entry - initial stop|).
WITH closed AS (
    SELECT o.order_ref,
           (CASE o.side WHEN 'long' THEN 1 ELSE -1 END) * (x.price - e.price)
               / abs(o.entry - o.initial_stop) AS r
    FROM sim_orders o
    JOIN sim_fills e ON e.order_ref = o.order_ref AND e.leg = 'entry'
    JOIN sim_fills x ON x.order_ref = o.order_ref AND x.leg <> 'entry'
)
SELECT (SELECT count(*) FROM signal_scores)                                 AS scored_signals,
       (SELECT string_agg(decision || ' ' || n, ', ' ORDER BY decision)
          FROM (SELECT decision, count(*) AS n FROM signal_scores GROUP BY decision) d)
                                                                        AS decisions,
       (SELECT string_agg(status || ' ' || n, ', ' ORDER BY status)
          FROM (SELECT status, count(*) AS n FROM trade_plan GROUP BY status) p) AS plans,
       (SELECT string_agg(status || ' ' || n, ', ' ORDER BY status)
          FROM (SELECT status, count(*) AS n FROM broker_orders GROUP BY status) b) AS orders,
       (SELECT coalesce(string_agg(status || ' ' || n, ', ' ORDER BY status), 'none')
          FROM (SELECT status, count(*) AS n FROM opposing_orders GROUP BY status) f)
                                                                        AS opposing_fades,
       (SELECT count(*) FROM sim_fills)                                     AS simulated_fills,
       (SELECT coalesce(string_agg(action || ' ' || n, ', ' ORDER BY action), 'none')
          FROM (SELECT action, count(*) AS n FROM stop_updates GROUP BY action) u)
                                                                        AS position_management,
       (SELECT count(*) FROM closed)                                        AS closed_trades,
       (SELECT round(avg((r > 0)::int)::numeric, 3) FROM closed)            AS win_rate,
       (SELECT round(sum(r)::numeric, 2) FROM closed)                       AS sum_r,
       (SELECT round(cash::numeric, 2) FROM sim_account)                    AS simulated_cash,
       (SELECT coalesce(string_agg(status || ' ' || n, ', ' ORDER BY status), 'none')
          FROM (SELECT mode || ' ' || status AS status, count(*) AS n
                FROM option_spreads GROUP BY 1) s)                          AS option_spreads,
       (SELECT count(*) || ' closed, mean ' || coalesce(round(avg((x.price - e.price)
                   / e.price)::numeric, 2)::text, '-') || ' R (debit units)'
          FROM sim_spread_fills e
          JOIN sim_spread_fills x ON x.order_ref = e.order_ref AND x.leg <> 'entry'
          WHERE e.leg = 'entry')                                            AS option_spreads_closed;

-- name: reset_trading
-- The demo owns the simulated account: each demo trades its year from a fresh one.
TRUNCATE sim_stop_changes, sim_fills, sim_orders, sim_processed_sessions, sim_account,
         sim_spread_fills, sim_spread_orders, option_spreads,
         stop_updates, broker_orders, trade_plan, opposing_orders, signal_scores, halt_events,
         journal, journal_exceptions, report_deliveries, model_drift;

-- name: latest_experiments
-- Each side's newest training run: what the demo says about it.
SELECT DISTINCT ON (side) side, experiment_id, promoted, promotion, metrics
FROM model_experiments
ORDER BY side, created_at DESC;
