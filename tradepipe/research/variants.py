"""Strategy variants: agent families with typed, bounded parameters, and a generator of candidates.

A *family* is an agent whose reading of the market is set by parameters (lookbacks, thresholds,
scales); a *variant* is a family plus one parameter set. Each family has two forms, proven equal by
``tests/research/test_variants.py`` on real candles:

* ``variant.agent()``: a ``core.agents.Agent`` (per bar, on the window the live cycle gives it);
* ``variant_votes(variant, bars)``: the same vote at every row of a symbol, in whole-array numpy.

Every family reads only its own last ``min_bars`` rows with window-local arithmetic (sums, ranges,
standard deviations, no recursive smoothing), so the whole-array form equals the per-bar one for any
window at least ``min_bars`` long. Volatility is the population standard deviation of the log returns
over ``vol_window`` bars: a horizon-free scale, so one threshold reads the same at 1 hour and 6 weeks.

Families (bars are the data's timeframe: on 1h bars 2 .. 1008 spans two hours to six weeks):

======================  ==============================================================================
``tsmom``               time-series momentum: ``tanh(log(c_t / c_{t-lookback}) / (vol sqrt(lookback) scale))``
``sma_cross``           moving-average gap: ``tanh((sma_fast / sma_slow - 1) / (vol sqrt(slow) scale))``
``bollinger_reversion`` ``core.agents.mean_reversion`` with its period and width free
                        (period 20, width 2 is that agent, vote for vote)
``donchian_breakout``   close beyond the previous ``period`` bars' high (low): +1 (-1); inside the channel
                        a lean of at most ``lean`` towards the nearer edge
======================  ==============================================================================

A bad parameter (unknown name, wrong type, outside its bounds, fast >= slow) or an unknown family raises
:class:`VariantError` with one line naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tradepipe.core import agents as ag
from tradepipe.core.agents import Agent, Vote
from tradepipe.core.types import AgentContext, BarHistory
from tradepipe.research.data import SymbolBars
from tradepipe.research.signals import window_validity

ORIGINS = ("grid", "random", "mutation", "manual")


class VariantError(ValueError):
    """A variant that cannot be built: unknown family or a parameter outside its bounds (one line)."""


@dataclass(frozen=True)
class Parameter:
    """One typed, bounded parameter: ``kind`` int or float, inclusive bounds, ``log``: sample on a log scale."""

    name: str
    kind: type
    low: float
    high: float
    log: bool = False
    doc: str = ""

    def check(self, family: str, value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise VariantError(f"{family}.{self.name} must be a number, got {value!r}")
        if self.kind is int and float(value) != int(value):
            raise VariantError(f"{family}.{self.name} must be an integer, got {value!r}")
        number = int(value) if self.kind is int else float(value)
        if not (math.isfinite(number) and self.low <= number <= self.high):
            raise VariantError(f"{family}.{self.name}={value!r} is outside its bounds [{self.low:g}, {self.high:g}]")
        return number


@dataclass(frozen=True)
class Family:
    name: str
    parameters: tuple[Parameter, ...]
    min_bars: Callable[[Mapping[str, Any]], int]
    per_bar: Callable[[BarHistory, Mapping[str, Any]], Vote]
    whole: Callable[[SymbolBars, Mapping[str, Any]], tuple[np.ndarray, np.ndarray]]
    horizon: Callable[[Mapping[str, Any]], int]  # the bars the family's reading spans (for reports)
    constraint: Callable[[Mapping[str, Any]], str | None] = lambda p: None
    description: str = ""

    def parameter(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)


FAMILIES: dict[str, Family] = {}


@dataclass(frozen=True)
class Variant:
    """A family plus a checked parameter set. ``name`` is stable: family + short hash of the parameters."""

    family: str
    params: Mapping[str, Any]

    @property
    def name(self) -> str:
        digest = hashlib.sha256(json.dumps(dict(sorted(self.params.items())), sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.family}_{digest}"

    @property
    def spec(self) -> Family:
        return FAMILIES[self.family]

    @property
    def min_bars(self) -> int:
        return self.spec.min_bars(self.params)

    @property
    def horizon_bars(self) -> int:
        return self.spec.horizon(self.params)

    def agent(self) -> VariantAgent:
        """The per-bar agent (not registered in ``core.agents.AGENTS``: variants come and go), which also
        carries the whole-array form the walk-forward's signal table uses."""
        family, params = self.spec, dict(self.params)

        def vote(history: BarHistory, context: AgentContext) -> Vote:
            return family.per_bar(history, params)

        return VariantAgent(self.name, self.min_bars, vote, family.description, self)

    def describe(self) -> str:
        return f"{self.family}(" + ", ".join(f"{k}={v:g}" for k, v in sorted(self.params.items())) + ")"


