"""The self-improvement loop as a walk-forward strategy: the ``adaptive:loop`` book.

1. **Discovery** (``research.adaptive.run_discovery``): every ``every_days`` days ``d``, using only the
   bars closed before ``d``, a generation proposes variants (``research.variants``), evaluates each on its
   traded solo-book stream with the live book's rules and fees (``research.evaluation``), deflates its
   Sharpe by every variant tried so far, measures the PBO of picking the best (``research.selection``),
   retires decayed members and promotes by the documented ``PoolRules``.
2. **Trading** (``research.engine.run_walk_forward``, the same engine and cycle as every other book): the
   pool is the enabled base agents plus the members in force. Each UTC day the live weight decision runs
   ``hedge`` over the pool (``core.weighting.decide_weights`` on the window's traded streams, then the
   ``weight_problems`` publication check); an agent outside the pool has weight 0, so it neither votes
   nor trades. A member promoted at ``d`` can weigh from ``d`` on; a retired one drops to 0 that day.

The loop's book is a separate engine run over exactly the bars of the main run: its agents are the base
agents plus every variant the discovery ever promoted (each weightless until promoted), and its window
is long enough for the longest variant within the bounds (``adaptive.loop_history_bars``), as a live
book whose pool holds such a member would fetch. The base agents therefore vote on that longer window
(their indicators are seeded earlier), so before any promotion the loop's book is ``adaptive:hedge`` on
that window, not bar for bar the main run's hedge book. ``equal_weight`` (the day-1 system) is the main
run's book and keeps its meaning.

No look-ahead: the discovery at ``d`` reads only bars closed before ``d`` and the decision at ``d`` only
the window before ``d``; ``tests/research/test_pool_book.py`` cuts the market at a day and finds the
same promotions and the same book before it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tradepipe.core.agents import get_agents
from tradepipe.core.timeframes import iso_utc
from tradepipe.research.adaptive import Discovery, Generation, LoopConfig, run_discovery
from tradepipe.research.data import MarketFrame
from tradepipe.research.engine import (
    DayInputs,
    EngineConfig,
    EngineRun,
    PolicyDecision,
    Progress,
    StrategySpec,
    WeightPolicy,
    run_walk_forward,
)
from tradepipe.research.signals import SignalMode

LOOP_METHOD = "loop"
LOOP_KEY = f"adaptive:{LOOP_METHOD}"
POOL_WEIGHTING = "hedge"  # the learner that weights the pool, as agent_weights weights the agents


@dataclass(frozen=True)
class PoolRun:
    """The loop's engine run and what its discovery decided."""

    run: EngineRun
    discovery: Discovery
    base_agents: tuple[str, ...]


def pool_weight_policy(config: EngineConfig, base_agents: Sequence[str], discovery: Discovery) -> WeightPolicy:
    """Hedge over the pool in force on the day (base agents + members); every other agent weighs 0."""
    from tradepipe.core.weighting import decide_weights, weight_problems

    changes_on = {g.day_ms: g for g in discovery.generations}

    def decide(day: DayInputs, current: Mapping[str, float], method: str) -> PolicyDecision:
        members = discovery.members_at(day.day_ms)
        pool = [*base_agents, *members]
        note = _pool_note(changes_on.get(day.day_ms), members)
        decision = decide_weights(
            pool, day.performance, day.streams, {a: current.get(a, 0.0) for a in pool},
            method=POOL_WEIGHTING, min_weight=config.min_weight, max_weight=config.max_weight,
            min_signals=config.min_signals, min_sharpe=config.min_sharpe, periods_per_year=config.periods_per_year,
            risk_free=config.risk_free, learning_rate=config.learning_rate, min_days=config.min_metric_days,
        )
        outside = [a for a in config.agents if a not in pool and current.get(a, 0.0) > 0]
        if decision.updated:
            problems = weight_problems(decision.weights, set(pool), config.min_weight, config.max_weight)
            if not problems:
                return PolicyDecision({a: float(decision.weights.get(a, 0.0)) for a in config.agents}, True, decision.reason + note)
            reason = f"kept previous weights: not publishable: {'; '.join(problems)}"
        else:
            reason = decision.reason
        if outside:  # a retired member stops weighing today even when the learner keeps the weights
            kept = {a: (current.get(a, 0.0) if a in pool else 0.0) for a in config.agents}
            total = sum(kept.values())
            weights = {a: w / total for a, w in kept.items()} if total > 0 else {a: (1.0 / len(pool) if a in pool else 0.0) for a in config.agents}
            return PolicyDecision(weights, True, f"{reason}; dropped {', '.join(outside)} (left the pool){note}")
        return PolicyDecision(dict(current), False, reason + note)

    return decide


