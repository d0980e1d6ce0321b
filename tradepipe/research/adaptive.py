"""The self-improvement loop over history: discover, evaluate, select every K days, then weight the pool daily.

Every ``every_days`` days ``d`` (from the first day with ``lookback_days`` of voted bars before it):

1. **discover**: ``candidates`` random variants (seeded by the loop's seed and ``d``) plus ``mutations``
   neighbours of each pool member;
2. **evaluate**: each candidate's solo book, started in cash at ``d - lookback_days``, traded with the live
   book's rules and fees (``core.performance.simulate_books``) on the bars closed before ``d``; the
   deflated Sharpe of each against every variant tried so far (the trial count is cumulative) and the
   PBO of picking the best of this generation (CSCV);
3. **select**: ``selection.retirement_decisions`` on the members' last ``decay_days`` and
   ``selection.promotion_decisions`` (DSR, trades, PBO, pool size).

The book is a capital split across solo books (each base agent that votes, plus every pool member from
the day after its promotion), at equal weights, rebalanced every bar: its return at a bar is the mean of
its sleeves' returns. That is the stream-level form of the walk-forward's books: it leaves out the cost
of moving capital between sleeves and the book-level caps. The day-1 system here is the same split over
the base agents alone, so the two differ only by what the loop added.

Only bars closed before ``d`` enter a decision at ``d``: ``tests/research/test_adaptive.py`` runs the
loop on a market cut at a day and finds the same generations and promotions before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradepipe.core.agents import Agent
from tradepipe.core.performance import BookRules, simulate_books
from tradepipe.core.timeframes import DAY_MS, periods_per_year
from tradepipe.research.data import MarketFrame, WalkForwardInputError
from tradepipe.research.evaluation import stream_figures
from tradepipe.research.selection import (
    Evaluation,
    PoolChange,
    PoolRules,
    deflated_sharpe,
    pbo_cscv,
    promotion_decisions,
    retirement_decisions,
)
from tradepipe.research.signals import build_signal_table, window_validity
from tradepipe.research.stats import sharpe_difference_ci
from tradepipe.research.variants import FAMILIES, Variant, mutate, random_variants, variant_votes


def _max_family_bars() -> int:
    """The longest window any variant within the bounds needs: the loop's fixed ``history_bars``."""
    longest = 0
    for family in FAMILIES.values():
        params = {p.name: (int(p.high) if p.kind is int else p.high) for p in family.parameters}
        longest = max(longest, family.min_bars(params))
    return longest


@dataclass(frozen=True)
class LoopConfig:
    every_days: int = 14
    lookback_days: int = 90
    candidates: int = 40
    mutations: int = 2
    seed: int = 0
    pbo_blocks: int = 8
    rules: PoolRules = field(default_factory=PoolRules)

    def __post_init__(self) -> None:
        if self.every_days < 1 or self.lookback_days < 7 or self.candidates < 2:
            raise ValueError(f"LoopConfig out of range: {self}")


@dataclass
class Generation:
    day_ms: int
    trials: int
    pbo: float | None
    evaluations: list[Evaluation]
    changes: list[PoolChange]
    pool: list[str]


@dataclass
class LoopRun:
    bar_ms: np.ndarray  # the stream rows' bar open times (row t earned over the bar after t's close)
    adaptive: np.ndarray  # net per-row returns of the loop's book
    baseline: np.ndarray  # the day-1 system (base agents only), same rows
    adaptive_gross: np.ndarray
    baseline_gross: np.ndarray
    buy_and_hold: np.ndarray
    first_row: int  # the first row traded after the first generation (the out-of-sample start)
    generations: list[Generation]
    variants: dict[str, Variant]
    base_agents: tuple[str, ...]

    @property
    def trials(self) -> int:
        return self.generations[-1].trials if self.generations else 0

    def promotions(self) -> list[dict[str, Any]]:
        """Every promotion and retirement in order: day, variant, what it is, reason."""
        return promotion_rows(self.generations, self.variants)


def promotion_rows(generations: Sequence[Generation], variants: Mapping[str, Variant]) -> list[dict[str, Any]]:
    """Every promotion and retirement of ``generations`` in order: day, variant, what it is, reason."""
    out = []
    for generation in generations:
        for change in generation.changes:
            if change.action in ("promote", "retire"):
                variant = variants.get(change.name)
                out.append({
                    "day_ms": generation.day_ms, "action": change.action, "name": change.name,
                    "variant": variant.describe() if variant else change.name,
                    "horizon_bars": variant.horizon_bars if variant else None, "reason": change.reason,
                })
    return out


