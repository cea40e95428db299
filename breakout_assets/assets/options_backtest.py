"""The options overlay's backtest (issue 11, build item 6): every labelled signal expressed as
its vertical debit spread, replayed on the daily bars, next to the stock trade's R.

A documented approximation: there are no historical option quotes here. Each signal's chain is
the model chain (core.model_chain) on its session's close, implied vol = the ticker's realised
vol of the closes up to the signal x `iv_multiplier`; the planner (core.spreads) picks the
spread, and core.spread_backtest replays it on the closes after the signal (the conditional
close on a close through the trigger, else intrinsic at the expiry), valued by Black-Scholes at
the entry's IV. R is in debit units: (exit value - debit) / debit, -1 when it expires worthless.

Every signal with a final outcome (win, loss, expired or unfilled: the spread does not wait for
the stock bracket's fill) gets a plan or a skip. The planner's EV needs a confidence: the
model's from `signal_scores` where the signal was scored, else `DEFAULT_CONFIDENCE` (the metadata
says how many of each). The stock R shown next to a spread is the signal's labelled R (gross and
net of costs, in R of the stock trade's risk) where its bracket filled and closed.
"""

import io
import re
import time
from collections import Counter
from datetime import timedelta

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MaterializeResult, asset
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sqlalchemy import Connection

from breakout_assets.assets.backtests import write_results
from breakout_assets.assets.common import png_metadata, table_metadata
from breakout_assets.core.config import OptionsConfig
from breakout_assets.core.options import SpreadSkip
from breakout_assets.core.outcomes import trade_stats
from breakout_assets.core.spread_backtest import backtest_spread
from breakout_assets.core.spreads import expiry_window
from breakout_assets.ml.evaluation import DPI
from breakout_assets.partitions import nyse_sessions
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

GROUP = "research"
BACKTEST = "options"
SPREAD_VARIANT = "debit spread"  # R in debit units
STOCK_VARIANT = "stock, same signals"  # R of the stock trade's risk, on the spreads' signals
DEFAULT_CONFIDENCE = 0.5  # where signal_scores never scored the signal
CLOSED_EXITS = ("trigger", "expiry")
STOCK_TRADES = ("win", "loss", "expired")
APPROXIMATION = (
    "no historical option quotes: model chain on the signal session's close, IV = realised vol "
    "x iv_multiplier, entered at the plan's debit the session after, exits read on daily closes"
)
# A skip's reason names strikes, prices and dates; the summary counts them by kind.
_SKIP_KINDS = (
    (re.compile(r"^fewer than \d+ closes"), "too few closes for the realised vol"),
    (re.compile(r"^no expiry"), "no expiry in the window"),
    (re.compile(r"illiquid"), "strikes illiquid"),
    (re.compile(r"^no (call|put) strike listed .* 50% target"), "no strike near the 50% target"),
    (re.compile(r"^no (call|put) strike listed .* 100% target"), "no strike near the 100% target"),
    (re.compile(r"net debit \S+ <= 0"), "net debit <= 0"),
    (re.compile(r"is not below the width"), "debit >= width"),
    (re.compile(r"EV \S+ <= 0"), "EV <= 0"),
    (re.compile(r"more than the"), "one contract over the budget"),
)


def skip_kind(reason: str) -> str:
    """The kind of a skip reason (the reason itself when it is of no known kind)."""
    return next((kind for pattern, kind in _SKIP_KINDS if pattern.search(reason)), reason)


