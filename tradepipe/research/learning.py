"""The learning loop replayed over precomputed votes: daily decisions, weights applied next day.

Pure and fast, for research and the planted-regime proof; the walk-forward engine
(``tradepipe walkforward``) is the full loop through the live cycle code. Here the same core
functions run on arrays:

* each day ``d``: the agents' traded streams over the ``window_days`` before ``d`` start
  (``performance.simulate_books``, each window's solo books starting flat, exactly as the live
  ``agent_performance`` asset computes them from the window's signals), the performance rows
  (``performance.evaluate_agents``) and the decision (``weighting.decide_weights`` with the
  strategy's current weights). The weights apply to every bar of day ``d`` (out of sample:
  known before the day starts);
* every bar: the ensemble score with the weights in force (``ensemble.combine``'s rule: voters are
  the agents that did not abstain and have weight > 0, their weights renormalised), traded by the
  book's rules (``performance.simulate_books``, proven equal to ``cycle.run_cycle``).

What the cycle does beyond this (the gross-exposure, turnover and cash caps, the daily-loss halt,
exchange minimums) is left out, as in the streams; the engine has it all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tradepipe.core.performance import BookRules, evaluate_agents, simulate_books
from tradepipe.core.weighting import decide_weights

DAY_MS = 86_400_000


@dataclass(frozen=True)
class VoteTable:
    """Every agent's vote at every bar: ``vote`` = value x confidence (0 when abstained, NaN where
    the symbol has no bar), ``voted`` = did not abstain; bars x agents x symbols. Prices bars x symbols."""

    bar_ms: np.ndarray
    agents: tuple[str, ...]
    symbols: tuple[str, ...]
    vote: np.ndarray
    voted: np.ndarray
    close: np.ndarray
    open: np.ndarray


@dataclass(frozen=True)
class LearningConfig:
    window_days: int = 30
    min_weight: float = 0.05
    max_weight: float = 0.40
    min_signals: int = 10
    min_sharpe: float = 0.3
    learning_rate: float = 0.25
    periods_per_year: float = 8760.0
    min_metric_returns: int = 20
    min_metric_days: int = 14
    risk_free: float = 0.0


@dataclass
class StrategyRun:
    """Per-bar net and gross returns of one strategy (row t: close t to close t+1) and its weights per day."""

    name: str
    net: np.ndarray
    gross: np.ndarray
    weights: pd.DataFrame = field(default_factory=pd.DataFrame)  # days x agents, the weights in force
    reasons: list[str] = field(default_factory=list)

    @property
    def weight_changes(self) -> int:
        if self.weights.empty:
            return 0
        values = self.weights.to_numpy()
        return int(np.count_nonzero(np.abs(np.diff(values, axis=0)).max(axis=1) > 1e-12))


def ensemble_scores(votes: VoteTable, weights: np.ndarray) -> np.ndarray:
    """bars x symbols of the weighted ensemble score for per-bar ``weights`` (bars x agents)."""
    w = weights[:, :, None]
    voting = votes.voted & (w > 0)
    total = (w * voting).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(total > 0, (w * np.where(voting, np.nan_to_num(votes.vote), 0.0)).sum(axis=1) / total, 0.0)
    return np.where(np.isnan(votes.close), np.nan, score)


def day_starts(bar_ms: np.ndarray, window_days: int) -> np.ndarray:
    """UTC day starts from the first day with a full window behind it to the last bar's day."""
    first = (int(bar_ms[0]) // DAY_MS + 1) * DAY_MS + (window_days - 1) * DAY_MS
    last = int(bar_ms[-1]) // DAY_MS * DAY_MS
    return np.arange(first, last + 1, DAY_MS, dtype=np.int64)


def window_inputs(votes: VoteTable, rules: BookRules, config: LearningConfig, day_ms: int) -> tuple[pd.DataFrame, dict]:
    """The traded streams and performance rows the live assets compute for the window before ``day_ms``."""
    lo, hi = np.searchsorted(votes.bar_ms, [day_ms - config.window_days * DAY_MS, day_ms])
    agents = list(votes.agents)
    if hi - lo < 2:
        streams = pd.DataFrame(columns=agents, dtype=float)
    else:
        returns = simulate_books(votes.vote[lo:hi], votes.close[lo:hi], votes.open[lo:hi], rules)
        streams = pd.DataFrame(returns, index=votes.bar_ms[lo : hi - 1], columns=agents)
    counts = dict(zip(agents, votes.voted[lo:hi].sum(axis=(0, 2)).tolist()))
    rows, _ = evaluate_agents(
        agents, streams, counts, {}, config.periods_per_year, config.risk_free,
        min_returns=config.min_metric_returns, min_days=config.min_metric_days,
    )
    return streams, rows


def learn(
    votes: VoteTable,
    rules: BookRules,
    config: LearningConfig,
    methods: Sequence[str],
    fixed: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, StrategyRun]:
    """Replay the loop: ``adaptive:<method>`` for each method (starting from equal weight) and each
    ``fixed`` weight set; returns per strategy its out-of-sample per-bar returns over the decided days.

    A method may carry its own hedge learning rate as ``"hedge@1.0"`` (for sweeps)."""
    agents = list(votes.agents)
    equal = {a: 1.0 / len(agents) for a in agents}
    days = day_starts(votes.bar_ms, config.window_days)
    if days.size == 0:
        raise ValueError(f"no day has a full {config.window_days}-day window behind it in the data")
    current = {m: dict(equal) for m in methods}
    history: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    reasons: dict[str, list[str]] = {m: [] for m in methods}
    for day in days:
        streams, rows = window_inputs(votes, rules, config, int(day))
        for method in methods:
            name, _, rate = method.partition("@")
            decision = decide_weights(
                agents, rows, streams, current[method], method=name, min_weight=config.min_weight,
                max_weight=config.max_weight, min_signals=config.min_signals, min_sharpe=config.min_sharpe,
                periods_per_year=config.periods_per_year, risk_free=config.risk_free,
                learning_rate=float(rate) if rate else config.learning_rate, min_days=config.min_metric_days,
            )
            current[method] = dict(decision.weights)
            history[method].append(dict(decision.weights))
            reasons[method].append(decision.reason)
    start = int(np.searchsorted(votes.bar_ms, days[0]))
    day_of_bar = np.searchsorted(days, votes.bar_ms[start:], side="right") - 1
    plans: dict[str, np.ndarray] = {}
    frames: dict[str, pd.DataFrame] = {}
    for method in methods:
        frame = pd.DataFrame(history[method], index=pd.to_datetime(days, unit="ms", utc=True), columns=agents)
        frames[f"adaptive:{method}"] = frame
        plans[f"adaptive:{method}"] = frame.to_numpy()[day_of_bar]
    for name, weights in (fixed or {"equal_weight": equal}).items():
        plans[name] = np.tile([float(weights.get(a, 0.0)) for a in agents], (day_of_bar.size, 1))
    tail = VoteTable(votes.bar_ms[start:], votes.agents, votes.symbols, votes.vote[start:], votes.voted[start:], votes.close[start:], votes.open[start:])
    scores = np.stack([ensemble_scores(tail, plan) for plan in plans.values()], axis=1)
    net = simulate_books(scores, tail.close, tail.open, rules)
    gross = simulate_books(scores, tail.close, tail.open, rules, costs=False)
    return {
        name: StrategyRun(name, net[:, i], gross[:, i], frames.get(name, pd.DataFrame()), reasons.get(name.removeprefix("adaptive:"), []))
        for i, name in enumerate(plans)
    }


def compute_votes(bars: Mapping[str, Mapping[str, np.ndarray]], agents: Sequence, history_bars: int, timeframe: str) -> VoteTable:
    """Every agent's vote on every bar, as the cycle casts it: on the newest ``history_bars`` closed
    bars, NaN where ``agents.validate_history`` skips the symbol. ``bars[symbol]`` holds the arrays
    ``timestamp``, ``open``, ``high``, ``low``, ``close``, ``volume``; symbols missing a bar of the
    union timeline have NaN there."""
    from tradepipe.core.agents import validate_history
    from tradepipe.core.types import AgentContext, BarHistory

    symbols = tuple(sorted(bars))
    timeline = np.unique(np.concatenate([np.asarray(bars[s]["timestamp"], dtype=np.int64) for s in symbols]))
    names = tuple(agent.name for agent in agents)
    vote = np.full((timeline.size, len(names), len(symbols)), np.nan)
    voted = np.zeros(vote.shape, dtype=bool)
    close = np.full((timeline.size, len(symbols)), np.nan)
    opens = np.full((timeline.size, len(symbols)), np.nan)
    for j, symbol in enumerate(symbols):
        data = {k: np.asarray(v) for k, v in bars[symbol].items()}
        rows = np.searchsorted(timeline, data["timestamp"].astype(np.int64))
        close[rows, j], opens[rows, j] = data["close"], data["open"]
        for i, row in enumerate(rows):
            lo = max(0, i + 1 - history_bars)
            history = BarHistory(symbol, timeframe, data["timestamp"][lo : i + 1].astype(np.int64), *(data[c][lo : i + 1].astype(float) for c in ("open", "high", "low", "close", "volume")))
            if validate_history(history) is not None:
                close[row, j] = np.nan  # the cycle skips the symbol: no vote, no fill, no new mark
                continue
            context = AgentContext(now_ms=int(data["timestamp"][i]))
            for k, agent in enumerate(agents):
                signal = agent(history, context)
                voted[row, k, j] = not signal.abstained
                vote[row, k, j] = 0.0 if signal.abstained else signal.value * signal.confidence
    return VoteTable(timeline, names, symbols, vote, voted, close, opens)
