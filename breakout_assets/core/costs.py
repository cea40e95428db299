"""Trading costs in R: commissions and slippage, so labels, EV, tiers and backtests are net.

Pure and deterministic: no Dagster, no SQL, no I/O. Every function takes numpy arrays (thousands
of outcomes at once) or plain floats, and the scalar helpers return floats.

**Commission per order** (one order per fill: the entry, each add-on, the exit), IBKR's Fixed
pricing for US stocks by default:

    commission = min(max(shares x per_share, minimum), max_pct x shares x price)

the per-share rate, raised to the per-order minimum, capped at a fraction of the trade value
(IBKR applies the cap last: 100 shares at $0.25 pay $0.25, not the $1.00 minimum). The Fixed
schedule includes exchange and clearing fees; regulatory fees on sales (SEC fee, FINRA TAF)
are a few hundredths of a cent per share and not modelled.

**Slippage per fill**, in dollars per share, against the modelled fill price:

    slippage = slippage_atr_fraction x ATR + slippage_bps / 10,000 x price

ATR is the signal's own (the one its 2-ATR stop is built from); where a signal has none (the
stop fell back to the consolidation low), `atr_fallback_risk_fraction x R` stands in for it. Both
the entry and the exit pay it, whatever the order type: the fill rules of core.outcomes assume
the limit, stop and target prices trade exactly, which a real order book does not give.

**In R.** A trade of `shares` shares risking `R` dollars per share risks `shares x R` dollars;
its round-trip cost in R is

    cost_r = (commission(entry) + commission(exit) + shares x (slip(entry) + slip(exit)))
             / (shares x R)

and `net_r = gross_r - cost_r`. Slippage in R does not depend on the share count; commission in
R falls as the trade grows (the minimum is spread over more shares) and never rises. Where the
share count is not known (labels, backtests, EV before the trade) it is the reference trade's:
`floor(reference_risk_dollars / R)` shares, at least 1, which is what sizing buys at the
reference risk. Live code and sizing that know the real count pass `shares`.

**Before the trade** (`expected_cost_r`, the cost EV and tiers subtract): the round trip with the
exit at the entry price. The exit will be at the target or the stop, but per-share commission
and ATR slippage do not depend on the price, and the 1% cap and bps slippage move by the
fraction the price moves (a few percent): second-order next to the cost itself.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field

# As core.sizing: a share count floors `x x (1 + EPS)`, so 333.99999999999994 shares are 334.
EPS = 1e-9


class CostConfig(BaseModel):
    """Commission schedule and slippage (`BREAKOUT_COSTS__<FIELD>`); the defaults are IBKR Fixed
    US stock pricing and a slippage of 0.05 ATR per fill.

    Why 0.05 ATR per fill: slippage (half the spread plus impact) scales with a stock's
    volatility more than with its price, and the system measures everything in ATR already (the
    stop is 2 ATR, so R = 2 ATR): 0.05 ATR per fill is 0.025 R, 0.05 R a round trip, whatever
    the price level. For a $50 stock with a $1.50 ATR it is 7.5 cents a fill, a little more than
    a liquid name's half-spread plus a stop order's typical slip; bps slippage (0 by default,
    `slippage_bps=5` is the usual alternative) would undercharge volatile names and overcharge
    quiet ones. The two add up when both are set.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    commission_per_share: float = Field(
        0.005, ge=0, description="Dollars per share per order (IBKR Fixed: $0.005)."
    )
    commission_min_per_order: float = Field(
        1.00,
        ge=0,
        description="Smallest commission of an order, in dollars (IBKR Fixed: "
        "$1.00); the value cap still applies after it.",
    )
    commission_max_pct_of_value: float = Field(
        0.01,
        gt=0,
        le=1,
        description="Largest commission of an order as a fraction of its "
        "trade value, shares x price (IBKR Fixed: 1%).",
    )
    slippage_atr_fraction: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Slippage per fill (entry and exit each), in dollars per share, as a "
        "fraction of the signal's ATR; 0.05 ATR = 0.025 R.",
    )
    slippage_bps: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="Slippage per fill (entry and exit each) in basis points of the fill price "
        "(at most 10%); adds to the ATR slippage.",
    )
    atr_fallback_risk_fraction: float = Field(
        0.5,
        gt=0,
        description="ATR assumed, as a fraction of R = |entry - stop|, for a signal "
        "without one (consolidation-low stop): the ATR stop is 2 ATR.",
    )
    reference_risk_dollars: float = Field(
        1_000.0,
        gt=0,
        description="Dollar risk of the reference trade that turns commissions "
        "into R where the share count is not known (labels, "
        "backtests, EV): 1% of the simulated 100k account.",
    )


def _floats(*values: ArrayLike | None) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64) for v in values]


def _check(entry: np.ndarray, exit_: np.ndarray, risk: np.ndarray) -> None:
    if not (np.all(np.isfinite(entry) & (entry > 0)) and np.all(np.isfinite(exit_) & (exit_ > 0))):
        raise ValueError("entry and exit prices must be finite and > 0")
    if not np.all(np.isfinite(risk) & (risk > 0)):
        raise ValueError("risk per share R must be finite and > 0")


