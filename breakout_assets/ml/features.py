"""The model's inputs, in one fixed order: what training reads and what serving computes.

Pattern features come from `breakout_signals` (core.pattern_features), market features from
`daily_features` on the signal session; both join in the `model_inputs` view (sql/migrations),
which training and live scoring read alike. A saved model records the subset it uses, in order;
loading it checks that subset against this list.
"""

from __future__ import annotations

from breakout_assets.core.pattern_features import FEATURE_NAMES as PATTERN_FEATURES

MARKET_FEATURES = (
    "atr_pct_14",
    "volatility_20d",
    "rsi_14",
    "stoch_14",
    "dist_from_sma_5",
    "dist_from_sma_20",
    "dist_from_sma_20_atr_norm",
    "trend_strength_20",
    "vix_change_1d",
    "vix_change_5d",
    "sector_vs_spy_weekly_ret_w1",
    "sector_vs_spy_weekly_ret_w2",
    "sector_vs_spy_weekly_ret_w3",
    "sector_vs_spy_weekly_ret_w4",
    "sector_etf_weekly_oc_atr_w2",
    "sector_etf_weekly_oc_atr_w3",
    "sector_etf_weekly_oc_atr_w4",
    "market_cap_to_sp500",
    "market_cap_to_industry_index",
)

FEATURES: tuple[str, ...] = (*PATTERN_FEATURES, *MARKET_FEATURES)


class FeatureMismatch(ValueError):
    """A model asks for features the code does not compute (or in a different order)."""


def check_model_features(model_features: list[str]) -> None:
    """A model may use any subset of FEATURES, in FEATURES order; anything else is refused."""
    unknown = [f for f in model_features if f not in FEATURES]
    if unknown:
        raise FeatureMismatch(
            f"the model needs features this code does not compute: {unknown}; retrain it or "
            "roll back to a model trained on the current feature code"
        )
    if list(model_features) != [f for f in FEATURES if f in set(model_features)]:
        raise FeatureMismatch("the model's features are not in the code's feature order")
    if len(set(model_features)) != len(model_features):
        raise FeatureMismatch("the model lists a feature twice")
