"""Weighted vote of the agents for one symbol, and the position it asks for.

Decisions (attribution and the optimiser rely on them):

* **Effective vote = value x confidence.** An agent that says "+0.8, but I am 25% sure"
  moves the ensemble like "+0.2, sure". Confidence thus scales an agent's say without
  changing anyone's weight, and ``|value x confidence| <= 1`` keeps the score in [-1, 1].
* **Voters** are the agents that did not abstain and have a weight > 0. Their weights are
  renormalised to sum to 1, so an abstaining agent's weight is shared among the others in
  proportion to their own weights (the ensemble is not diluted by silence):
  ``contributions[a] = w_a * value_a * confidence_a / sum(w of voters)`` and
  ``score = sum(contributions)`` (computed from the contributions, so they sum to the
  score up to float rounding).
* An agent **missing from ``weights`` has weight 0**: the optimiser's output decides who
  trades, and a new agent earns weight before it moves money. Such an agent (and one with
  an explicit 0) is neither a voter nor an abstainer and has no contribution.
* No voter (everyone abstained or unweighted): score 0, empty contributions.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from tradepipe.core.types import EnsembleDecision, Signal

__all__ = ["DEFAULT_DEADBAND", "book_target", "combine", "effective_vote", "target_fraction"]

DEFAULT_DEADBAND = 0.05


def effective_vote(signal: Signal) -> float:
    """What one signal contributes before weighting: ``value * confidence`` (0 if abstained)."""
    return 0.0 if signal.abstained else signal.value * signal.confidence


def _check_signals(signals: Sequence[Signal]) -> str:
    """The signals' symbol; ``ValueError`` unless they are one symbol's, one per agent, finite. One pass
    over sound signals (every cycle combines every symbol); a problem is named by :func:`_check_rule_by_rule`."""
    if not signals:
        raise ValueError("combine() needs at least one signal (it names the symbol)")
    symbol = signals[0].symbol
    agents: set[str] = set()
    isfinite = math.isfinite
    for signal in signals:
        if signal.symbol != symbol or signal.agent in agents or not (isfinite(signal.value) and isfinite(signal.confidence)):
            return _check_rule_by_rule(signals)
        agents.add(signal.agent)
    return symbol


def _check_rule_by_rule(signals: Sequence[Signal]) -> str:
    """The whole check, rule by rule, so the first problem in this order is the one raised: several
    symbols, an agent twice, a non-finite value."""
    symbols = {signal.symbol for signal in signals}
    if len(symbols) != 1:
        raise ValueError(f"combine() is per symbol, got signals for {sorted(symbols)}")
    agents = [signal.agent for signal in signals]
    if len(set(agents)) != len(agents):
        duplicates = sorted({agent for agent in agents if agents.count(agent) > 1})
        raise ValueError(f"more than one signal from agent(s) {duplicates}")
    for signal in signals:
        if not (math.isfinite(signal.value) and math.isfinite(signal.confidence)):
            raise ValueError(f"non-finite signal from {signal.agent!r}: value={signal.value}, confidence={signal.confidence}")
    return signals[0].symbol


def _weight(weights: Mapping[str, float], agent: str) -> float:
    weight = float(weights.get(agent, 0.0))
    if not (math.isfinite(weight) and weight >= 0.0):
        raise ValueError(f"weight of agent {agent!r} must be finite and >= 0, got {weight}")
    return weight


def combine(signals: Sequence[Signal], weights: Mapping[str, float]) -> EnsembleDecision:
    """The weighted ensemble decision for one symbol (see the module docstring for the rules).

    Raises ``ValueError`` for no signals, signals of several symbols, two signals from one
    agent, a non-finite signal, or a negative / non-finite weight.
    """
    symbol = _check_signals(signals)
    abstaining: list[str] = []
    voting: list[tuple[Signal, float]] = []
    for signal in signals:
        if signal.abstained:
            abstaining.append(signal.agent)
            continue
        weight = _weight(weights, signal.agent)
        if weight > 0.0:
            voting.append((signal, weight))
    abstainers = tuple(abstaining)
    total = math.fsum(weight for _, weight in voting)
    contributions = {signal.agent: weight * effective_vote(signal) / total for signal, weight in voting}
    return EnsembleDecision(
        symbol=symbol,
        score=math.fsum(contributions.values()),
        contributions=contributions,
        voters=tuple(signal.agent for signal, _ in voting),
        abstainers=abstainers,
    )


def target_fraction(
    score: float,
    max_position_fraction: float,
    allow_short: bool = False,
    deadband: float = DEFAULT_DEADBAND,
) -> float:
    """Target position as a signed fraction of equity for an ensemble ``score`` in [-1, 1].

    ``|score| <= deadband`` gives 0, so a score wobbling around zero does not trade back and
    forth. Beyond it the fraction rises linearly from 0 at the deadband to
    ``max_position_fraction`` at ``|score| = 1`` (continuous: no jump at the edge):
    ``sign(score) * (|score| - deadband) / (1 - deadband) * max_position_fraction``.
    Spot is long-only by default: a negative score means "hold nothing" (0), not a short,
    unless ``allow_short``. Scores outside [-1, 1] are clipped.
    """
    if not math.isfinite(score):
        raise ValueError(f"score must be finite, got {score}")
    if not (math.isfinite(max_position_fraction) and max_position_fraction >= 0.0):
        raise ValueError(f"max_position_fraction must be finite and >= 0, got {max_position_fraction}")
    if not 0.0 <= deadband < 1.0:
        raise ValueError(f"deadband must be in [0, 1), got {deadband}")
    strength = min(1.0, abs(score))
    if strength <= deadband or (score < 0.0 and not allow_short):
        return 0.0
    fraction = (strength - deadband) / (1.0 - deadband) * max_position_fraction
    return math.copysign(fraction, score)


def book_target(
    score: float,
    max_position_fraction: float,
    allow_short: bool,
    held_sign: int,
    entry_hysteresis: float = 0.0,
    deadband: float = DEFAULT_DEADBAND,
) -> float:
    """``target_fraction`` with opening hysteresis: a turnover control on top of the dead band.

    Keeping (or resizing) a position in the direction already held (``held_sign``: +1 long, -1
    short, 0 flat) needs ``|score| > deadband``; opening one, from flat or through a flip, needs
    ``|score| > deadband + entry_hysteresis``. A score that hovers near the dead band's edge
    therefore stops opening and closing a position every bar. ``entry_hysteresis=0`` is
    ``target_fraction`` exactly.
    """
    target = target_fraction(score, max_position_fraction, allow_short=allow_short, deadband=deadband)
    opening = target != 0.0 and math.copysign(1, target) != held_sign
    if opening and min(1.0, abs(score)) <= deadband + entry_hysteresis:
        return 0.0
    return target