@dataclass(frozen=True)
class VariantAgent(Agent):
    """A variant's ``core.agents.Agent``, plus :meth:`whole_votes` (``research.signals`` fills a
    walk-forward's signal table with it instead of calling the agent per bar)."""

    variant: Variant | None = None

    def whole_votes(self, bars: SymbolBars, history_bars: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Value, confidence and abstained at every row of ``bars``, as the agent called on the window of
        the newest ``history_bars`` rows there gives them: it abstains on a window shorter than
        ``min_bars`` and on a non-finite vote, and clips the vote into range."""
        assert self.variant is not None
        value, confidence = self.variant.spec.whole(bars, self.variant.params)
        rows = np.arange(len(bars))
        abstained = (np.minimum(rows + 1, history_bars) < self.min_bars) | ~(np.isfinite(value) & np.isfinite(confidence))
        value = np.where(abstained, 0.0, np.clip(np.nan_to_num(value), -1.0, 1.0))
        confidence = np.where(abstained, 0.0, np.clip(np.nan_to_num(confidence), 0.0, 1.0))
        return value, confidence, abstained


def make_variant(family: str, params: Mapping[str, Any]) -> Variant:
    """A checked variant: unknown family, unknown / missing / out-of-bounds parameter -> ``VariantError``."""
    spec = FAMILIES.get(family)
    if spec is None:
        raise VariantError(f"unknown family {family!r}; known families: {', '.join(sorted(FAMILIES))}")
    names = {p.name for p in spec.parameters}
    unknown = sorted(set(params) - names)
    if unknown:
        raise VariantError(f"{family}: unknown parameter(s) {', '.join(unknown)}; parameters: {', '.join(sorted(names))}")
    missing = sorted(names - set(params))
    if missing:
        raise VariantError(f"{family}: missing parameter(s) {', '.join(missing)}")
    checked = {p.name: p.check(family, params[p.name]) for p in spec.parameters}
    problem = spec.constraint(checked)
    if problem:
        raise VariantError(f"{family}: {problem}")
    return Variant(family, checked)


# --------------------------------------------------------------------------- shared window-local pieces


def _log_returns(close: np.ndarray) -> np.ndarray:
    out = np.full(close.shape, np.nan)
    out[1:] = np.log(close[1:] / close[:-1])
    return out


def _window_vol(close: np.ndarray, n: int) -> float:
    """Population std of the last ``n`` log returns of a window (needs ``n + 1`` closes)."""
    return float(np.std(np.log(close[-n:] / close[-n - 1 : -1])))


def _rolling_vol(close: np.ndarray, n: int) -> np.ndarray:
    """``_window_vol`` at every row (NaN before ``n`` returns exist)."""
    return pd.Series(_log_returns(close)).rolling(n).std(ddof=0).to_numpy()


def _rolling_mean(values: np.ndarray, n: int) -> np.ndarray:
    return pd.Series(values).rolling(n).mean().to_numpy()


def _scaled_tanh(x: np.ndarray | float, scale: np.ndarray | float) -> Any:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.tanh(np.asarray(x) / np.asarray(scale))


def _flat(vol: Any, close: Any) -> Any:
    # Below this the market is flat to rounding: no vote (core.agents' own tolerance).
    return ~(np.asarray(vol) > ag.FLAT_TOLERANCE)


# --------------------------------------------------------------------------- tsmom


def _tsmom_bars(p: Mapping[str, Any]) -> int:
    return max(int(p["lookback"]), int(p["vol_window"])) + 1


def _tsmom_bar(history: BarHistory, p: Mapping[str, Any]) -> Vote:
    close = history.close
    lookback, vol_n = int(p["lookback"]), int(p["vol_window"])
    vol = _window_vol(close, vol_n)
    if _flat(vol, close[-1]):
        return Vote(0.0, 0.0, ag.FLAT_REASON)
    move = math.log(close[-1] / close[-1 - lookback])
    value = math.tanh(move / (vol * math.sqrt(lookback) * p["scale"]))
    return Vote(value, 1.0, f"{lookback}-bar log return {move:+.4f} ({move / (vol * math.sqrt(lookback)):+.2f} sd)")


def _tsmom_whole(bars: SymbolBars, p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    close = bars.close
    lookback, vol_n = int(p["lookback"]), int(p["vol_window"])
    vol = _rolling_vol(close, vol_n)
    move = np.full(close.shape, np.nan)
    move[lookback:] = np.log(close[lookback:] / close[:-lookback])
    flat = _flat(vol, close)
    value = np.where(flat, 0.0, _scaled_tanh(move, vol * math.sqrt(lookback) * p["scale"]))
    return value, np.where(flat, 0.0, 1.0)


# --------------------------------------------------------------------------- sma_cross


def _sma_bars(p: Mapping[str, Any]) -> int:
    return max(int(p["slow"]), int(p["vol_window"]) + 1)


def _sma_bar(history: BarHistory, p: Mapping[str, Any]) -> Vote:
    close = history.close
    fast, slow = int(p["fast"]), int(p["slow"])
    vol = _window_vol(close, int(p["vol_window"]))
    if _flat(vol, close[-1]):
        return Vote(0.0, 0.0, ag.FLAT_REASON)
    gap = float(np.mean(close[-fast:])) / float(np.mean(close[-slow:])) - 1.0
    value = math.tanh(gap / (vol * math.sqrt(slow) * p["scale"]))
    return Vote(value, 1.0, f"SMA{fast} {'above' if gap > 0 else 'below'} SMA{slow} by {gap:+.2%}")


def _sma_whole(bars: SymbolBars, p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    close = bars.close
    fast, slow = int(p["fast"]), int(p["slow"])
    vol = _rolling_vol(close, int(p["vol_window"]))
    gap = _rolling_mean(close, fast) / _rolling_mean(close, slow) - 1.0
    flat = _flat(vol, close)
    value = np.where(flat, 0.0, _scaled_tanh(gap, vol * math.sqrt(slow) * p["scale"]))
    return value, np.where(flat, 0.0, 1.0)


def _sma_constraint(p: Mapping[str, Any]) -> str | None:
    return None if p["fast"] < p["slow"] else f"fast={p['fast']} must be below slow={p['slow']}"


# --------------------------------------------------------------------------- bollinger_reversion


def _boll_bar(history: BarHistory, p: Mapping[str, Any]) -> Vote:
    period, width = int(p["period"]), float(p["width"])
    last = history.close[-period:]
    mean, std = float(np.mean(last)), float(np.std(last))
    z = 0.0 if std <= 1e-12 * abs(mean) else (float(last[-1]) - mean) / std
    if z == 0.0 and np.ptp(last) == 0.0:
        return Vote(0.0, 0.0, f"flat prices: {period}-bar window is constant")
    return Vote(max(-1.0, min(1.0, -z / width)), min(1.0, abs(z) / width), f"Bollinger({period}) z {z:+.2f}")


def _boll_whole(bars: SymbolBars, p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    period, width = int(p["period"]), float(p["width"])
    close = bars.close
    series = pd.Series(close).rolling(period)
    mean, std = series.mean().to_numpy(), series.std(ddof=0).to_numpy()
    ptp = series.max().to_numpy() - series.min().to_numpy()
    flat_band = std <= 1e-12 * np.abs(mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(flat_band, 0.0, (close - mean) / std)
    flat = (z == 0.0) & (ptp == 0.0)
    return np.where(flat, 0.0, -z / width), np.where(flat, 0.0, np.minimum(1.0, np.abs(z) / width))


# --------------------------------------------------------------------------- donchian_breakout


def _donchian_bar(history: BarHistory, p: Mapping[str, Any]) -> Vote:
    period, lean = int(p["period"]), float(p["lean"])
    close = float(history.close[-1])
    upper = float(np.max(history.high[-period - 1 : -1]))
    lower = float(np.min(history.low[-period - 1 : -1]))
    if not upper - lower > ag.FLAT_TOLERANCE * abs(close):
        return Vote(0.0, 0.0, ag.FLAT_REASON)
    if close > upper:
        return Vote(1.0, 1.0, f"close above the {period}-bar high {upper:.6g}")
    if close < lower:
        return Vote(-1.0, 1.0, f"close below the {period}-bar low {lower:.6g}")
    position = (close - lower) / (upper - lower)
    return Vote(lean * (2.0 * position - 1.0), 1.0, f"inside the {period}-bar channel at {position:.0%}")


def _donchian_whole(bars: SymbolBars, p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    period, lean = int(p["period"]), float(p["lean"])
    close = bars.close
    upper = np.full(close.shape, np.nan)
    lower = np.full(close.shape, np.nan)
    upper[1:] = pd.Series(bars.high).rolling(period).max().to_numpy()[:-1]
    lower[1:] = pd.Series(bars.low).rolling(period).min().to_numpy()[:-1]
    flat = ~(upper - lower > ag.FLAT_TOLERANCE * np.abs(close))
    with np.errstate(invalid="ignore", divide="ignore"):
        position = (close - lower) / (upper - lower)
    value = np.where(close > upper, 1.0, np.where(close < lower, -1.0, lean * (2.0 * position - 1.0)))
    return np.where(flat, 0.0, value), np.where(flat, 0.0, 1.0)


# --------------------------------------------------------------------------- the registry

# Lookbacks span two hours to six weeks of 1h bars; volatility windows one day to a month.
_LOOKBACK = Parameter("lookback", int, 2, 1008, log=True, doc="bars of the return")
_VOL = Parameter("vol_window", int, 24, 720, log=True, doc="bars of the volatility scale")
_SCALE = Parameter("scale", float, 0.25, 4.0, log=True, doc="standard deviations for a vote of tanh(1)")


def register_family(family: Family) -> Family:
    if family.name in FAMILIES or family.name in ag.AGENTS:
        raise VariantError(f"family {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


register_family(Family(
    "tsmom", (_LOOKBACK, _VOL, _SCALE), _tsmom_bars, _tsmom_bar, _tsmom_whole,
    horizon=lambda p: int(p["lookback"]), description="time-series momentum over a lookback, in volatility units",
))
register_family(Family(
    "sma_cross",
    (Parameter("fast", int, 2, 336, log=True), Parameter("slow", int, 4, 1008, log=True), _VOL, _SCALE),
    _sma_bars, _sma_bar, _sma_whole, horizon=lambda p: int(p["slow"]), constraint=_sma_constraint,
    description="fast / slow moving-average gap, in volatility units",
))
register_family(Family(
    "bollinger_reversion",
    (Parameter("period", int, 5, 720, log=True), Parameter("width", float, 0.5, 4.0)),
    lambda p: int(p["period"]), _boll_bar, _boll_whole, horizon=lambda p: int(p["period"]),
    description="fade the Bollinger z-score (core mean_reversion with free period and width)",
))
register_family(Family(
    "donchian_breakout",
    (Parameter("period", int, 5, 1008, log=True), Parameter("lean", float, 0.0, 1.0)),
    lambda p: int(p["period"]) + 1, _donchian_bar, _donchian_whole, horizon=lambda p: int(p["period"]),
    description="Donchian channel breakout with a lean inside the channel",
))


# --------------------------------------------------------------------------- whole-array votes


def variant_votes(variant: Variant, bars: SymbolBars, history_bars: int) -> np.ndarray:
    """``value x confidence`` of the variant at every row of ``bars`` as the live cycle would record it
    with windows of ``history_bars`` rows: NaN where the window fails the cycle's guard (no vote, the
    symbol is skipped), 0 where the window is shorter than ``min_bars`` (abstains)."""
    value, confidence = variant.spec.whole(bars, variant.params)
    vote = np.where(np.isfinite(value) & np.isfinite(confidence), np.clip(value, -1.0, 1.0) * np.clip(confidence, 0.0, 1.0), 0.0)
    rows = np.arange(len(bars))
    vote = np.where(np.minimum(rows + 1, history_bars) < variant.min_bars, 0.0, vote)
    return np.where(window_validity(bars, history_bars), vote, np.nan)


# --------------------------------------------------------------------------- the generator


def _sample(parameter: Parameter, rng: np.random.Generator) -> int | float:
    if parameter.log:
        x = math.exp(rng.uniform(math.log(parameter.low), math.log(parameter.high)))
    else:
        x = rng.uniform(parameter.low, parameter.high)
    return min(int(parameter.high), max(int(parameter.low), int(round(x)))) if parameter.kind is int else round(x, 4)


def random_variants(count: int, seed: int, families: Sequence[str] | None = None, max_tries: int = 50) -> list[Variant]:
    """``count`` distinct variants drawn uniformly (log-uniformly for lookbacks) within the bounds."""
    rng = np.random.default_rng(seed)
    names = list(families or sorted(FAMILIES))
    for name in names:
        if name not in FAMILIES:
            raise VariantError(f"unknown family {name!r}; known families: {', '.join(sorted(FAMILIES))}")
    out: dict[str, Variant] = {}
    tries = 0
    while len(out) < count and tries < count * max_tries:
        tries += 1
        family = FAMILIES[names[int(rng.integers(len(names)))]]
        params = {p.name: _sample(p, rng) for p in family.parameters}
        try:
            variant = make_variant(family.name, params)
        except VariantError:
            continue  # a draw breaking a constraint (fast >= slow) is drawn again
        out.setdefault(variant.name, variant)
    return list(out.values())


def longest_window() -> int:
    """The longest window any variant within the bounds needs: one ``history_bars`` for every candidate,
    so a generation's candidates vote on the same rows."""
    longest = 0
    for family in FAMILIES.values():
        params = {p.name: (int(p.high) if p.kind is int else p.high) for p in family.parameters}
        longest = max(longest, family.min_bars(params))
    return longest


