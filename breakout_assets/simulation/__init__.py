"""A seeded synthetic US equity market (the simulator behind the synthetic data source): daily
and hourly bars, index series, reference data. Not strategy code: it lives outside `core`.

Why: a source that needs no network or licence, scales to a whole market (10,000+ tickers) and
plants rally -> consolidation -> breakout setups (and their short mirrors) whose geometry is
recorded, so the scanner, the labels and the models can be checked against known answers.

Determinism: every path starts at `origin` and is simulated forward in fixed blocks of `BLOCK`
sessions. Each block's random numbers come from a fresh generator seeded with `[seed, stream,
block, group]`, one per group of `GROUP` tickers, so a session's bars are identical however the
range is asked for (one session, a range, chunks), and a ticker's path does not depend on the
size of the universe.

Speed: the loop runs over sessions with numpy across all tickers; bar shapes are computed in
float32 and only rounded to the cent in float64 (10,000 tickers x 2,500 sessions: seconds).

Modules, by concern: `params` (every parameter), `draws` (random streams), `universe`
(calendar, tickers), `factors` (market, sectors, index series), `stocks` (return paths),
`plants` (planted setups), `bars` (OHLCV and hours), `market` (`SyntheticMarket`).
"""

from breakout_assets.simulation.market import SyntheticMarket
from breakout_assets.simulation.params import INDEX_TICKERS, INDUSTRIES, PLANT_COLUMNS, SECTORS

__all__ = ["INDEX_TICKERS", "INDUSTRIES", "PLANT_COLUMNS", "SECTORS", "SyntheticMarket"]
