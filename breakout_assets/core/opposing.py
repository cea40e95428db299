"""The opposing ("fade") book: take the other side of a primary the model expects to fail.

Pure rules shared by the backtest (1-hour or daily bars) and the live `opposing_orders` plan.
Written for a primary LONG (entry E, stop S, booked target T, 50% target line T50); a primary
short is the same trade in mirrored prices (every price negated), and its fade is a long.

The fade is a SHORT: stop at T50, take-profit at S (a mean-reversion bracket). Its levels:
run level `E + arm_fraction (T - E)`, reference limit `L = E + limit_fraction (T - E)`.

The 2-bar reversal alert (no alert, no trade), scanned on the bars after the signal session
inside the legs window (`window_sessions` sessions after the signal session):
- a bar whose high is above every earlier high since the signal is the run's new high; it can
  start an alert when that high reached the run level (price has run toward the target);
- the alert ARMS on the bar that closes below that bar's low, within `alert_bars - 1` bars of it
  and without a new high in between (with 2 bars: the very next bar); its low is the alert level
  A. A must lie strictly between S and T50, else the short would start beyond its own stop or
  take-profit (the breakout is not failing yet): no alert, scanning goes on. The first alert
  arms and its levels stand.
- a primary that trades at S before any alert has failed already: nothing to fade (no_alert).

Dual entry, one OCA group live from the bar after the alert (never before it):
- limit leg: sell limit at L (only placed when S < L < T50); it fills at the open when the bar
  opens at or above L (marketable if the market is still above L), else at L when the high
  reaches it;
- alert leg: sell stop-entry at A; fills at the open when the bar opens at or below A, else at A
  when the low reaches it;
- the first fill cancels the other leg, so a fade is never doubled. An at-open fill comes first;
  when both levels trade inside one bar (order unknown) the worse price for the fade is taken
  (conservative, like "the stop wins"), ties to the worse level;
- a bar opening at or through S before a fill cancels both legs (the snap-back happened without
  us; the stop-entry would fill beyond its take-profit); legs left at the window's end: unfilled.

Exit: `core.outcomes.exit_on_bar` with stop T50 and target S (stop wins a bar touching both, gaps
fill at the open, on the fill bar of an intrabar fill only the stop counts); a position still open
after `max_holding_bars` bars (the fill bar counts) expires at that bar's close.

R: each leg is sized 1R from its own entry level, R = |level - T50| (`fade_quantity`), and
`r_multiple = side (exit - fill) / R`, so a gap fill at the open shows in R as it does in dollars.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from breakout_assets.core.config import OpposingConfig
from breakout_assets.core.outcomes import exit_on_bar

LEGS = ("limit", "alert")
TRADE_STATUSES = ("win", "loss", "expired")
STATUSES = ("no_alert", "unfilled", *TRADE_STATUSES, "pending")


@dataclass(frozen=True)
class FadeBars:
    """Bars strictly after the primary's signal session, in time order, of one frequency.

    `session` is the exchange-session ordinal of each bar (1-hour bars share their session's),
    so the legs window counts sessions whatever the frequency.
    """

    session: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    def __post_init__(self) -> None:
        for name in ("session", "open", "high", "low", "close"):
            kind = np.int64 if name == "session" else np.float64
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=kind))
        if (
            len({len(self.session), len(self.open), len(self.high), len(self.low), len(self.close)})
            != 1
        ):
            raise ValueError("FadeBars arrays must have one length")
        if len(self.session) > 1 and (np.diff(self.session) < 0).any():
            raise ValueError("FadeBars must be in time order (sessions non-decreasing)")


@dataclass(frozen=True)
class FadeLevels:
    """The fade's bracket in real prices: side +1 long / -1 short; limit NaN when not placed."""

    side: int
    limit: float
    stop: float
    take_profit: float
    run_level: float


@dataclass(frozen=True)
class FadeOutcome:
    """One fade's replay; indexes point into the FadeBars rows (-1: none), prices are real."""

    status: str
    side: int
    leg: str | None = None
    armed_index: int = -1
    alert_level: float = math.nan
    limit_level: float = math.nan
    fill_index: int = -1
    fill_price: float = math.nan
    exit_index: int = -1
    exit_price: float = math.nan
    risk_per_share: float = math.nan
    r_multiple: float = math.nan
    bars_held: int = 0


def fade_levels(
    primary_side: int,
    entry: float,
    stop: float,
    target: float,
    target_50: float,
    config: OpposingConfig,
) -> FadeLevels:
    """The fade's bracket for a primary (the live order plan uses the same numbers)."""
    m = _mirror(primary_side, entry, stop, target, target_50)
    e, s, t, t50 = m * entry, m * stop, m * target, m * target_50
    limit = e + config.limit_fraction * (t - e)
    return FadeLevels(
        side=-primary_side,
        limit=m * limit if s < limit < t50 else math.nan,
        stop=target_50,
        take_profit=stop,
        run_level=m * (e + config.arm_fraction * (t - e)),
    )


@dataclass(frozen=True)
class FadePlan:
    """The fade to place after a close: its two legs (limit NaN when not placed) and levels."""

    side: int  # +1 long / -1 short: the fade's side
    alert_level: float
    alert_quantity: int
    limit_level: float
    limit_quantity: int | None
    stop: float
    take_profit: float
    risk_dollars: float
    valid_sessions: int  # sessions the legs may still work in the window


def plan_fade(
    primary_side: int,
    entry: float,
    stop: float,
    target: float,
    target_50: float,
    bars: FadeBars,
    signal_session: int,
    today: int,
    equity: float,
    config: OpposingConfig,
) -> FadePlan | None:
    """The fade whose 2-bar reversal alert armed at `today`'s close, each leg 1R
    (`risk_fraction` of equity) from its own entry; None when no alert armed today (no alert,
    no trade; one that armed earlier was planned on its own session)."""
    fade = replay_fade(
        primary_side,
        entry,
        stop,
        target,
        target_50,
        bars,
        config,
        signal_session=signal_session,
        as_of_session=today,
    )
    if fade.armed_index < 0 or bars.session[fade.armed_index] != today:
        return None
    levels = fade_levels(primary_side, entry, stop, target, target_50, config)
    risk = equity * config.risk_fraction
    placed = math.isfinite(levels.limit)
    return FadePlan(
        side=levels.side,
        alert_level=fade.alert_level,
        alert_quantity=fade_quantity(risk, fade.alert_level, levels.stop),
        limit_level=levels.limit,
        limit_quantity=fade_quantity(risk, levels.limit, levels.stop) if placed else None,
        stop=levels.stop,
        take_profit=levels.take_profit,
        risk_dollars=risk,
        valid_sessions=max(1, signal_session + config.window_sessions - today),
    )


def fade_quantity(risk_dollars: float, entry: float, stop: float) -> int:
    """Shares putting at most `risk_dollars` at risk from `entry` to `stop` (1R); 0 if none fit."""
    dist = abs(entry - stop)
    if not (risk_dollars > 0 and dist > 0 and math.isfinite(risk_dollars / dist)):
        return 0
    qty = math.floor(risk_dollars / dist)
    while qty > 0 and qty * dist > risk_dollars:  # float noise never sizes above the budget
        qty -= 1
    while (qty + 1) * dist <= risk_dollars:
        qty += 1
    return qty


def _mirror(primary_side: int, entry: float, stop: float, target: float, target_50: float) -> float:
    """+1 for a primary long, -1 for a short (whose prices are negated); checks the geometry."""
    if primary_side not in (1, -1):
        raise ValueError(f"primary_side must be +1 or -1, got {primary_side!r}")
    m = float(primary_side)
    e, s, t, t50 = m * entry, m * stop, m * target, m * target_50
    if not all(math.isfinite(x) for x in (e, s, t, t50)) or not (s < e < t50 and e < t):
        raise ValueError(
            "a fade needs stop < entry < target_50 and entry < target on the "
            f"primary's side, got E={entry} S={stop} T={target} T50={target_50}"
        )
    return m


def replay_fade(
    primary_side: int,
    entry: float,
    stop: float,
    target: float,
    target_50: float,
    bars: FadeBars,
    config: OpposingConfig,
    signal_session: int | None = None,
    as_of_session: int | None = None,
) -> FadeOutcome:
    """Replay one fade on the bars after its primary's signal session (module docstring rules).

    `signal_session` defaults to the first bar's session - 1; `as_of_session` (the last complete
    session) to the last bar's. Undecided when the bars end: 'pending'.
    """
    m = _mirror(primary_side, entry, stop, target, target_50)
    e, s, t, t50 = m * entry, m * stop, m * target, m * target_50
    o, c = m * bars.open, m * bars.close
    h, lo = (bars.high, bars.low) if m > 0 else (-bars.low, -bars.high)
    n = len(o)
    if signal_session is None:
        signal_session = int(bars.session[0]) - 1 if n else 0
    if n and bars.session[0] <= signal_session:
        raise ValueError("bars must be strictly after the signal session")
    limit = e + config.limit_fraction * (t - e)
    limit = limit if s < limit < t50 else math.nan
    run_level = e + config.arm_fraction * (t - e)
    deadline = signal_session + config.window_sessions
    run_high, high_bar, armed, alert = -math.inf, -1, -1, math.nan
    base: dict[str, Any] = {"side": -primary_side, "limit_level": m * limit}

    for k in range(n):
        if bars.session[k] > deadline:
            return FadeOutcome(
                "unfilled" if armed >= 0 else "no_alert",
                armed_index=armed,
                alert_level=m * alert,
                **base,
            )
        if armed < 0:
            if lo[k] <= s:
                return FadeOutcome("no_alert", **base)
            if h[k] > run_high:
                run_high, high_bar = h[k], (k if h[k] >= run_level else -1)
            elif (
                high_bar >= 0
                and k - high_bar < config.alert_bars
                and c[k] < lo[high_bar]
                and s < lo[k] < t50
            ):
                armed, alert = k, float(lo[k])
            continue
        if o[k] <= s:
            return FadeOutcome("unfilled", armed_index=armed, alert_level=m * alert, **base)
        picked = _first_fill(o[k], h[k], lo[k], limit, alert)
        if picked is not None:
            leg, fill, level, at_open = picked
            return _manage(
                m,
                k,
                leg,
                fill,
                level,
                at_open,
                o,
                h,
                lo,
                c,
                t50,
                s,
                config,
                {**base, "armed_index": armed, "alert_level": m * alert},
            )

    as_of = (
        as_of_session
        if as_of_session is not None
        else (int(bars.session[-1]) if n else signal_session)
    )
    status = ("unfilled" if armed >= 0 else "no_alert") if as_of >= deadline else "pending"
    return FadeOutcome(status, armed_index=armed, alert_level=m * alert, **base)


def _first_fill(
    o: float, h: float, lo: float, limit: float, alert: float
) -> tuple[str, float, float, bool] | None:
    """(leg, fill, level, at the open) of the one leg a bar fills for a short fade, or None."""
    fills = []  # (intrabar?, fill price, level, leg): the minimum is the fill we assume
    if not math.isnan(limit):
        if o >= limit:
            fills.append((False, o, limit, "limit"))
        elif h >= limit:
            fills.append((True, limit, limit, "limit"))
    if o <= alert:
        fills.append((False, o, alert, "alert"))
    elif lo <= alert:
        fills.append((True, alert, alert, "alert"))
    if not fills:
        return None
    intrabar, fill, level, leg = min(fills)
    return leg, float(fill), float(level), not intrabar


def _manage(
    m: float,
    k: int,
    leg: str,
    fill: float,
    level: float,
    at_open: bool,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    t50: float,
    s: float,
    config: OpposingConfig,
    base: dict[str, Any],
) -> FadeOutcome:
    """Run the short fade's bracket from its fill bar k to the exit, expiry or end of bars."""
    risk = t50 - level
    status, exit_bar, exit_price = "pending", -1, math.nan
    for j in range(k, len(o)):
        intrabar = j == k and not at_open
        # an intrabar fill bar starts at the fill: its open came before the position existed
        price, code = exit_on_bar(-1, t50, s, fill if intrabar else o[j], h[j], lo[j], intrabar)
        if code:
            status, exit_bar, exit_price = ("win" if code == 1 else "loss"), j, float(price)
            break
        if j - k + 1 >= config.max_holding_bars:
            status, exit_bar, exit_price = "expired", j, float(c[j])
            break
    held = (exit_bar if exit_bar >= 0 else len(o) - 1) - k + 1
    r = (fill - exit_price) / risk if exit_bar >= 0 else math.nan
    return FadeOutcome(
        status,
        leg=leg,
        fill_index=k,
        fill_price=m * fill,
        exit_index=exit_bar,
        exit_price=m * exit_price,
        risk_per_share=risk,
        r_multiple=r,
        bars_held=held,
        **base,
    )


def _stats(outcomes: list[FadeOutcome], net_r: np.ndarray | None) -> dict[str, Any]:
    """Trades (win, loss, expired), win rate, expectancy and total in R, gross and (with
    `net_r`, each outcome's R after costs) net; None when no trade (net: when not given)."""
    traded = np.array([x.status in TRADE_STATUSES for x in outcomes], dtype=bool)
    r = np.array([x.r_multiple for x in outcomes], dtype=float)[traded]
    net = None if net_r is None else np.asarray(net_r, dtype=float)[traded]
    wins = sum(x.status == "win" for x in outcomes)
    return {
        "trades": len(r),
        "wins": wins,
        "win_rate": wins / len(r) if len(r) else None,
        "expectancy_r": float(r.mean()) if len(r) else None,
        "sum_r": float(r.sum()),
        "expectancy_net_r": float(net.mean()) if net is not None and len(r) else None,
        "sum_net_r": float(net.sum()) if net is not None else None,
    }


def fade_summary(
    outcomes: Iterable[FadeOutcome], net_r: Iterable[float] | None = None
) -> dict[str, Any]:
    """Book-level figures of many fades, overall and per leg (pending ones are not trades);
    `net_r`, aligned with `outcomes`, is each one's R after costs (NaN where no trade)."""
    rows = list(outcomes)
    net = None if net_r is None else np.asarray(list(net_r), dtype=float)
    legs = np.array([x.leg for x in rows], dtype=object)
    return {
        "signals": len(rows),
        **{
            status: sum(x.status == status for x in rows)
            for status in ("no_alert", "unfilled", "pending")
        },
        **_stats(rows, net),
        "legs": {
            leg: _stats(
                [x for x in rows if x.leg == leg], None if net is None else net[legs == leg]
            )
            for leg in LEGS
        },
    }
