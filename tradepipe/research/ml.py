"""Machine-learned agents: features from closed bars, two model kinds from scikit-learn, artifacts with a sha256.

Features (:func:`features`), per row, from that row's close and earlier ones only, each window-local
(no recursive smoothing, so the per-bar agent computing them on its window gets the same numbers):
log returns over 1, 6, 24, 72 and 168 bars in units of the 168-bar volatility, the 24- and 168-bar
volatility ratio, the Bollinger z-score over 20 and 72 bars and the position in the 48-bar Donchian
channel. The label of row ``r`` is whether the close ``horizon`` bars later is above ``close[r]``.

Training for a partition starting at ``cutoff_ms`` (:func:`train`) uses only rows whose label bar has
closed by ``cutoff_ms``: ``timestamp[r + horizon] + step <= cutoff_ms``. Rows with a defective window
(the cycle's guard) are left out and counted. ``tests/research/test_ml.py`` proves that a model trained
on the whole file with a cutoff equals one trained on the file cut at the cutoff, and that a feature
row never changes when later bars are added.

Kinds: ``logistic`` (L2-regularised logistic regression on standardised features) and ``hgb``
(``HistGradientBoostingClassifier``, shallow, early-stopped on the last tenth of the training rows).
The vote is ``2 p - 1`` with ``p`` the predicted probability of a rise, confidence 1.

Artifacts are pickles under ``TRADEPIPE_HOME/models``; :func:`load_model` refuses a file whose sha256
differs from the recorded one with :class:`ModelIntegrityError` (one line).
"""

from __future__ import annotations

import hashlib
import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradepipe.core.agents import Agent, Vote
from tradepipe.core.types import AgentContext, BarHistory
from tradepipe.research.data import SymbolBars
from tradepipe.research.signals import window_validity

FEATURE_NAMES = ("ret_1", "ret_6", "ret_24", "ret_72", "ret_168", "vol_ratio", "z_20", "z_72", "donchian_48")
FEATURE_BARS = 169  # rows a feature row needs (the 168-bar return and volatility)
KINDS = ("logistic", "hgb")


class ModelIntegrityError(RuntimeError):
    """A model artifact that is missing or whose bytes differ from the recorded sha256."""


class ModelTrainingError(ValueError):
    """A model that cannot be trained (too few rows, one class only): the previous model stays."""


def features(close: np.ndarray) -> np.ndarray:
    """rows x FEATURE_NAMES; NaN where a row lacks the history."""
    series = pd.Series(np.log(close))
    step = series.diff()
    vol_long = step.rolling(168).std(ddof=0)
    columns = [series.diff(h) / (vol_long * math.sqrt(h)) for h in (1, 6, 24, 72, 168)]
    columns.append(step.rolling(24).std(ddof=0) / vol_long)
    prices = pd.Series(close)
    for n in (20, 72):
        rolling = prices.rolling(n)
        columns.append((prices - rolling.mean()) / rolling.std(ddof=0))
    high, low = prices.rolling(48).max(), prices.rolling(48).min()
    columns.append((prices - low) / (high - low) * 2.0 - 1.0)
    matrix = np.column_stack([c.to_numpy(dtype=float) for c in columns])
    return np.where(np.isfinite(matrix), matrix, np.nan)


def labels(close: np.ndarray, horizon: int) -> np.ndarray:
    """1.0 when the close ``horizon`` rows later is higher, 0.0 otherwise, NaN where it is not known."""
    out = np.full(close.shape, np.nan)
    out[:-horizon] = (close[horizon:] > close[:-horizon]).astype(float)
    return out


@dataclass(frozen=True)
class TrainingSet:
    x: np.ndarray
    y: np.ndarray
    last_label_close_ms: int  # the newest bar close any label read
    skipped_rows: int  # rows with a defective window (the cycle's guard), left out


def training_set(bars_by_symbol: Mapping[str, SymbolBars], horizon: int, cutoff_ms: int, step_ms: int, first_ms: int | None = None) -> TrainingSet:
    """Rows of every symbol whose label bar closed by ``cutoff_ms`` (and opened at or after ``first_ms``)."""
    xs, ys, newest, skipped = [], [], 0, 0
    for bars in bars_by_symbol.values():
        close = bars.close
        x, y = features(close), labels(close, horizon)
        label_close = np.full(close.shape, np.iinfo(np.int64).max)
        label_close[:-horizon] = bars.timestamps[horizon:] + step_ms
        keep = (label_close <= cutoff_ms) & np.isfinite(y) & np.isfinite(x).all(axis=1)
        if first_ms is not None:
            keep &= bars.timestamps >= first_ms
        valid = window_validity(bars, FEATURE_BARS + horizon)  # the guard on every bar a row reads
        ahead = np.zeros(close.shape, dtype=bool)
        ahead[:-horizon] = valid[horizon:]
        skipped += int(np.sum(keep & ~ahead))
        keep &= ahead
        xs.append(x[keep])
        ys.append(y[keep])
        if keep.any():
            newest = max(newest, int(label_close[keep].max()))
    return TrainingSet(np.vstack(xs), np.concatenate(ys), newest, skipped)


