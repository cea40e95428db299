"""Backtest assets: the opposing book on 1-hour (else daily) bars, the primary book with and
without each management rule on daily bars. Both write `backtest_results` and put tables and
plots in their metadata. Both books report R before and after costs (core.costs: each order pays
commission and slippage at the reference trade's size; the primary's entry, add-ons and exit,
each fade leg's entry and exit).
"""

import json
from datetime import timedelta

import numpy as np
import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from sqlalchemy import Connection

from breakout_assets.assets.common import png_metadata, table_metadata
from breakout_assets.core.costs import (
    CostConfig,
    fills_cost_r,
    reference_shares,
    round_trip_costs_r,
)
from breakout_assets.core.opposing import TRADE_STATUSES, FadeBars, fade_summary, replay_fade
from breakout_assets.core.outcomes import trade_stats
from breakout_assets.core.trade_management import (
    ManagedPosition,
    ManagementConfig,
    ReplayResult,
    bars_from_arrays,
    replay_managed,
)
from breakout_assets.ml.dataset import model_confidence
from breakout_assets.ml.evaluation import bar_chart_png
from breakout_assets.partitions import session_ordinals
from breakout_assets.resources.bar_reader import read_signal_paths
from breakout_assets.resources.market_data import MarketDataResource
from breakout_assets.resources.market_data.base import MarketDataError
from breakout_assets.resources.model_store import ModelStore
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

GROUP = "research"
# Cumulative rule sets: each variant adds one rule to the one before (take-profit moves with
# the add-on, as DESIGN.md's table has it).
LABEL_VARIANT = "labels: target or stop"  # the static bracket without the live expiry
VARIANTS = {
    "static bracket": frozenset(),
    "+ breakeven": frozenset({"breakeven"}),
    "+ add-on": frozenset({"breakeven", "add_on", "take_profit"}),
    "+ trail": frozenset({"breakeven", "add_on", "take_profit", "trail"}),
}
_QUANTITY = 100  # R multiples do not depend on it; it makes add-on share counts whole
FADES = {"long": "long primary -> opposing short", "short": "short primary -> opposing long"}


def _plain(value):
    """numpy / pandas scalars as Python ones (NULL for NaN) for the insert."""
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    return None if isinstance(value, float) and np.isnan(value) else value


def write_results(conn: Connection, backtest: str, rows: list[dict]) -> pd.DataFrame:
    conn.execute(query("backtests.delete_results"), {"backtest": backtest})
    if rows:
        conn.execute(
            query("backtests.insert_result"),
            [
                {
                    "expectancy_net_r": None,
                    "sum_net_r": None,
                    **{k: _plain(v) for k, v in r.items()},
                    "backtest": backtest,
                    "detail": json.dumps(r["detail"]),
                }
                for r in rows
            ],
        )
    return pd.DataFrame(rows).drop(columns=["detail"], errors="ignore")


def hourly_fade_bars(source, ticker: str, session, window_days: int) -> FadeBars | None:
    """Regular-hours 1-hour bars after the signal session, or None where none are stored."""
    try:
        bars = source.hourly_bars(
            ticker, session + timedelta(days=1), session + timedelta(days=window_days)
        )
    except MarketDataError:
        return None
    if "is_extended_hours" in bars:
        bars = bars.loc[~bars["is_extended_hours"].astype(bool)]
    if bars.empty:
        return None
    days = pd.to_datetime(bars["ts"]).dt.tz_localize(None).dt.normalize().to_numpy("datetime64[D]")
    return FadeBars(session_ordinals(days), bars["open"], bars["high"], bars["low"], bars["close"])


class OpposingBacktestRun(Config):
    """Which models decide the fades: each side's serving model by default, or a recorded
    experiment (research measures the book of the models it just trained, promoted or not)."""

    long_experiment_id: str | None = None
    short_experiment_id: str | None = None

    def model(self, side: str, conn: Connection, store: ModelStore):
        experiment_id = getattr(self, f"{side}_experiment_id")
        if experiment_id is None:
            return store.load_active(side)
        row = (
            conn.execute(query("models.get_experiment"), {"experiment_id": experiment_id})
            .mappings()
            .first()
        )
        if row is None or row["side"] != side:
            raise ValueError(f"no {side} experiment {experiment_id!r} (breakout models list)")
        return store.load(row["artifact_path"])