def _base_cube(market: MarketFrame, agents: Sequence[Agent], history_bars: int) -> np.ndarray:
    n = market.timeline.size
    cube = np.full((n, len(agents), len(market.symbols)), np.nan)
    for s, symbol in enumerate(market.symbols):
        bars = market.bars[symbol]
        table = build_signal_table(bars, agents, history_bars, "fast")
        votes = np.where(table.abstained, 0.0, table.value * table.confidence)
        votes[~table.valid] = np.nan
        cube[np.searchsorted(market.timeline, bars.timestamps), :, s] = votes
    return cube


def _prices(market: MarketFrame, history_bars: int) -> tuple[np.ndarray, np.ndarray]:
    n = market.timeline.size
    close = np.full((n, len(market.symbols)), np.nan)
    open_ = np.full((n, len(market.symbols)), np.nan)
    for s, symbol in enumerate(market.symbols):
        bars = market.bars[symbol]
        at = np.searchsorted(market.timeline, bars.timestamps)
        valid = window_validity(bars, history_bars)
        close[at[valid], s] = bars.close[valid]
        open_[at[valid], s] = bars.open[valid]
    return close, open_


def _variant_cube(market: MarketFrame, variants: Sequence[Variant], history_bars: int, rows: slice) -> np.ndarray:
    n = market.timeline.size
    cube = np.full((n, len(variants), len(market.symbols)), np.nan)
    for s, symbol in enumerate(market.symbols):
        bars = market.bars[symbol]
        at = np.searchsorted(market.timeline, bars.timestamps)
        for k, variant in enumerate(variants):
            cube[at, k, s] = variant_votes(variant, bars, history_bars)
    return cube[rows]


@dataclass
class Discovery:
    """What the loop's generations decided: every generation, every variant tried, the members' solo-book
    streams over every row (net, gross), and the pool in force from each generation's first row on."""

    generations: list[Generation]
    variants: dict[str, Variant]
    streams: dict[str, tuple[np.ndarray, np.ndarray]]
    joined: list[tuple[int, list[str]]]  # (first row in force, members)
    history_bars: int

    @property
    def trials(self) -> int:
        return self.generations[-1].trials if self.generations else 0

    def members_at(self, day_ms: int) -> list[str]:
        """The pool in force on ``day_ms``: the members after the newest generation on or before it."""
        current: list[str] = []
        for generation in self.generations:
            if generation.day_ms > day_ms:
                break
            current = generation.pool
        return current

    def promoted(self) -> list[Variant]:
        """Every variant that was ever a member, in order of first promotion."""
        names = dict.fromkeys(c.name for g in self.generations for c in g.changes if c.action == "promote")
        return [self.variants[name] for name in names]

    def promotions(self) -> list[dict[str, Any]]:
        """Every promotion and retirement in order: day, variant, what it is, reason."""
        return promotion_rows(self.generations, self.variants)


def loop_history_bars(base_agents: Sequence[Agent]) -> int:
    """The window the loop reads: every variant within the bounds, and the base agents, can vote on it."""
    return max(_max_family_bars(), max((a.min_bars for a in base_agents), default=0) + 5)


