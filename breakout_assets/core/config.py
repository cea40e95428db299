"""The strategy's settings models: scanner, outcomes (order lifetimes), opposing book, options.

Why a module of their own: the settings, the CLI and the UI read these without importing the
numba kernels of core.scanner, core.outcomes and core.opposing (which re-export them).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

HOURLY_BARS_PER_SESSION = 7  # regular-hours 1-hour bars of a full NYSE session
NO_LIMIT = 1 << 40  # sessions: "no time cut" for the replay kernel (far past any bar)


class ScannerConfig(BaseModel):
    """Every threshold of the scanner; the defaults are the production strategy.

    Calibration (README, "Scanner calibration"): the defaults reproduce the design's
    scanner-only baseline on 1,630 real US stocks 2015-2024 (long ~46% win, short ~42%, R:R ~1,
    ~0.6 signals per ticker-year per side). The rules that decide the shape stay strict (a swing
    low, a base >= 1.5x the rally's duration, a close through the level); the ones that only
    judge its quality (rally efficiency, breakout volume) are off and left to the model, which
    reads them as features. A 5% move, a base holding above the 78.6% retracement within a
    25% band and the 50% booked target give an R:R near 1, as the description's trades have.
    The synthetic market's planted setups (rallies of +15-40%, tight bases, volume breakouts)
    are all accepted with their exact geometry (tests).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- rally (selloff for shorts) -----------------------------------------------------------
    swing_bars: int = Field(
        5,
        ge=1,
        le=50,
        description="Sessions before the rally start whose lows must all be >= its low (swing low; "
        "short: highs <= its high).",
    )
    rally_min_bars: int = Field(
        3, ge=2, le=250, description="Fewest bars in the rally, swing low and swing high included."
    )
    rally_max_bars: int = Field(
        20, ge=2, le=250, description="Most bars in the rally, swing low and swing high included."
    )
    rally_min_pct: float = Field(
        0.05,
        gt=0,
        le=10,
        description="Smallest move height as a fraction of the rally low (MH / low).",
    )
    rally_max_pct: float = Field(
        1.0,
        gt=0,
        le=10,
        description="Largest move height as a fraction of the rally low (MH / low).",
    )
    rally_min_efficiency: float = Field(
        -1.0,
        ge=-1,
        le=1,
        description="Momentum: net close progress over the rally / sum of absolute close changes "
        "(1 = every close beyond the last; -1 = no rule, the default: the model "
        "reads the rally's intensity as a feature instead).",
    )
    # --- consolidation (base) -----------------------------------------------------------------
    consol_min_ratio: float = Field(
        1.5, ge=0, description="The base lasts at least this many times the rally's duration."
    )
    consol_max_bars: int = Field(
        60, ge=1, le=1000, description="The base lasts at most this many bars."
    )
    consol_max_retracement: float = Field(
        0.786,
        gt=0,
        le=1,
        description="Deepest retracement of the move inside the base, (H - base low) / MH "
        "(0.786: the deepest Fibonacci level that still leaves the rally intact).",
    )
    consol_max_range_pct: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Widest base: consolidation high <= consolidation low x (1 + this).",
    )
    # --- breakout -----------------------------------------------------------------------------
    breakout_min_close_pct: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="The breakout close must exceed the rally high by more than this fraction "
        "(short: fall below the selloff low by more than it).",
    )
    breakout_min_volume_ratio: float = Field(
        0.0,
        ge=0,
        description="Breakout volume >= this x the base's mean volume (0, the default: no volume "
        "rule; the volume ratios are model features).",
    )
    # --- trade geometry -----------------------------------------------------------------------
    atr_max_bars: int = Field(
        50, ge=1, le=1000, description="ATR covers the rally + base, capped at its last N bars."
    )
    stop_atr_multiple: float = Field(2.0, gt=0, description="Stop distance from entry in ATRs.")
    target_fractions: tuple[float, float, float] = Field(
        (0.5, 0.75, 1.0), description="Targets at entry +- f x move height; the first is booked."
    )
    adjusted_entry_fib: float | None = Field(
        None,
        ge=0,
        le=1,
        description="A breakout candle closing at or past this fraction of its own range is an "
        "adjusted (strong) entry that books `adjusted_target_fraction`. None (the "
        "default): off, every signal books the 50% target. The 0.618 reading "
        "stretched 84% of real signals to 2 x MH (12% win rate); see the README.",
    )
    adjusted_target_fraction: float = Field(
        2.0, gt=0, description="Booked target of an adjusted entry, in move heights from entry."
    )
    # --- features -----------------------------------------------------------------------------
    feature_lookback_bars: int = Field(
        250,
        ge=1,
        le=5000,
        description="History before the breakout read by the level-interaction features.",
    )
    volume_baseline_bars: int = Field(
        50,
        ge=1,
        le=5000,
        description="Sessions before the rally whose mean volume is the baseline.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ScannerConfig:
        if self.rally_max_bars < self.rally_min_bars:
            raise ValueError("rally_max_bars must be >= rally_min_bars")
        if self.rally_max_pct < self.rally_min_pct:
            raise ValueError("rally_max_pct must be >= rally_min_pct")
        f = self.target_fractions
        if not 0 < f[0] < f[1] < f[2]:
            raise ValueError("target_fractions must be positive and increasing")
        return self

    @property
    def lookback_bars(self) -> int:
        """Sessions before a breakout that detecting it can read (features read further back)."""
        return self.consol_max_bars + self.rally_max_bars + self.swing_bars + 1

    @property
    def adjusted_threshold(self) -> float:
        """The close position an adjusted entry needs; infinite (never) when the rule is off."""
        return math.inf if self.adjusted_entry_fib is None else self.adjusted_entry_fib

    @property
    def min_consol_bars(self) -> int:
        """The shortest base any rally allows: ceil(consol_min_ratio x rally_min_bars)."""
        return max(1, math.ceil(self.consol_min_ratio * self.rally_min_bars))


class OutcomeConfig(BaseModel):
    """Order lifetimes shared by labels, backtests and live orders."""

    model_config = ConfigDict(frozen=True)

    entry_valid_sessions: int = Field(
        1,
        ge=1,
        le=20,
        description="Sessions after the signal session the entry limit works (1: a DAY order "
        "for the next session).",
    )
    max_holding_sessions: int = Field(
        20,
        ge=1,
        le=250,
        description="Sessions a live position may stay open, counting the fill session; it "
        "expires at the close of the last one (a management rule).",
    )
    label_horizon_sessions: int | None = Field(
        None,
        ge=1,
        le=5000,
        description="Sessions a labelled trade may stay open before it counts as expired; None "
        "(the default): no time cut, the target or the stop decides.",
    )

    def holding(self, labels: bool = False) -> int:
        """The holding limit in sessions: the live one, or the labels' (NO_LIMIT when unset)."""
        if not labels:
            return self.max_holding_sessions
        return NO_LIMIT if self.label_horizon_sessions is None else self.label_horizon_sessions


class OpposingConfig(BaseModel):
    """Settings of the opposing book; defaults follow DESIGN.md ("Opposing book")."""

    model_config = ConfigDict(frozen=True)

    confidence_below: float = Field(
        0.50,
        gt=0.0,
        le=1.0,
        description="Primaries the model scored strictly below this are faded.",
    )
    limit_fraction: float = Field(
        0.75,
        gt=0.0,
        le=1.0,
        description="The reference limit sits this fraction of the way from the primary's entry "
        "to its booked target.",
    )
    arm_fraction: float = Field(
        0.75,
        ge=0.0,
        le=1.0,
        description="How far toward the booked target (fraction of entry -> target) the alert's "
        "new-high bar must have reached: the run the fade bets against.",
    )
    alert_bars: int = Field(
        2,
        ge=2,
        le=5,
        description="Bars from the run's new-high bar to the reversal bar, both counted "
        "(2: the next bar must close below the new-high bar's low).",
    )
    window_sessions: int = Field(
        10,
        ge=1,
        le=60,
        description="Sessions after the signal session in which the alert may arm and a leg may "
        "fill; the legs are cancelled after the last one.",
    )
    risk_fraction: float = Field(
        0.005,
        gt=0.0,
        le=0.05,
        description="Equity at risk per leg (1R from the leg's own entry to the fade's stop).",
    )
    max_holding_bars: int = Field(
        140,
        ge=1,
        le=5000,
        description="Bars of the replay's frequency a filled fade may stay open, the fill bar "
        "counted (140 = 20 sessions of 7 regular-hours 1-hour bars; 20 for daily).",
    )

    def on_daily_bars(self) -> OpposingConfig:
        """The same book replayed on daily bars: the holding limit turned into sessions."""
        sessions = max(1, math.ceil(self.max_holding_bars / HOURLY_BARS_PER_SESSION))
        return self.model_copy(update={"max_holding_bars": sessions})


class OptionsConfig(BaseModel):
    """The defined-risk options overlay (issue 11, DESIGN.md "Options overlay"): which chain,
    which expiry, the liquidity filter, the debit's slippage, the size and the model chain.

    The model chain (core.model_chain) prices listed strikes with Black-Scholes at the ticker's
    realised volatility x `iv_multiplier`; its quotes' open interest and bid-ask are the
    `model_*` assumptions below (no historical option quotes here).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["off", "paper", "live"] = Field(
        "paper",
        description="off: no spreads; paper: planned and sent to the simulated broker (or an "
        "IBKR paper account); live: real orders, refused until the options book is promoted.",
    )
    chain_source: Literal["model", "polygon", "ibkr"] = Field(
        "model",
        description="Where option chains come from: the Black-Scholes model chain, Polygon's "
        "chain snapshot or IBKR's.",
    )
    min_dte: int = Field(
        OutcomeConfig.model_fields["max_holding_sessions"].default,
        ge=1,
        le=250,
        description="The spread's expiry is the first one at least this many sessions after "
        "the signal session (default: the stock book's holding limit, so the spread outlives "
        "the trade it expresses).",
    )
    max_dte: int = Field(
        90,
        ge=1,
        le=500,
        description="Expiries are looked for up to this many sessions after the signal session.",
    )
    risk_pct: float = Field(
        1.0,
        gt=0,
        le=10,
        description="Percent of equity one spread may lose (its whole net debit).",
    )
    max_contracts: int = Field(
        100, ge=1, le=10_000, description="Most contracts in one spread, whatever the budget."
    )
    min_open_interest: int = Field(
        100, ge=0, description="A leg needs at least this open interest (liquidity filter)."
    )
    max_spread_fraction: float = Field(
        0.25,
        gt=0,
        le=2,
        description="A leg's bid-ask width may be at most this fraction of its mid (liquidity "
        "filter).",
    )
    max_strike_miss: float = Field(
        0.5,
        ge=0,
        le=5,
        description="A chosen strike may sit at most this many times the 50%-to-100% target "
        "distance away from its target; farther, the chain has no strike that fits.",
    )
    slippage: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Dollars per share added to the mid net debit (and taken off a modelled "
        "exit): the price of crossing part of the combo's bid-ask.",
    )
    iv_multiplier: float = Field(
        1.1,
        gt=0,
        le=5,
        description="Model chain: implied volatility = realised volatility x this (options "
        "usually trade above realised volatility).",
    )
    vol_window: int = Field(
        20,
        ge=2,
        le=250,
        description="Model chain: daily log returns in the realised volatility.",
    )
    rate: float = Field(
        0.04, ge=-0.05, le=0.25, description="Risk-free rate (annual, continuous) for pricing."
    )
    model_half_spread: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="Model chain: half the bid-ask width as a fraction of the Black-Scholes mid.",
    )
    model_min_half_spread: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Model chain: smallest half bid-ask width in dollars (a penny tick), so "
        "near-worthless contracts look as illiquid as they are.",
    )
    model_open_interest: int = Field(
        1000, ge=0, description="Model chain: the open interest every listed contract shows."
    )
    model_strike_range: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Model chain: strikes are listed from price x (1 - this) to price x "
        "(1 + this).",
    )
    model_weeklies: bool = Field(
        True,
        description="Model chain: list the weekly Friday expiries besides the monthly ones.",
    )
    min_closed_for_promotion: int = Field(
        30,
        ge=1,
        description="`breakout options promote` needs at least this many closed paper spreads "
        "(with a positive expectancy).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> OptionsConfig:
        if self.max_dte < self.min_dte:
            raise ValueError("max_dte must be >= min_dte")
        return self