def daily_fade_bars(conn: Connection, signals: pd.DataFrame, sessions: int) -> list[FadeBars]:
    """Each signal's stored daily bars for `sessions` sessions after its signal session."""
    if signals.empty:
        return []
    signal_ord = session_ordinals(signals["session"].to_numpy("datetime64[D]"))
    paths = read_signal_paths(conn, signals, signal_ord + sessions)
    return [
        FadeBars(
            paths.session_ord[a:b],
            paths.open[a:b],
            paths.high[a:b],
            paths.low[a:b],
            paths.close[a:b],
        )
        for a, b in zip(paths.offsets[:-1], paths.offsets[1:], strict=True)
    ]


def _fade_rows(
    side: str, signals: int, outcomes: list, atr: np.ndarray, costs: CostConfig, detail: dict
) -> list[dict]:
    """backtest_results rows of one direction's fades: all legs, then each leg, gross and net
    (each filled leg pays a round trip of the reference trade's costs, from its own fill)."""
    traded = np.array([x.status in TRADE_STATUSES for x in outcomes], dtype=bool)
    net = np.full(len(outcomes), np.nan)
    if traded.any():
        picked = [o for o, t in zip(outcomes, traded, strict=True) if t]
        net[traded] = np.array([o.r_multiple for o in picked]) - round_trip_costs_r(
            [o.fill_price for o in picked],
            [o.exit_price for o in picked],
            [o.risk_per_share for o in picked],
            np.asarray(atr, dtype=float)[traded],
            config=costs,
        )
    summary = fade_summary(outcomes, net)
    detail = {
        **detail,
        "no_alert": summary["no_alert"],
        "unfilled": summary["unfilled"],
        "pending": summary["pending"],
    }
    keys = ("trades", "wins", "win_rate", "expectancy_r", "sum_r", "expectancy_net_r", "sum_net_r")
    return [
        {
            "variant": variant,
            "side": "short" if side == "long" else "long",
            "signals": signals,
            **{k: stats[k] for k in keys},
            "detail": detail,
        }
        for variant, stats in [("all", summary), *summary["legs"].items()]
    ]


def primary_positions(conn: Connection, max_holding: int):
    """Each filled signal as (side, managed position, its daily bars from the fill session, the
    signal's ATR (NaN where it has none))."""
    signals = pd.read_sql(query("backtests.filled_signals"), conn)
    if signals.empty:
        return []
    fill_ord = session_ordinals(signals["entry_session"].to_numpy("datetime64[D]"))
    paths = read_signal_paths(conn, signals, fill_ord + max_holding - 1)
    prices = (paths.open, paths.high, paths.low, paths.close)
    out = []
    for i, s in enumerate(signals.itertuples()):
        k = np.arange(paths.offsets[i], paths.offsets[i + 1])
        k = k[paths.session_ord[k] >= fill_ord[i]]
        path = bars_from_arrays(paths.session_ord[k], *(p[k] for p in prices))
        position = ManagedPosition(
            order_ref=s.signal_id,
            book="primary",
            side=s.side,
            fill_price=float(s.entry_price),
            fill_session=int(fill_ord[i]),
            quantity=_QUANTITY,
            original_stop=float(s.stop),
            stop=float(s.stop),
            take_profit=float(s.booked_target),
            planned_risk=float(s.risk),
            original_dollar_risk=_QUANTITY * float(s.risk),
            signal_entry=float(s.entry),
            targets=(float(s.target_50), float(s.target_75), float(s.target_100)),
        )
        out.append((s.side, position, path, np.nan if pd.isna(s.atr) else float(s.atr)))
    return out


def replay_cost_r(
    position: ManagedPosition, result: ReplayResult, atr: float, costs: CostConfig
) -> float:
    """Commissions and slippage of a closed replay in R of its original dollar risk: the
    entry, each add-on and the exit are one order each, scaled to the reference trade's shares
    (core.costs.reference_shares), so a static bracket costs what its label does."""
    quantities, prices = [position.quantity], [position.fill_price]
    for a in result.actions:
        if a.action == "add_on":
            quantities.append(a.new_quantity - a.old_quantity)
            prices.append(a.price)
    quantities.append(sum(quantities))
    prices.append(result.exit_price)
    scale = float(reference_shares(position.planned_risk, costs)) / position.quantity
    return fills_cost_r(
        np.asarray(quantities, dtype=float) * scale,
        prices,
        position.planned_risk,
        atr,
        position.quantity * scale,
        config=costs,
    )