def build_model(kind: str, seed: int = 0) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))
    if kind == "hgb":
        return HistGradientBoostingClassifier(
            max_depth=3, learning_rate=0.05, max_iter=150, l2_regularization=1.0,
            early_stopping=True, validation_fraction=0.1, n_iter_no_change=10, random_state=seed,
        )
    raise ModelTrainingError(f"unknown model kind {kind!r}; kinds: {', '.join(KINDS)}")


@dataclass
class TrainedModel:
    name: str
    kind: str
    horizon: int
    cutoff_ms: int
    estimator: Any
    training_rows: int
    skipped_rows: int
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def probability(self, x: np.ndarray) -> np.ndarray:
        """P(rise) per row; NaN for a row with a missing feature."""
        out = np.full(x.shape[0], np.nan)
        ok = np.isfinite(x).all(axis=1)
        if ok.any():
            out[ok] = self.estimator.predict_proba(x[ok])[:, 1]
        return out

    def agent(self) -> Agent:
        """The per-bar ``ml`` agent: the vote ``2 p - 1`` from the window's last feature row."""

        def vote(history: BarHistory, context: AgentContext) -> Vote:
            p = float(self.probability(features(history.close)[-1:])[0])
            if not math.isfinite(p):
                return Vote(0.0, 0.0, "a feature is missing", abstained=True)
            return Vote(2.0 * p - 1.0, 1.0, f"{self.kind} model {self.name}: P(rise over {self.horizon} bars) {p:.2f}")

        return Agent(f"ml_{self.name}", FEATURE_BARS, vote, "machine-learned vote")


def train(kind: str, bars_by_symbol: Mapping[str, SymbolBars], horizon: int, cutoff_ms: int, step_ms: int, *, name: str, first_ms: int | None = None, seed: int = 0) -> TrainedModel:
    """Fit ``kind`` on the rows labelled by ``cutoff_ms``; ``ModelTrainingError`` when it cannot be fitted."""
    data = training_set(bars_by_symbol, horizon, cutoff_ms, step_ms, first_ms)
    if data.y.size < 500:
        raise ModelTrainingError(f"{data.y.size} training rows closed before the cutoff, fewer than 500")
    if np.unique(data.y).size < 2:
        raise ModelTrainingError("the training labels are all one class")
    from threadpoolctl import threadpool_limits

    estimator = build_model(kind, seed)
    # One thread: partitions train side by side, and OpenMP threads fighting for shared cores are slower.
    with threadpool_limits(limits=1):
        estimator.fit(data.x, data.y)
    params = {k: v for k, v in estimator.get_params().items() if isinstance(v, (int, float, str, bool)) or v is None}
    accuracy = float(np.mean((estimator.predict_proba(data.x)[:, 1] > 0.5) == (data.y > 0.5)))
    return TrainedModel(name, kind, horizon, cutoff_ms, estimator, int(data.y.size), data.skipped_rows, params, {"in_sample_accuracy": accuracy, "last_label_close_ms": data.last_label_close_ms})


def model_votes(model: TrainedModel, bars: SymbolBars, history_bars: int) -> np.ndarray:
    """The ``ml`` agent's vote at every row (whole arrays), NaN where the cycle's guard skips the window."""
    p = model.probability(features(bars.close))
    vote = np.where(np.isfinite(p), 2.0 * p - 1.0, 0.0)
    rows = np.arange(len(bars))
    vote = np.where(np.minimum(rows + 1, history_bars) < FEATURE_BARS, 0.0, vote)
    return np.where(window_validity(bars, history_bars), vote, np.nan)


def save_model(model: TrainedModel, directory: Path) -> tuple[Path, str]:
    """Write the artifact; returns its path and sha256."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{model.name}.pkl"
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(payload)
    temporary.replace(path)
    return path, hashlib.sha256(payload).hexdigest()


def load_model(path: Path, sha256: str) -> TrainedModel:
    """The model at ``path`` if its bytes hash to ``sha256``; else ``ModelIntegrityError`` (one line)."""
    try:
        payload = Path(path).read_bytes()
    except OSError as exc:
        raise ModelIntegrityError(f"model artifact {path} cannot be read: {exc.strerror}") from None
    actual = hashlib.sha256(payload).hexdigest()
    if actual != sha256:
        raise ModelIntegrityError(f"model artifact {path}: sha256 {actual[:12]}... differs from the recorded {sha256[:12]}...; not loaded")
    model = pickle.loads(payload)  # our own artifact, its bytes checked against the recorded hash
    if not isinstance(model, TrainedModel):
        raise ModelIntegrityError(f"model artifact {path} does not hold a trained model")
    return model


__all__ = [
    "FEATURE_BARS",
    "FEATURE_NAMES",
    "KINDS",
    "ModelIntegrityError",
    "ModelTrainingError",
    "TrainedModel",
    "TrainingSet",
    "build_model",
    "features",
    "labels",
    "load_model",
    "model_votes",
    "save_model",
    "train",
    "training_set",
]
