"""How long one side's default training takes: tuning + feature elimination on ~3,000 signals.

The set imitates the real one: ~50 features in correlated groups (a few market factors), fat
tails, some missing values, and a weak, partly non-linear signal in five of them (~35% wins), so
the tuner cannot finish early by finding an easy split. Target: <= 10 minutes on 2 cores.

Run: `python benchmarks/bench_training.py [rows] [features] [side] [key=value config overrides]`,
e.g. `python benchmarks/bench_training.py 3000 50 long max_rounds=1` for a one-round probe.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from breakout_assets.ml.training import TrainingConfig, TrainingSet, train_side


def realistic_set(n: int = 3000, n_features: int = 50, seed: int = 11) -> TrainingSet:
    rng = np.random.default_rng(seed)
    days = np.arange(np.datetime64("2015-01-01"), np.datetime64("2025-01-01"))
    days = days[np.is_busday(days)]
    signal = np.sort(rng.choice(days, n))
    exit_ = np.busday_offset(signal, rng.integers(1, 31, n))
    factors = rng.standard_normal((n, 5))
    loadings = rng.normal(0, 0.6, (5, n_features))
    x = factors @ loadings + rng.standard_t(4, (n, n_features))
    frame = pd.DataFrame(x, columns=[f"feat_{i:02d}" for i in range(n_features)])
    for col in frame.columns[::7]:
        frame.loc[rng.random(n) < 0.08, col] = np.nan
    f = frame.fillna(0.0).to_numpy()
    logit = (
        -0.75
        + 0.35 * f[:, 0]
        + 0.3 * f[:, 1]
        - 0.25 * f[:, 2]
        + 0.3 * np.tanh(f[:, 3] * f[:, 4])
        + 0.2 * (f[:, 4] > 1)
    )
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    r = np.where(label == 1, rng.uniform(1.0, 3.0, n), np.where(rng.random(n) < 0.8, -1.0, 0.2))
    return TrainingSet(
        features=frame,
        label=label,
        signal_session=signal,
        exit_session=exit_,
        r_multiple=r,
        signal_id=np.array([f"sig{i:05d}" for i in range(n)]),
    )


def main(argv: list[str]) -> None:
    positional = [a for a in argv if "=" not in a]
    overrides = dict(a.split("=", 1) for a in argv if "=" in a)
    n = int(positional[0]) if positional else 3000
    n_features = int(positional[1]) if len(positional) > 1 else 50
    side = positional[2] if len(positional) > 2 else "long"
    config = TrainingConfig(**overrides)
    ts = realistic_set(n, n_features)
    print(
        f"set: {len(ts)} rows, {len(ts.feature_names)} features, "
        f"{ts.label.mean():.1%} wins; side {side}"
    )
    print(f"config: {config.model_dump()}")
    start = time.perf_counter()
    model = train_side(ts, side, config)  # type: ignore[arg-type]
    wall = time.perf_counter() - start
    trials = sum(r["trials"] for r in model.rounds)
    print(
        f"wall time: {wall:.1f} s ({wall / 60:.2f} min); trials run: {trials}; "
        f"rounds: {len(model.rounds)}; train rows {len(model.train_idx)} "
        f"{model.train_range}, test rows {len(model.test_idx)} {model.test_range}"
    )
    for r in model.rounds:
        print(
            f"  round {r['round']}: {r['n_features']:>3} features, "
            f"{model.objective} {r['cv_score']:.4f}, dropped {len(r['dropped'])}"
        )
    y = ts.label[model.test_idx]
    print(
        f"chosen round {model.best_round}: CV {model.objective} = {model.cv_score:.4f}; "
        f"held-out AUC {roc_auc_score(y, model.test_probability):.3f}"
    )
    print(f"final features ({len(model.features)}): {', '.join(model.features)}")
    print(f"params: {model.params}")


if __name__ == "__main__":
    main(sys.argv[1:])