def propose_generation(members: Mapping[str, Variant], day_index: int, candidates: int, mutations: int, seed: int = 0) -> list[tuple[Variant, str]]:
    """One generation's candidates with their origin: ``candidates`` random variants seeded by ``seed`` and
    the decision's day number, plus ``mutations`` neighbours of each pool member; members themselves and
    repeats are left out. The same seeds as the walk-forward loop, so both propose the same variants."""
    proposed: list[tuple[Variant, str]] = [(v, "random") for v in random_variants(candidates, seed=seed * 1_000_003 + day_index)]
    for k, name in enumerate(sorted(members)):
        for j in range(mutations):
            proposed.append((mutate(members[name], seed=seed * 7919 + day_index + 31 * k + j), "mutation"))
    unique: dict[str, tuple[Variant, str]] = {}
    for variant, origin in proposed:
        if variant.name not in members:
            unique.setdefault(variant.name, (variant, origin))
    return list(unique.values())


def grid_variants(family: str, grid: Mapping[str, Sequence[Any]]) -> list[Variant]:
    """Every combination of ``grid`` values (combinations breaking a constraint are left out)."""
    import itertools

    if family not in FAMILIES:
        raise VariantError(f"unknown family {family!r}; known families: {', '.join(sorted(FAMILIES))}")
    keys = list(grid)
    out: dict[str, Variant] = {}
    for values in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values))
        spec = FAMILIES[family]
        for p in spec.parameters:
            p.check(family, params.get(p.name, p.low))  # an out-of-bounds grid value is an error, not skipped
        if spec.constraint(params):
            continue
        variant = make_variant(family, params)
        out.setdefault(variant.name, variant)
    return list(out.values())


def mutate(variant: Variant, seed: int, spread: float = 0.25) -> Variant:
    """A neighbour of ``variant``: each parameter moved by up to ``spread`` of itself (log parameters
    multiplicatively, others by ``spread`` of their range), clipped into bounds."""
    rng = np.random.default_rng(seed)
    family = variant.spec
    for _ in range(50):
        params: dict[str, Any] = {}
        for p in family.parameters:
            x = float(variant.params[p.name])
            moved = x * math.exp(rng.uniform(-spread, spread)) if p.log else x + rng.uniform(-spread, spread) * (p.high - p.low)
            moved = min(p.high, max(p.low, moved))
            params[p.name] = int(round(moved)) if p.kind is int else round(moved, 4)
        if not family.constraint(params):
            return make_variant(family.name, params)
    return variant


__all__ = [
    "FAMILIES",
    "ORIGINS",
    "Family",
    "Parameter",
    "Variant",
    "VariantAgent",
    "VariantError",
    "grid_variants",
    "longest_window",
    "make_variant",
    "mutate",
    "propose_generation",
    "random_variants",
    "register_family",
    "variant_votes",
]
