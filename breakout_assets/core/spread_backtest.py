"""Replaying a planned spread on the daily bars after its signal (the options backtest).

A documented approximation (issue 11, build item 6): there are no historical option quotes
here, so the spread is entered at the plan's debit (the model chain's mids plus slippage) on
the session after the signal, and valued later by Black-Scholes at the entry's implied vol.

The conditional close is read on **closes**: the spread exits on the first session whose close
is at or through `close_trigger` (above for calls, below for puts), valued at that close with
Black-Scholes, less the slippage. IBKR's price condition fires intraday, earlier than a close
may show; but daily bars cannot say what the spread was worth at an intraday touch, and a
close is a price that printed at a known time (so this errs on the late, conservative side).
Unclosed, the spread settles on the expiry session's close at intrinsic value (between 0 and
the width). R is in debit units: (exit value - debit) / debit, so a worthless expiry is -1R.
`backtest_spread` runs one labelled signal through the model chain, the planner and the replay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np

from breakout_assets.core.config import OptionsConfig
from breakout_assets.core.model_chain import expiry_dates, model_chain, years_to_expiry
from breakout_assets.core.option_pricing import black_scholes, intrinsic, realised_vol
from breakout_assets.core.options import Side, SpreadPlan, SpreadSkip
from breakout_assets.core.spreads import expiry_window, plan_spread

ExitReason = Literal["trigger", "expiry", "open"]


@dataclass(frozen=True)
class SpreadReplay:
    """How one spread played out; values per share."""

    entry_session: date
    exit_session: date
    exit_reason: ExitReason  # "open": the bars end before the trigger or the expiry (marked)
    underlying_exit: float
    debit: float
    exit_value: float

    @property
    def r(self) -> float:
        """Profit in debit units (the debit is the spread's 1R)."""
        return (self.exit_value - self.debit) / self.debit


def spread_value(plan: SpreadPlan, spot: float, years: float, vol: float, rate: float) -> float:
    """The spread's Black-Scholes value per share (long leg minus short leg), within [0, width];
    at expiry (years <= 0) its intrinsic value."""
    if years <= 0:
        legs = intrinsic(plan.right, spot, np.array([plan.long_strike, plan.short_strike]))
    else:
        strikes = np.array([plan.long_strike, plan.short_strike])
        legs = black_scholes(plan.right, spot, strikes, years, vol, rate)
    return float(min(max(legs[0] - legs[1], 0.0), plan.width))


def replay_spread(
    plan: SpreadPlan,
    *,
    sessions: Sequence[date],
    closes: Sequence[float],
    entry_vol: float,
    rate: float,
    exit_slippage: float = 0.0,
) -> SpreadReplay | None:
    """Replay `plan` over the bars after its signal session (`sessions[0]` is the entry
    session). None when there is no bar to enter on or the expiry came first."""
    if len(sessions) != len(closes):
        raise ValueError(f"{len(sessions)} sessions but {len(closes)} closes")
    if not sessions or sessions[0] > plan.expiry:
        return None
    calls = plan.right == "C"
    debit = plan.net_debit

    def result(day: date, spot: float, reason: ExitReason, value: float) -> SpreadReplay:
        return SpreadReplay(sessions[0], day, reason, spot, debit, value)

    last_day, last_spot = sessions[0], float(closes[0])
    for day, close in zip(sessions, closes, strict=True):
        if day > plan.expiry:  # the expiry session is missing from the bars: settle on the last
            break
        spot = float(close)
        last_day, last_spot = day, spot
        hit = spot >= plan.close_trigger if calls else spot <= plan.close_trigger
        if hit:
            value = spread_value(plan, spot, years_to_expiry(day, plan.expiry), entry_vol, rate)
            return result(day, spot, "trigger", max(value - exit_slippage, 0.0))
        if day == plan.expiry:
            return result(day, spot, "expiry", spread_value(plan, spot, 0.0, entry_vol, rate))
    if sessions[-1] > plan.expiry:
        return result(
            last_day, last_spot, "expiry", spread_value(plan, last_spot, 0.0, entry_vol, rate)
        )
    years = years_to_expiry(last_day, plan.expiry)
    value = spread_value(plan, last_spot, years, entry_vol, rate)
    return result(last_day, last_spot, "open", max(value - exit_slippage, 0.0))


def backtest_spread(
    *,
    ticker: str,
    side: Side,
    session: date,
    target_50: float,
    target_75: float,
    target_100: float,
    confidence: float,
    closes_to_session: Sequence[float],
    calendar: Sequence[date],
    sessions_after: Sequence[date],
    closes_after: Sequence[float],
    config: OptionsConfig,
    equity: float = 100_000.0,
) -> tuple[SpreadPlan | SpreadSkip, SpreadReplay | None]:
    """One labelled signal through the whole overlay: the model chain on its session's close
    (`closes_to_session` ends with it; their realised vol x multiplier is the IV), the planner,
    then the replay on the bars after it at the entry IV, less the slippage on a modelled exit.
    `calendar` holds the exchange's sessions from `session` to past `max_dte`."""
    vol = realised_vol(closes_to_session, config.vol_window)
    if math.isnan(vol):
        return SpreadSkip(
            ticker, side, f"fewer than {config.vol_window + 1} closes for the realised vol"
        ), None
    min_expiry, max_expiry = expiry_window(session, calendar, config)
    # the planner takes the first expiry on or after min_expiry: price only that one
    listed = expiry_dates(calendar, min_expiry, max_expiry, weeklies=config.model_weeklies)
    max_expiry = listed[0] if listed else max_expiry
    chain = model_chain(
        ticker,
        session,
        float(closes_to_session[-1]),
        vol,
        sessions=calendar,
        min_expiry=min_expiry,
        max_expiry=max_expiry,
        config=config,
    )
    plan = plan_spread(
        ticker=ticker,
        side=side,
        target_50=target_50,
        target_75=target_75,
        target_100=target_100,
        confidence=confidence,
        chain=chain,
        min_expiry=min_expiry,
        equity=equity,
        config=config,
    )
    if isinstance(plan, SpreadSkip):
        return plan, None
    replay = replay_spread(
        plan,
        sessions=sessions_after,
        closes=closes_after,
        entry_vol=vol * config.iv_multiplier,
        rate=config.rate,
        exit_slippage=config.slippage,
    )
    return plan, replay