def _ticker_closes(closes: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{ticker: (sessions as datetime64[D], closes)} from one ordered read of all closes."""
    days = pd.to_datetime(closes["session"]).to_numpy("datetime64[D]")
    values = closes["close"].to_numpy(float)
    tickers = closes["ticker"].to_numpy()
    starts = np.flatnonzero(np.r_[True, tickers[1:] != tickers[:-1]]) if len(tickers) else []
    bounds = [*starts, len(tickers)]
    return {
        str(tickers[a]): (days[a:b], values[a:b])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    }


def spread_trades(
    signals: pd.DataFrame, closes: pd.DataFrame, config: OptionsConfig
) -> pd.DataFrame:
    """One row per labelled signal: its confidence, the plan or the skip reason, and the
    replay (exit, R in debit units) next to the stock trade's R. `closes` holds the tickers'
    daily closes ordered by ticker and session (options_backtest.closes)."""
    by_ticker = _ticker_closes(closes)
    sessions = pd.to_datetime(signals["session"]).dt.date.tolist() if len(signals) else []
    calendar = (
        nyse_sessions(min(sessions), max(sessions) + timedelta(days=2 * config.max_dte + 14))
        if sessions
        else []
    )
    cal_days = np.array(calendar, dtype="datetime64[D]")
    empty = (np.array([], dtype="datetime64[D]"), np.array([], dtype=float))
    rows = []
    for s, session in zip(signals.itertuples(index=False), sessions, strict=True):
        confidence = s.confidence if pd.notna(s.confidence) else DEFAULT_CONFIDENCE
        row = {
            "signal_id": s.signal_id,
            "ticker": s.ticker,
            "session": session,
            "side": s.side,
            "confidence": float(confidence),
            "confidence_source": "model" if pd.notna(s.confidence) else "constant",
            "status": s.status,
            "stock_r": s.stock_r,
            "stock_net_r": s.stock_net_r,
        }
        days, values = by_ticker.get(s.ticker, empty)
        day = np.datetime64(session, "D")
        end = int(np.searchsorted(days, day, side="right"))
        at = int(np.searchsorted(cal_days, day))
        if end == 0 or days[end - 1] != day:
            rows.append({**row, "reason": "no bar on the signal session"})
            continue
        if at + config.max_dte + 5 >= len(calendar):
            rows.append({**row, "reason": "the exchange calendar ends before the expiry window"})
            continue
        window = calendar[at : at + config.max_dte + 6]  # Friday holidays past max_dte known
        last = np.datetime64(expiry_window(session, window, config)[1], "D")
        stop = int(np.searchsorted(days, last, side="right"))
        plan, replay = backtest_spread(
            ticker=s.ticker,
            side=s.side,
            session=session,
            target_50=float(s.target_50),
            target_75=float(s.target_75),
            target_100=float(s.target_100),
            confidence=float(confidence),
            closes_to_session=values[max(end - config.vol_window - 1, 0) : end],
            calendar=window,
            sessions_after=days[end:stop].astype(object).tolist(),
            closes_after=values[end:stop],
            config=config,
        )
        if isinstance(plan, SpreadSkip):
            rows.append({**row, "reason": plan.reason})
            continue
        row |= {
            "expiry": plan.expiry,
            "long_strike": plan.long_strike,
            "short_strike": plan.short_strike,
            "width": plan.width,
            "net_debit": plan.net_debit,
            "close_trigger": plan.close_trigger,
        }
        if replay is None:
            rows.append({**row, "reason": "no bar to enter on before the expiry"})
            continue
        rows.append(
            {
                **row,
                "reason": None,
                "entry_session": replay.entry_session,
                "exit_session": replay.exit_session,
                "exit_reason": replay.exit_reason,
                "underlying_exit": replay.underlying_exit,
                "exit_value": replay.exit_value,
                "r": replay.r,
            }
        )
    columns = [
        "signal_id", "ticker", "session", "side", "confidence", "confidence_source", "status",
        "stock_r", "stock_net_r", "reason", "expiry", "long_strike", "short_strike", "width",
        "net_debit", "close_trigger", "entry_session", "exit_session", "exit_reason",
        "underlying_exit", "exit_value", "r",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def closed(trades: pd.DataFrame) -> pd.DataFrame:
    """The spreads the replay closed (the conditional close or the expiry), in exit order."""
    done = trades[trades["exit_reason"].isin(CLOSED_EXITS)]
    return done.sort_values(["exit_session", "signal_id"], kind="stable")


def result_rows(trades: pd.DataFrame, detail: dict) -> list[dict]:
    """backtest_results rows per side: the spreads (R in debit units) and the stock trades of
    the same signals (R of the stock risk, gross and net of costs)."""
    rows = []
    for side in ("long", "short"):
        mine = trades[trades["side"] == side]
        spreads = closed(mine)
        skipped = mine[mine["exit_reason"].isna() & mine["expiry"].isna()]
        kinds = Counter(skip_kind(r) for r in skipped["reason"])
        stock = spreads[spreads["status"].isin(STOCK_TRADES)]
        stock_r = stock["stock_r"].to_numpy(float)
        stock_net = stock["stock_net_r"].to_numpy(float)
        side_detail = {
            **detail,
            "planned": int(mine["expiry"].notna().sum()),
            "skipped": len(skipped),
            # [kind, count] pairs, most frequent first (a jsonb object would lose the order)
            "skip_reasons": sorted(([k, n] for k, n in kinds.items()), key=lambda p: (-p[1], p[0])),
            "not_entered": int((mine["expiry"].notna() & mine["exit_reason"].isna()).sum()),
            "open_at_data_end": int((mine["exit_reason"] == "open").sum()),
            "exits": {e: int((spreads["exit_reason"] == e).sum()) for e in CLOSED_EXITS},
            "confidence_from_model": int((mine["confidence_source"] == "model").sum()),
            "stock_trades": len(stock),
            "stock_mean_r": float(stock_r.mean()) if len(stock) else None,
            "stock_mean_net_r": (
                float(np.nanmean(stock_net)) if np.isfinite(stock_net).any() else None
            ),
        }
        spread_stats = trade_stats(spreads["r"].to_numpy(float))
        rows.append(
            {
                "variant": SPREAD_VARIANT,
                "side": side,
                "signals": len(mine),
                **spread_stats,
                "expectancy_net_r": None,
                "sum_net_r": None,
                "detail": {**side_detail, "units": "debit (the spread's whole risk)"},
            }
        )
        rows.append(
            {
                "variant": STOCK_VARIANT,
                "side": side,
                "signals": len(spreads),
                **trade_stats(stock_r, stock_net),
                "detail": {**side_detail, "units": "R of the stock trade's planned risk"},
            }
        )
    return rows


def summary_table(rows: list[dict]) -> pd.DataFrame:
    """By side: trades, skipped (top reasons), win rate, mean and sum of R in debit units, the
    mean stock R on the same signals."""
    spreads = {r["side"]: r for r in rows if r["variant"] == SPREAD_VARIANT}
    stock = {r["side"]: r for r in rows if r["variant"] == STOCK_VARIANT}
    return pd.DataFrame(
        [
            {
                "side": side,
                "signals": r["signals"],
                "spreads": r["trades"],
                "skipped": r["detail"]["skipped"],
                "top_skip_reasons": "; ".join(
                    f"{k} ({n})" for k, n in r["detail"]["skip_reasons"][:3]
                ),
                "win_rate": r["win_rate"],
                "mean_r_debit": r["expectancy_r"],
                "sum_r_debit": r["sum_r"],
                "stock_trades": stock[side]["trades"],
                "stock_mean_r": stock[side]["expectancy_r"],
                "stock_mean_net_r": stock[side]["expectancy_net_r"],
            }
            for side, r in spreads.items()
        ]
    )


def equity_curve_png(trades: pd.DataFrame) -> bytes:
    """Cumulative R by exit session per side: the spreads in debit units, and the stock trades
    of the same signals in R of their risk."""
    figure = Figure(figsize=(8, 4.5), dpi=DPI)
    ax = figure.add_subplot()
    for side, color in (("long", "tab:green"), ("short", "tab:red")):
        spreads = closed(trades[trades["side"] == side])
        if spreads.empty:
            continue
        days = pd.to_datetime(spreads["exit_session"])
        ax.plot(days, spreads["r"].cumsum(), color=color, label=f"{side}: spreads (debit R)")
        ax.plot(
            days,
            spreads["stock_r"].fillna(0.0).cumsum(),
            color=color,
            linestyle=":",
            label=f"{side}: stock trades, same signals (R)",
        )
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set(
        xlabel="exit session",
        ylabel="cumulative R",
        title="Options overlay: debit spreads vs the stock trades (model chain, daily closes)",
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize="small")
    figure.autofmt_xdate()
    figure.tight_layout()
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def read_inputs(conn: Connection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The labelled signals and, in one read, every close of their tickers."""
    signals = pd.read_sql(query("options_backtest.labelled_signals"), conn)
    closes = pd.read_sql(query("options_backtest.closes"), conn)
    return signals, closes


def build_options_backtest_assets(settings: BreakoutSettings) -> list[AssetsDefinition]:
    config = settings.options

    @asset(
        group_name=GROUP,
        kinds={"postgres"},
        deps=[
            AssetKey("signal_outcomes"),
            AssetKey("breakout_signals"),
            AssetKey("market_bars"),
            AssetKey("signal_scores"),
        ],
        **versioned(
            settings, ("data_source", "outcomes", "options"), ("options_backtest", "backtests")
        ),
    )
    def options_backtest(
        context: AssetExecutionContext, postgres: PostgresResource
    ) -> MaterializeResult:
        """Every labelled signal's vertical debit spread planned on the model chain and
        replayed on the daily closes (no historical option quotes: a documented
        approximation), R per trade in debit units next to the stock trade's R."""
        started = time.perf_counter()
        with postgres.transaction() as conn:
            signals, closes = read_inputs(conn)
        trades = spread_trades(signals, closes, config)
        confidence = (
            f"signal_scores' model confidence where scored "
            f"({int((trades['confidence_source'] == 'model').sum())} signals), else the constant "
            f"{DEFAULT_CONFIDENCE} ({int((trades['confidence_source'] == 'constant').sum())})"
        )
        detail = {
            "data_source": settings.data_source,
            "bars": "daily closes",
            "approximation": APPROXIMATION,
            "confidence": confidence,
            "options": config.model_dump(mode="json"),
        }
        rows = result_rows(trades, detail)
        with postgres.transaction() as conn:
            table = write_results(conn, BACKTEST, rows)
        summary = summary_table(rows)
        context.log.info(f"options_backtest:\n{summary}")
        shown = closed(trades)[
            [
                "signal_id",
                "side",
                "expiry",
                "long_strike",
                "short_strike",
                "net_debit",
                "exit_session",
                "exit_reason",
                "r",
                "status",
                "stock_r",
            ]
        ]
        return MaterializeResult(
            metadata={
                "data_source": f"{settings.data_source} daily closes, model chain",
                "approximation": APPROXIMATION,
                "confidence": confidence,
                "labelled_signals": len(trades),
                "summary": table_metadata(summary),
                "results": table_metadata(table),
                "trades_sample": table_metadata(shown.tail(20)),
                "equity_curve": png_metadata(equity_curve_png(trades), "options"),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )

    return [options_backtest]
