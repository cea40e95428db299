"""The spread planner: a scored signal and an option chain -> a vertical debit spread or a skip.

Pure (issue 11, build item 2; DESIGN.md "Options overlay"). The spread expresses the stock
trade's own geometry: it buys the strike nearest the 50% target and sells the one nearest the
100% target beyond it (calls for longs, puts for shorts), on the first expiry at least
`min_dte` sessions out so it outlives the trade. The net debit (mids plus slippage) is the
whole risk, and the size is the risk budget over one contract's debit. Every refusal is a
`SpreadSkip` whose reason a person can act on; invalid inputs (a bug upstream) raise.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from datetime import date

from breakout_assets.core.config import OptionsConfig
from breakout_assets.core.options import (
    CONTRACT_MULTIPLIER,
    OptionChain,
    OptionQuote,
    Side,
    SpreadPlan,
    SpreadSkip,
    right_for,
)
from breakout_assets.core.sizing import EPS


def expiry_window(
    session: date, sessions: Sequence[date], config: OptionsConfig
) -> tuple[date, date]:
    """(min_expiry, max_expiry): the sessions `min_dte` and `max_dte` after the signal session
    in `sessions` (the exchange's, ascending): the window a chain is asked for and the
    planner's earliest expiry."""
    at = bisect_left(sessions, session)
    if at == len(sessions) or sessions[at] != session:
        raise ValueError(f"{session} is not one of the given sessions")
    if at + config.max_dte >= len(sessions):
        raise ValueError(
            f"the sessions given end on {sessions[-1]}: {config.max_dte} sessions after "
            f"{session} are needed"
        )
    return sessions[at + config.min_dte], sessions[at + config.max_dte]


def is_liquid(quote: OptionQuote, config: OptionsConfig) -> bool:
    """The liquidity filter: enough open interest and a bid-ask narrow against the mid."""
    return (
        quote.open_interest >= config.min_open_interest
        and quote.bid > 0
        and quote.spread_fraction <= config.max_spread_fraction
    )


def _nearest(
    quotes: list[OptionQuote], target: float, tolerance: float, up: bool
) -> OptionQuote | None:
    """The quote whose strike is nearest `target` within `tolerance`; a tie goes to the strike
    nearer the money (the lower for calls, `up`, the higher for puts)."""
    fits = [q for q in quotes if abs(q.strike - target) <= tolerance + 1e-9]
    if not fits:
        return None
    return min(fits, key=lambda q: (abs(q.strike - target), q.strike if up else -q.strike))


def plan_spread(
    *,
    ticker: str,
    side: Side,
    target_50: float,
    target_75: float,
    target_100: float,
    confidence: float,
    chain: OptionChain,
    min_expiry: date,
    equity: float,
    config: OptionsConfig,
    risk_budget_dollars: float | None = None,
) -> SpreadPlan | SpreadSkip:
    """The debit spread for one signal, or why there is none.

    `risk_budget_dollars` is what the book's caps leave for this spread (None: no cap beyond
    `risk_pct` of equity); the spread's max loss never exceeds the smaller of the two.
    """
    up = side == "long"
    if not 0 <= confidence <= 1:
        raise ValueError(f"{ticker}: confidence must be in [0, 1], got {confidence}")
    if not (math.isfinite(equity) and equity > 0):
        raise ValueError(f"{ticker}: equity must be positive, got {equity}")
    if not (target_50 < target_75 < target_100 if up else target_50 > target_75 > target_100):
        raise ValueError(
            f"{ticker}: the {side} targets must move away from entry: 50% {target_50}, "
            f"75% {target_75}, 100% {target_100}"
        )

    def skip(reason: str) -> SpreadSkip:
        return SpreadSkip(ticker, side, reason)

    right = right_for(side)
    expiries = [e for e in chain.expiries() if e >= min_expiry]
    if not expiries:
        return skip(
            f"no expiry on or after {min_expiry} ({config.min_dte} sessions out) in the chain"
        )
    expiry = expiries[0]
    listed = [q for q in chain.quotes if q.expiry == expiry and q.right == right]
    liquid = [q for q in listed if is_liquid(q, config)]
    tolerance = config.max_strike_miss * abs(target_100 - target_50)
    illiquid = (
        f"open interest under {config.min_open_interest} or bid-ask over "
        f"{config.max_spread_fraction:.0%} of mid"
    )
    label = "call" if right == "C" else "put"

    def missing(leg: str, target: float, candidates: list[OptionQuote]) -> SpreadSkip:
        where = f"within ${tolerance:.2f} of the {leg} ${target:.2f} on {expiry}"
        if _nearest(candidates, target, tolerance, up) is not None:
            return skip(f"the {label} strikes {where} are illiquid ({illiquid})")
        return skip(f"no {label} strike listed {where}")

    near = _nearest(liquid, target_50, tolerance, up)
    if near is None:
        return missing("50% target", target_50, listed)

    def beyond(q: OptionQuote) -> bool:
        return q.strike > near.strike if up else q.strike < near.strike

    far = _nearest([q for q in liquid if beyond(q)], target_100, tolerance, up)
    if far is None:
        return missing("100% target", target_100, [q for q in listed if beyond(q)])

    width = abs(far.strike - near.strike)
    debit = near.mid - far.mid + config.slippage
    legs = f"{label}s {near.strike:g}/{far.strike:g} {expiry}"
    if debit <= 0:
        return skip(f"{legs}: net debit {debit:.2f} <= 0, the quotes are inconsistent")
    if debit >= width:
        return skip(f"{legs}: net debit {debit:.2f} is not below the width {width:g}")
    ev = confidence * (width - debit) - (1 - confidence) * debit
    if ev <= 0:
        return skip(
            f"{legs}: EV {ev:.3f}/share <= 0 at confidence {confidence:.2f} "
            f"(debit {debit:.2f}, width {width:g})"
        )

    budget = equity * config.risk_pct / 100
    if risk_budget_dollars is not None:
        budget = min(budget, max(risk_budget_dollars, 0.0))
    contracts = _contracts(budget, debit * CONTRACT_MULTIPLIER, config.max_contracts)
    if contracts == 0:
        return skip(
            f"{legs}: one contract risks ${debit * CONTRACT_MULTIPLIER:,.2f}, more than the "
            f"${budget:,.2f} budget"
        )
    return SpreadPlan(
        ticker=ticker,
        side=side,
        right=right,
        expiry=expiry,
        long_strike=near.strike,
        short_strike=far.strike,
        net_debit=debit,
        contracts=contracts,
        ev=ev,
        close_trigger=float(target_100 if up else target_75),
    )


def _contracts(budget: float, per_contract: float, most: int) -> int:
    """floor(budget / per_contract) as core.sizing floors shares: x (1 + EPS), so a budget of
    exactly n contracts in decimal buys n (the loss then meets the budget within a billionth)."""
    return min(max(math.floor(budget / per_contract * (1 + EPS)), 0), most)