def _pool_note(generation: Generation | None, members: Sequence[str]) -> str:
    if generation is None:
        return ""
    moves = [f"{c.action}d {c.name}" for c in generation.changes if c.action in ("promote", "retire")]
    return f"; generation: {', '.join(moves) or 'no change'}; pool members: {', '.join(members) or 'none'}"


def run_pool_book(
    market: MarketFrame,
    config: EngineConfig,
    loop: LoopConfig,
    bars: np.ndarray,
    *,
    signal_mode: SignalMode = "fast",
    progress: Callable[[Progress], None] | None = None,
    progress_every_s: float = 2.0,
    checkpoint: Path | None = None,
    resume: bool = False,
) -> PoolRun:
    """Discovery over ``market``, then the ``adaptive:loop`` book through the engine on ``bars``."""
    base = tuple(config.agents)
    discovery = run_discovery(market, get_agents(list(base)), config.book_rules, loop)
    variants = discovery.promoted()
    agents = [*get_agents(list(base)), *(v.agent() for v in variants)]
    loop_config = replace(
        config, agents=tuple(a.name for a in agents), history_bars=max(config.history_bars, discovery.history_bars),
        default_weights={a: float(config.default_weights.get(a, 0.0)) for a in base},
    )
    spec = StrategySpec(LOOP_KEY, dict(loop_config.default_weights), LOOP_METHOD)
    run = run_walk_forward(
        market, loop_config, [spec], weight_policy=pool_weight_policy(loop_config, base, discovery), signal_mode=signal_mode,
        progress=progress, progress_every_s=progress_every_s, checkpoint=checkpoint, resume=resume, agents=agents, bars=bars,
    )
    return PoolRun(run, discovery, base)


def merge_runs(main: EngineRun, pool: PoolRun) -> EngineRun:
    """The main run with the loop's book added (the same bars; the main run's agents and settings)."""
    if not np.array_equal(main.bars, pool.run.bars):
        raise ValueError("the loop's book traded other bars than the main run")
    notes = list(main.notes) + [n for n in pool.run.notes if n not in main.notes]
    return replace(
        main, books={**main.books, **pool.run.books}, notes=notes,
        seconds=main.seconds + pool.run.seconds, signal_seconds=main.signal_seconds + pool.run.signal_seconds,
    )


def loop_record(pool: PoolRun) -> dict[str, Any]:
    """What summary.json says of the loop beyond its figures: trials, the generations' PBO, every
    promotion and retirement, and the pool after each generation that changed it."""
    discovery = pool.discovery
    pbos = [g.pbo for g in discovery.generations if g.pbo is not None]
    pool_over_time = []
    previous: list[str] | None = None
    for generation in discovery.generations:
        if generation.pool != previous:
            pool_over_time.append({
                "day": iso_utc(generation.day_ms)[:10], "members": list(generation.pool),
                "variants": [discovery.variants[name].describe() for name in generation.pool],
            })
            previous = generation.pool
    promotions = [
        {**{k: v for k, v in row.items() if k != "day_ms"}, "day": iso_utc(row["day_ms"])[:10]}
        for row in discovery.promotions()
    ]
    promoted_dsr = [e.deflated_sharpe for g in discovery.generations for c in g.changes if c.action == "promote" for e in g.evaluations if e.name == c.name]
    return {
        "trials": discovery.trials,
        "pbo": float(np.median(pbos)) if pbos else None,
        "generations": len(discovery.generations),
        "best_promoted_dsr": max(promoted_dsr) if promoted_dsr else None,
        "promotions": promotions,
        "pool": pool_over_time,
        "history_bars": pool.run.config.history_bars,
        "base_agents": list(pool.base_agents),
    }


__all__ = ["LOOP_KEY", "LOOP_METHOD", "PoolRun", "loop_record", "merge_runs", "pool_weight_policy", "run_pool_book"]