def commission(shares: ArrayLike, price: ArrayLike, config: CostConfig) -> np.ndarray:
    """Dollars of one order of `shares` at `price`: the per-share rate, at least the minimum, at
    most the value cap; no order (0 shares) pays nothing."""
    shares, price = _floats(shares, price)
    fee = np.maximum(shares * config.commission_per_share, config.commission_min_per_order)
    fee = np.minimum(fee, config.commission_max_pct_of_value * shares * price)
    return np.where(shares > 0, fee, 0.0)


def slippage_per_share(
    price: ArrayLike, atr: ArrayLike | None, risk_per_share: ArrayLike, config: CostConfig
) -> np.ndarray:
    """Dollars per share one fill at `price` loses; a missing ATR (NaN, None, <= 0) is replaced
    by `atr_fallback_risk_fraction x R`."""
    price, atr, risk = _floats(price, atr, risk_per_share)  # None -> NaN
    atr = np.where(np.isfinite(atr) & (atr > 0), atr, config.atr_fallback_risk_fraction * risk)
    return config.slippage_atr_fraction * atr + config.slippage_bps * 1e-4 * price


def reference_shares(risk_per_share: ArrayLike, config: CostConfig) -> np.ndarray:
    """Shares of the reference trade: floor(reference_risk_dollars / R), at least 1."""
    (risk,) = _floats(risk_per_share)
    return np.maximum(np.floor(config.reference_risk_dollars / risk * (1.0 + EPS)), 1.0)


def round_trip_costs_r(
    entry: ArrayLike,
    exit: ArrayLike,
    risk_per_share: ArrayLike,
    atr: ArrayLike | None,
    shares: ArrayLike | None = None,
    *,
    config: CostConfig,
) -> np.ndarray:
    """Cost in R of each round trip (entry fill, exit fill), vectorised; inputs broadcast.

    `shares` (> 0) where known, else the reference trade's. Longs and shorts cost the same:
    the cost depends on prices, shares and ATR, not on the direction.
    """
    entry, exit_, risk = _floats(entry, exit, risk_per_share)
    _check(entry, exit_, risk)
    n = reference_shares(risk, config) if shares is None else _floats(shares)[0]
    if not np.all(np.isfinite(n) & (n > 0)):
        raise ValueError("shares must be finite and > 0")
    dollars = (
        commission(n, entry, config)
        + commission(n, exit_, config)
        + n
        * (
            slippage_per_share(entry, atr, risk, config)
            + slippage_per_share(exit_, atr, risk, config)
        )
    )
    return dollars / (n * risk)


def round_trip_cost_r(
    entry: float,
    exit: float,
    risk_per_share: float,
    atr: float | None,
    shares: float | None = None,
    *,
    config: CostConfig,
) -> float:
    """Cost in R of one round trip (see `round_trip_costs_r`)."""
    return float(round_trip_costs_r(entry, exit, risk_per_share, atr, shares, config=config))


def fills_cost_r(
    quantities: ArrayLike,
    prices: ArrayLike,
    risk_per_share: float,
    atr: float | None,
    dollar_risk_shares: float,
    *,
    config: CostConfig,
) -> float:
    """Cost in R of a trade made of several fills (entry, add-ons, exit), one order each.

    `quantities[i]` shares fill at `prices[i]`; R is the original dollar risk,
    `dollar_risk_shares x risk_per_share` (the first fill's shares for a managed position).
    """
    quantities, prices = _floats(quantities, prices)
    if quantities.shape != prices.shape or np.any(quantities < 0):
        raise ValueError("one non-negative quantity per fill price")
    if not (math.isfinite(risk_per_share) and risk_per_share > 0 and dollar_risk_shares > 0):
        raise ValueError("risk per share and the shares it is measured on must be > 0")
    if not np.all(np.isfinite(prices) & (prices > 0)):
        raise ValueError("fill prices must be finite and > 0")
    slip = slippage_per_share(prices, atr, risk_per_share, config)
    dollars = float(np.sum(commission(quantities, prices, config) + quantities * slip))
    return dollars / (dollar_risk_shares * risk_per_share)


def expected_cost_r(
    entry: float,
    risk_per_share: float,
    atr: float | None,
    config: CostConfig,
    shares: float | None = None,
) -> float:
    """The round trip's cost in R before the trade, the exit assumed at the entry price (the
    module docstring says why that is close enough); what EV and tiers subtract."""
    return round_trip_cost_r(entry, entry, risk_per_share, atr, shares, config=config)


def expected_costs_r(
    entry: ArrayLike, risk_per_share: ArrayLike, atr: ArrayLike, config: CostConfig
) -> np.ndarray:
    """`expected_cost_r` of many signals (reference trades)."""
    return round_trip_costs_r(entry, entry, risk_per_share, atr, config=config)


def net_r(gross_r: ArrayLike, cost_r: ArrayLike) -> np.ndarray | float:
    """Realised R after costs: gross R minus the round trip's cost in R."""
    result = np.asarray(gross_r, dtype=np.float64) - np.asarray(cost_r, dtype=np.float64)
    return float(result) if result.ndim == 0 else result