def _summary_row(variant: str, side: str, results: list, net: list[float], detail: dict) -> dict:
    """One variant and side: gross R (expectancy_r, sum_r) and R after costs (*_net_r)."""
    closed = [x.exit_session is not None for x in results]
    r = [x.r_multiple for x, c in zip(results, closed, strict=True) if c]
    n = [v for v, c in zip(net, closed, strict=True) if c]
    return {
        "variant": variant,
        "side": side,
        "signals": len(results),
        **trade_stats(np.array(r), np.array(n)),
        "detail": detail,
    }


def build_backtest_assets(settings: BreakoutSettings) -> list[AssetsDefinition]:
    opposing = settings.opposing
    management = ManagementConfig(outcomes=settings.outcomes)

    @asset(
        group_name=GROUP,
        kinds={"postgres"},
        deps=[AssetKey("signal_outcomes"), AssetKey("breakout_signals"), AssetKey("market_bars")],
        **versioned(settings, ("data_source", "outcomes", "costs"), ("backtests",)),
    )
    def primary_backtest(
        context: AssetExecutionContext, postgres: PostgresResource
    ) -> MaterializeResult:
        """The primary book both ways: as labelled (target or stop, no time cut), then every
        filled primary replayed on daily bars as a static bracket with the live holding limit,
        then adding breakeven, the day-2 add-on (with its take-profit) and the trail, in R of
        the original dollar risk, gross and net of costs."""
        with postgres.transaction() as conn:
            positions = primary_positions(conn, settings.outcomes.max_holding_sessions)
            labels = pd.read_sql(query("backtests.label_trades"), conn)
        label_detail = {
            "rules": [],
            "data_source": settings.data_source,
            "bars": "daily",
            "label_horizon_sessions": settings.outcomes.label_horizon_sessions,
            "costs": settings.costs.model_dump(),
        }
        rows = [
            {**r, "variant": LABEL_VARIANT, "detail": label_detail}
            for r in labels.to_dict("records")
        ]
        for variant, rules in VARIANTS.items():
            for side in ("long", "short"):
                replays = [
                    (p, replay_managed(p, path, management, rules), atr)
                    for s, p, path, atr in positions
                    if s == side
                ]
                net = [
                    x.r_multiple - replay_cost_r(p, x, atr, settings.costs)
                    if x.exit_session is not None
                    else np.nan
                    for p, x, atr in replays
                ]
                rows.append(
                    _summary_row(
                        variant,
                        side,
                        [x for _, x, _ in replays],
                        net,
                        {
                            "rules": sorted(rules),
                            "data_source": settings.data_source,
                            "bars": "daily",
                            "max_holding_sessions": settings.outcomes.max_holding_sessions,
                            "costs": settings.costs.model_dump(),
                        },
                    )
                )
        with postgres.transaction() as conn:
            table = write_results(conn, "primary_daily", rows)
        context.log.info(f"primary_backtest:\n{table}")
        labels = [f"{r['side']} {r['variant']}" for r in rows]
        return MaterializeResult(
            metadata={
                "data_source": f"{settings.data_source} daily bars",
                "positions": len(positions),
                "results": table_metadata(table),
                "costs": MetadataValue.json(settings.costs.model_dump()),
                "expectancy_plot": png_metadata(
                    bar_chart_png(
                        labels,
                        [r["expectancy_r"] or 0.0 for r in rows],
                        "expectancy (R per trade)",
                        "Primary book: static bracket vs each management rule (gross)",
                    ),
                    "primary",
                ),
                "expectancy_net_plot": png_metadata(
                    bar_chart_png(
                        labels,
                        [r["expectancy_net_r"] or 0.0 for r in rows],
                        "expectancy after costs (R per trade)",
                        "Primary book: static bracket vs each management rule (net of costs)",
                    ),
                    "primary net",
                ),
            }
        )

    @asset(
        group_name=GROUP,
        kinds={"postgres"},
        deps=[
            AssetKey("long_model"),
            AssetKey("short_model"),
            AssetKey("breakout_signals"),
            AssetKey("market_bars"),
            AssetKey("hourly_bars"),
        ],
        **versioned(
            settings, ("data_source", "opposing", "outcomes", "costs"), ("backtests", "models")
        ),
    )
    def opposing_backtest(
        context: AssetExecutionContext,
        config: OpposingBacktestRun,
        postgres: PostgresResource,
        model_store: ModelStore,
        market_data: MarketDataResource,
    ) -> MaterializeResult:
        """The fade of every held-out primary its active model scored below the gate: replayed
        on 1-hour bars where the source has them, on daily bars (the same conservative order
        inside a bar) elsewhere, reported separately: win rate, expectancy in R and trades per
        direction and per leg."""
        source = market_data.source()
        daily = opposing.on_daily_bars()
        window_days = int((opposing.window_sessions + opposing.max_holding_bars / 6) * 1.6) + 5
        rows: dict[str, list[dict]] = {"opposing_hourly": [], "opposing_daily": []}
        for side in ("long", "short"):
            with postgres.transaction() as conn:
                booster, card = config.model(side, conn, model_store)
                signals = pd.read_sql(
                    query("backtests.held_out_signals"),
                    conn,
                    params={"side": side, "first": card.test_range[0], "last": card.test_range[1]},
                )
            held_out = card.extra.get("test_signal_ids")  # exactly the rows it never saw
            if held_out is not None:
                signals = signals[signals["signal_id"].isin(held_out)]
            faded = signals[model_confidence(booster, card, signals) < opposing.confidence_below]
            hourly = [
                hourly_fade_bars(source, s.ticker, s.session, window_days)
                for s in faded.itertuples()
            ]
            covered = np.array([bars is not None for bars in hourly], dtype=bool)
            with postgres.transaction() as conn:
                elsewhere = daily_fade_bars(
                    conn, faded[~covered], daily.window_sessions + daily.max_holding_bars
                )
            detail = {
                "direction": FADES[side],
                "data_source": settings.data_source,
                "experiment_id": card.experiment_id,
                "held_out": list(card.test_range),
                "held_out_signals": len(signals),
                "scored_below_gate": len(faded),
                "with_hourly_bars": int(covered.sum()),
                "without_hourly_bars": int((~covered).sum()),
            }
            for backtest, book, group, bars in (
                ("opposing_hourly", opposing, faded[covered], [b for b in hourly if b is not None]),
                ("opposing_daily", daily, faded[~covered], elsewhere),
            ):
                outcomes = [
                    replay_fade(
                        1 if side == "long" else -1,
                        s.entry,
                        s.stop,
                        s.booked_target,
                        s.target_50,
                        path,
                        book,
                        signal_session=int(
                            session_ordinals(np.array([s.session], "datetime64[D]"))[0]
                        ),
                    )
                    for s, path in zip(group.itertuples(), bars, strict=True)
                ]
                rows[backtest] += _fade_rows(
                    side,
                    len(group),
                    outcomes,
                    group["signal_atr"].to_numpy(float),
                    settings.costs,
                    {
                        **detail,
                        "bars": backtest.removeprefix("opposing_"),
                        "max_holding_bars": book.max_holding_bars,
                    },
                )
        tables = {}
        with postgres.transaction() as conn:
            for backtest, found in rows.items():
                tables[backtest] = write_results(conn, backtest, found)
        table = pd.concat(
            [t.assign(backtest=name) for name, t in tables.items()], ignore_index=True
        )
        context.log.info(f"opposing_backtest ({settings.data_source}):\n{table}")
        overall = table[table["variant"] == "all"]
        return MaterializeResult(
            metadata={
                "data_source": f"{settings.data_source}: 1-hour bars where stored, else daily",
                "results": table_metadata(table),
                "coverage": table_metadata(
                    pd.DataFrame(
                        [
                            r["detail"]
                            for found in rows.values()
                            for r in found
                            if r["variant"] == "all"
                        ]
                    )
                ),
                "expectancy_plot": png_metadata(
                    bar_chart_png(
                        [
                            f"{r.backtest.removeprefix('opposing_')}: {r.side} fade"
                            for r in overall.itertuples()
                        ],
                        [r.expectancy_r or 0.0 for r in overall.itertuples()],
                        "expectancy (R per trade)",
                        "Opposing book: 1-hour vs daily bars",
                    ),
                    "opposing",
                ),
            }
        )

    return [primary_backtest, opposing_backtest]