def run_discovery(market: MarketFrame, base_agents: Sequence[Agent], book: BookRules, loop: LoopConfig) -> Discovery:
    """The generations over the whole market (steps 1 to 3 of the module docstring); each reads only the
    bars closed before its day."""
    history = loop_history_bars(base_agents)
    step = market.step_ms
    timeline = market.timeline
    if timeline.size < history + 2:
        raise WalkForwardInputError(f"{timeline.size} bars are too few for the loop's {history}-bar windows")
    close, open_ = _prices(market, history)
    closed_by = timeline[1:] + step  # row t's return is known when bar t+1 has closed

    first_voted = int(np.argmax(np.isfinite(close).any(axis=1) & (np.arange(timeline.size) >= history - 1)))
    start_day = (int(timeline[first_voted]) // DAY_MS + loop.lookback_days + 1) * DAY_MS
    last_day = int(timeline[-1]) // DAY_MS * DAY_MS
    days = list(range(start_day, last_day + 1, loop.every_days * DAY_MS))
    if not days:
        raise WalkForwardInputError(f"the data span no day after {loop.lookback_days} days of voted bars")

    tried: set[str] = set()
    pool: dict[str, float] = {}
    members: dict[str, Variant] = {}
    known: dict[str, Variant] = {}
    streams: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # member -> (net, gross) over every row
    joined: list[tuple[int, list[str]]] = []  # (first row in force, members)
    generations: list[Generation] = []
    periods = periods_per_year(market.timeframe)
    for day in days:
        hi = int(np.searchsorted(timeline, day - step, side="right")) - 1  # the newest bar closed by `day`
        lo = int(np.searchsorted(timeline, day - loop.lookback_days * DAY_MS))
        if hi - lo < 48:
            continue
        candidates = random_variants(loop.candidates, seed=loop.seed * 1_000_003 + day // DAY_MS)
        for k, name in enumerate(sorted(members)):
            for j in range(loop.mutations):
                candidates.append(mutate(members[name], seed=loop.seed * 7919 + day // DAY_MS + 31 * k + j))
        unique = list({v.name: v for v in candidates if v.name not in members}.values())
        tried.update(v.name for v in unique)
        known.update({v.name: v for v in unique})
        window = slice(lo, hi + 1)
        cube = _variant_cube(market, unique, history, window)
        returns = np.nan_to_num(simulate_books(cube, close[window], open_[window], book))
        figures = stream_figures(returns, periods)
        # The variance of the trials' Sharpe ratios under the null (no skill): the estimation variance of a
        # per-period Sharpe ratio near 0 over these returns, 1 / (T - 1). The paper's cross-sectional
        # variance of the tried Sharpe ratios also counts the real spread between families (trend followers
        # against faders on a trending market), which raises the bar with the very skill it should find.
        variance = 1.0 / (returns.shape[0] - 1)
        pbo = pbo_cscv(returns, blocks=loop.pbo_blocks)["pbo"] if returns.shape[0] >= 2 * loop.pbo_blocks else None
        evaluations = [
            Evaluation(
                v.name, float(np.nan_to_num(figures["sharpe"][k])),
                deflated_sharpe(float(figures["sharpe_per_period"][k]), returns.shape[0], float(figures["skew"][k]), float(figures["kurtosis"][k]), len(tried), variance),
                int(figures["holding_periods"][k]), len(tried), 1.0 if pbo is None else pbo,
            )
            for k, v in enumerate(unique)
        ]
        recent_lo = int(np.searchsorted(timeline, day - loop.rules.decay_days * DAY_MS))
        known_rows = slice(recent_lo, int(np.searchsorted(closed_by, day, side="right")))
        recent = {}
        for name in members:
            piece = streams[name][0][known_rows]
            recent[name] = float(stream_figures(piece[:, None], periods)["sharpe"][0]) if piece.size > 2 else None
        changes = retirement_decisions(recent, loop.rules)
        for change in changes:
            pool.pop(change.name, None)
            members.pop(change.name, None)
        promoted = promotion_decisions(pool, evaluations, loop.rules)
        changes += promoted
        for change in promoted:
            if change.action == "retire":
                pool.pop(change.name, None)
                members.pop(change.name, None)
            elif change.action == "promote":
                pool[change.name] = next(e.deflated_sharpe for e in evaluations if e.name == change.name)
                members[change.name] = known[change.name]
                if change.name not in streams:
                    full = _variant_cube(market, [known[change.name]], history, slice(None))
                    streams[change.name] = (
                        simulate_books(full, close, open_, book)[:, 0],
                        simulate_books(full, close, open_, book, costs=False)[:, 0],
                    )
        generations.append(Generation(day, len(tried), pbo, evaluations, changes, sorted(members)))
        # in force for the positions held from the first bar closing at or after `day`
        joined.append((int(np.searchsorted(timeline + step, day)), sorted(members)))
    return Discovery(generations, known, streams, joined, history)


def run_adaptive_loop(market: MarketFrame, base_agents: Sequence[Agent], book: BookRules, loop: LoopConfig) -> LoopRun:
    """The loop over the whole market (see the module docstring)."""
    history = loop_history_bars(base_agents)
    if market.timeline.size < history + 2:
        raise WalkForwardInputError(f"{market.timeline.size} bars are too few for the loop's {history}-bar windows")
    close, open_ = _prices(market, history)
    base_cube = _base_cube(market, base_agents, history)
    voting = [k for k in range(len(base_agents)) if np.nanmax(np.abs(np.nan_to_num(base_cube[:, k]))) > 0]
    if not voting:
        raise WalkForwardInputError("no base agent votes on these bars")
    base_cube = base_cube[:, voting]
    base_names = tuple(base_agents[k].name for k in voting)
    base_net = simulate_books(base_cube, close, open_, book)
    base_gross = simulate_books(base_cube, close, open_, book, costs=False)
    discovery = run_discovery(market, base_agents, book, loop)
    generations, known, streams, joined = discovery.generations, discovery.variants, discovery.streams, discovery.joined
    rows = market.timeline.size - 1
    timeline = market.timeline

    adaptive = np.zeros(rows)
    adaptive_gross = np.zeros(rows)
    baseline = np.nan_to_num(base_net).mean(axis=1)
    baseline_gross = np.nan_to_num(base_gross).mean(axis=1)
    adaptive[:] = baseline
    adaptive_gross[:] = baseline_gross
    for i, (first, names) in enumerate(joined):
        until = joined[i + 1][0] if i + 1 < len(joined) else rows
        if not names or first >= rows:
            continue
        span = slice(first, until)
        sleeves = [np.nan_to_num(base_net[span])] + [np.nan_to_num(streams[n][0][span])[:, None] for n in names]
        gross = [np.nan_to_num(base_gross[span])] + [np.nan_to_num(streams[n][1][span])[:, None] for n in names]
        adaptive[span] = np.hstack(sleeves).mean(axis=1)
        adaptive_gross[span] = np.hstack(gross).mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        hold = np.nan_to_num(np.nanmean(close[1:] / close[:-1] - 1.0, axis=1))
    first_row = joined[0][0] if joined else rows
    return LoopRun(timeline[:-1], adaptive, baseline, adaptive_gross, baseline_gross, hold, first_row, generations, known, base_names)


def loop_summary(run: LoopRun, periods: float, block: int = 168) -> dict[str, Any]:
    """Out-of-sample figures from the first generation on: Sharpe net and gross of the loop, the day-1
    system and buy-and-hold, the loop's Sharpe difference to the day-1 system with its 95% block-bootstrap
    interval, the last generation's DSR of the best candidate, its PBO, and the trial count."""
    from tradepipe.core.metrics import summarize

    oos = slice(run.first_row, None)

    def sharpe(x: np.ndarray) -> float | None:
        return summarize(x[oos], periods)["sharpe"] if x[oos].size > 2 else None

    def total(x: np.ndarray) -> float:
        return float(np.prod(1.0 + x[oos]) - 1.0)

    comparison = sharpe_difference_ci(run.adaptive[oos], run.baseline[oos], block, periods) if run.adaptive[oos].size > 2 * block else {"sharpe_diff_vs_equal": None, "ci95": None}
    promoted = [e for g in run.generations for c in g.changes if c.action == "promote" for e in g.evaluations if e.name == c.name]
    last = run.generations[-1] if run.generations else None
    best = max(last.evaluations, key=lambda e: e.deflated_sharpe) if last and last.evaluations else None
    return {
        "oos_bars": int(run.adaptive[oos].size),
        "adaptive": {"sharpe": sharpe(run.adaptive), "gross_sharpe": sharpe(run.adaptive_gross), "total_return": total(run.adaptive)},
        "equal_weight": {"sharpe": sharpe(run.baseline), "gross_sharpe": sharpe(run.baseline_gross), "total_return": total(run.baseline)},
        "buy_and_hold": {"sharpe": sharpe(run.buy_and_hold), "total_return": total(run.buy_and_hold)},
        "sharpe_diff_vs_equal": comparison.get("sharpe_diff_vs_equal"),
        "ci95": comparison.get("ci95"),
        "trials": run.trials,
        "deflated_sharpe": max((e.deflated_sharpe for e in promoted), default=best.deflated_sharpe if best else None),
        "pbo": last.pbo if last else None,
        "generations": len(run.generations),
        "promotions": run.promotions(),
    }


__all__ = ["Discovery", "Generation", "LoopConfig", "LoopRun", "loop_history_bars", "loop_summary", "promotion_rows", "run_adaptive_loop", "run_discovery"]
