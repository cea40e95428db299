"""The simulator's parameters: universe, return process, planted setups, index series."""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from breakout_assets.core.sectors import SECTOR_ETF

BLOCK = 16  # sessions simulated per step (small: a block's arrays stay in the CPU cache)
GROUP = 1024  # tickers per random generator
CALENDAR_YEARS = 40  # how far past the origin sessions exist

SECTORS = (*SECTOR_ETF, "Miscellaneous")
_SECTOR_SHARES = {  # rough shares of US listings, in percent
    "Technology": 18,
    "Finance": 15,
    "Health Care": 17,
    "Energy": 5,
    "Industrials": 11,
    "Consumer Discretionary": 12,
    "Consumer Staples": 4,
    "Utilities": 3,
    "Basic Materials": 4,
    "Real Estate": 5,
    "Telecommunications": 3,
    "Miscellaneous": 3,
}
INDUSTRIES = {
    "Technology": ("Computer Software: Prepackaged Software", "Semiconductors", "EDP Services"),
    "Finance": ("Major Banks", "Investment Bankers/Brokers/Service", "Property-Casualty Insurers"),
    "Health Care": ("Biotechnology: Pharmaceutical Preparations", "Medical/Dental Instruments"),
    "Energy": ("Oil & Gas Production", "Integrated oil Companies", "Oilfield Services/Equipment"),
    "Industrials": ("Industrial Machinery/Components", "Aerospace", "Trucking Freight/Courier"),
    "Consumer Discretionary": ("Restaurants", "Auto Manufacturing", "Department/Specialty Retail"),
    "Consumer Staples": ("Packaged Foods", "Beverages (Production/Distribution)", "Food Chains"),
    "Utilities": ("Electric Utilities: Central", "Natural Gas Distribution", "Water Supply"),
    "Basic Materials": ("Major Chemicals", "Precious Metals", "Steel/Iron Ore"),
    "Real Estate": ("Real Estate Investment Trusts", "Real Estate"),
    "Telecommunications": ("Telecommunications Equipment", "Cable & Other Pay Television Services"),
    "Miscellaneous": ("Business Services", "Multi-Sector Companies"),
}

# --- return process --------------------------------------------------------------------------
MARKET_DRIFT = 0.0003  # daily log drift of the market factor
MARKET_VOL, SECTOR_VOL = 0.0105, 0.006  # long-run daily volatility of the factors
FACTOR_TAIL = 5  # degrees of freedom of the factors' Student-t shocks: rare crash days
# GJR-GARCH(1,1) (alpha, gamma, beta): volatility clusters, and rises more after losses.
MARKET_GARCH, SECTOR_GARCH, IDIO_GARCH = (0.03, 0.12, 0.90), (0.05, 0.04, 0.91), (0.05, 0.06, 0.90)
REVERSION = 0.002  # daily pull of a stock back to its level relative to the market
PRICE_FLOOR, FLOOR_PULL = 3.0, 0.02  # and a stronger pull up below $3: no penny paths, where
# rounding to the cent would blur a setup's geometry
JUMP_PROBABILITY, JUMP_SD, JUMP_CAP = 1 / 63, 0.07, 0.30  # earnings-like overnight gaps
GAP_SHARE, GAP_NOISE = 0.35, 0.30  # share of the market move made overnight; open noise (x vol)
WICK = 0.8  # mean high-low extension beyond the open-close body (x vol)
VOLUME_MOVE, VOLUME_RANGE, VOLUME_NOISE, VOLUME_MARKET = 0.35, 0.15, 0.30, 0.25
VIX_PREMIUM, VIX_RANGE = 1.2, (9.0, 85.0)

# --- planted setups --------------------------------------------------------------------------
SLOT = 320  # each ticker has at most one planted setup per slot of sessions
PLANT_PROBABILITY = 0.8  # -> about one setup per ticker every 400 sessions (~1.6 years)
MIN_HISTORY = 60  # sessions of ordinary history before the first planted setup
LEAD = 5  # declining bars before the rally, so that its first bar is a swing low
RALLY_SESSIONS = (5, 15)
CONSOL_RATIO = (1.5, 3.0)  # consolidation length / rally length
RALLY_MAX = RALLY_SESSIONS[1]
CONSOL_MAX = int(np.ceil(RALLY_MAX * CONSOL_RATIO[1]))
PLANT_MAX = LEAD + RALLY_MAX + CONSOL_MAX + 1
PLANT_SPACING = 20  # minimum ordinary sessions between two setups of a ticker
PLANT_SIGMA_CAP = 0.03  # noise inside a pattern stays small even for the wildest tickers

HOURS_MAX = 7
_HOURLY_PROFILE = np.array([1.6, 1.0, 0.8, 0.7, 0.8, 1.0, 1.5])  # U-shaped intraday volume

_ETFS: dict[str, tuple[float, str | None, float, float, float, float]] = {
    # ticker: (market beta, sector, sector loading, tracking noise, first close, base volume)
    "SPY": (1.00, None, 0.0, 0.0003, 200.0, 8e7),
    "QQQ": (1.15, "Technology", 0.45, 0.0030, 100.0, 4.5e7),
    "IWM": (1.15, None, 0.0, 0.0050, 120.0, 3e7),
    "DIA": (0.95, "Industrials", 0.20, 0.0020, 175.0, 4e6),
    "XLE": (1.00, "Energy", 1.0, 0.0015, 75.0, 1.5e7),
    "XLF": (1.00, "Finance", 1.0, 0.0015, 24.0, 4e7),
    "XLI": (1.00, "Industrials", 1.0, 0.0015, 55.0, 1e7),
    "XLK": (1.00, "Technology", 1.0, 0.0015, 40.0, 8e6),
    "XLP": (1.00, "Consumer Staples", 1.0, 0.0015, 48.0, 9e6),
    "XLU": (1.00, "Utilities", 1.0, 0.0015, 44.0, 1.2e7),
    "XLV": (1.00, "Health Care", 1.0, 0.0015, 65.0, 8e6),
    "XLY": (1.00, "Consumer Discretionary", 1.0, 0.0015, 70.0, 5e6),
}
INDEX_TICKERS = (*_ETFS, "VIX")

PLANT_COLUMNS = (
    "ticker",
    "side",
    "rally_start",
    "rally_end",
    "consol_start",
    "consol_end",
    "breakout_session",
    "rally_low",
    "rally_high",
    "move_height",
    "consol_high",
    "consol_low",
    "entry",
    "breakout_open",
    "breakout_high",
    "breakout_low",
)

Arrays = dict[str, np.ndarray]  # named arrays: random draws, parts of a template
T = TypeVar("T")
