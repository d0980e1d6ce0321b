"""Signal agents: pure functions from one symbol's closed bars (+ context) to a ``Signal``.

Each agent votes ``value`` in [-1, 1] (short .. long) with ``confidence`` in [0, 1] and a short
human reason. Agent names are stable identifiers stored in the database: never rename one.

Built-in agents (``DEFAULT_AGENTS``), each reading the market differently so the ensemble
weights matter:

==================  =========  ==========================================================
name                min_bars   opinion
==================  =========  ==========================================================
``momentum``        35         RSI(14) read as momentum (above 50 = up) + MACD(12/26/9)
                               histogram in ATR units; confidence = how well they agree.
``trend``           59         SMA(20) vs SMA(50) gap in ATR(14) units; confidence = how
                               long the crossover has held (last 10 bars).
``mean_reversion``  20         minus the Bollinger z-score (20 bars, population std) / 2;
                               confidence grows with the stretch, full at 2 deviations.
``breakout``        21         close beyond the previous 20 bars' Donchian channel, in ATR
                               units; inside the channel a weak lean to the nearer edge.
``sentiment``       0          recency-weighted VADER compound score of headlines about the
                               symbol's base asset (or about no asset in particular).
==================  =========  ==========================================================

An agent with fewer than ``min_bars`` bars abstains ("needs 35 bars, have 12"). Agents are
deterministic, and on validated finite data never raise: constant prices give value 0 with
the reason "flat prices". Call :func:`validate_history` first and skip the symbol for the
cycle when it returns a reason.

Adding an agent: write one function of ``(history, context)`` returning a :class:`Vote`
(or :func:`abstain`), and register it with a name and the bars it needs::

    @register_agent("volume_spike", min_bars=21)
    def volume_spike(history: BarHistory, context: AgentContext) -> Vote:
        \"\"\"Volume far above its 20-bar mean, in the direction of the bar.\"\"\"
        ratio = history.volume[-1] / history.volume[-21:-1].mean()
        ...
        return Vote(value, confidence, f"volume {ratio:.1f}x its 20-bar mean")

The decorator wraps the function in an :class:`Agent` (which handles the ``min_bars``
abstention, clips the vote into range and turns a non-finite vote into an abstention) and
adds it to ``AGENTS``. The module defining it must be imported before ``get_agents`` looks
the name up; add it to ``DEFAULT_AGENTS`` (or to the configured agent list) to use it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np

from tradepipe.core import indicators as ind
from tradepipe.core.types import AgentContext, BarHistory, Signal

__all__ = [
    "AGENTS",
    "DEFAULT_AGENTS",
    "Agent",
    "AgentFunction",
    "Vote",
    "abstain",
    "base_asset",
    "get_agents",
    "headline_sentiment",
    "is_relevant",
    "max_history_needed",
    "register_agent",
    "run_agents",
    "validate_history",
]


# --------------------------------------------------------------------------- registry


class Vote(NamedTuple):
    """What an agent function returns; :class:`Agent` turns it into a ``Signal``."""

    value: float
    confidence: float
    reason: str
    abstained: bool = False


def abstain(reason: str) -> Vote:
    """A vote that does not count: the ensemble renormalises over the other agents."""
    return Vote(0.0, 0.0, reason, abstained=True)


AgentFunction = Callable[[BarHistory, AgentContext], Vote]


@dataclass(frozen=True)
class Agent:
    """A named agent: ``agent(history, context) -> Signal``.

    ``min_bars`` is the history the agent needs; with less it abstains without calling
    ``function``. Votes are clipped to value [-1, 1] and confidence [0, 1]; a non-finite vote
    becomes an abstention (a bug guard: the ensemble must never see NaN).
    """

    name: str
    min_bars: int
    function: AgentFunction
    description: str = ""

    def __call__(self, history: BarHistory, context: AgentContext) -> Signal:
        if len(history) < self.min_bars:
            return self._signal(history, abstain(f"needs {self.min_bars} bars, have {len(history)}"))
        return self._signal(history, self.function(history, context))

    def _signal(self, history: BarHistory, vote: Vote) -> Signal:
        if vote.abstained:
            return Signal(self.name, history.symbol, 0.0, 0.0, vote.reason, abstained=True)
        if not (math.isfinite(vote.value) and math.isfinite(vote.confidence)):
            reason = f"non-finite vote ({vote.value}, {vote.confidence}): {vote.reason}"
            return Signal(self.name, history.symbol, 0.0, 0.0, reason, abstained=True)
        value = min(1.0, max(-1.0, float(vote.value)))
        confidence = min(1.0, max(0.0, float(vote.confidence)))
        return Signal(self.name, history.symbol, value, confidence, vote.reason)


AGENTS: dict[str, Agent] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def register_agent(name: str, min_bars: int) -> Callable[[AgentFunction], Agent]:
    """Decorator: wrap ``function`` in an :class:`Agent` called ``name`` and add it to ``AGENTS``.

    Names are lower_snake_case (they are stored in the database); registering a name twice
    is an error rather than a silent replacement.
    """
    if not _NAME.match(name):
        raise ValueError(f"agent name {name!r} must be lower_snake_case (a-z, 0-9, _), starting with a letter")
    if int(min_bars) != min_bars or min_bars < 0:
        raise ValueError(f"min_bars for agent {name!r} must be a non-negative integer, got {min_bars!r}")

    def decorate(function: AgentFunction) -> Agent:
        if name in AGENTS:
            raise ValueError(f"agent {name!r} is already registered")
        doc_lines = (function.__doc__ or "").strip().splitlines()
        agent = Agent(name=name, min_bars=int(min_bars), function=function, description=doc_lines[0] if doc_lines else "")
        AGENTS[name] = agent
        return agent

    return decorate


def get_agents(names: Sequence[str] | None = None) -> list[Agent]:
    """The agents called ``names`` in that order (``None``: ``DEFAULT_AGENTS``).

    Raises ``ValueError`` naming the unknown agents and listing the known ones, or naming a
    duplicate (the ensemble keys votes by agent name).
    """
    wanted = list(DEFAULT_AGENTS if names is None else names)
    unknown = [name for name in wanted if name not in AGENTS]
    if unknown:
        raise ValueError(f"unknown agent(s) {', '.join(map(repr, unknown))}; known agents: {', '.join(sorted(AGENTS))}")
    duplicates = sorted({name for name in wanted if wanted.count(name) > 1})
    if duplicates:
        raise ValueError(f"agent(s) listed more than once: {', '.join(map(repr, duplicates))}")
    return [AGENTS[name] for name in wanted]


def max_history_needed(agents: Iterable[Agent]) -> int:
    """Bars to load so every agent in ``agents`` can vote (0 for no agents)."""
    return max((agent.min_bars for agent in agents), default=0)


def run_agents(agents: Iterable[Agent], history: BarHistory, context: AgentContext) -> list[Signal]:
    """Every agent's signal for one symbol, in the agents' order."""
    return [agent(history, context) for agent in agents]


# --------------------------------------------------------------------------- input guard


def _bar_time(history: BarHistory, index: int) -> str:
    stamp = datetime.fromtimestamp(int(history.timestamps[index]) / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%MZ")


def _first(mask: np.ndarray | np.bool_) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _all_sound(t: np.ndarray, o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray) -> bool:
    """True when no check of :func:`validate_history` can fail (every cycle asks, for every symbol).

    A finite high at or above max(open, close) and a positive low at or below min(open, close)
    make every price finite and positive and high >= low; NaN fails every comparison.
    """
    with np.errstate(invalid="ignore"):
        return bool(
            (t[1:] > t[:-1]).all()
            and np.isfinite(h).all()
            and (l > 0).all()
            and (l <= np.minimum(o, c)).all()
            and (np.maximum(o, c) <= h).all()
            and np.isfinite(v).all()
            and (v >= 0).all()
        )


def validate_history(history: BarHistory) -> str | None:
    """Why ``history`` is unfit for the agents, or ``None`` when it is fine.

    Checks every bar, not only the last one: the exponential indicators carry a bad value
    forward for the rest of the series. Looks for: no bars, arrays of different lengths,
    timestamps not strictly increasing, non-finite or non-positive prices, negative or
    non-finite volume, and high/low that do not bracket open, close and each other.
    """
    n = len(history)
    if n == 0:
        return "no bars"
    arrays = {"open": history.open, "high": history.high, "low": history.low, "close": history.close, "volume": history.volume}
    lengths = {name: len(array) for name, array in arrays.items()}
    if any(length != n for length in lengths.values()):
        return f"arrays differ in length: timestamps {n}, " + ", ".join(f"{k} {v}" for k, v in lengths.items())
    o, h, l, c, v = (np.asarray(array, dtype=np.float64) for array in arrays.values())
    if _all_sound(history.timestamps, o, h, l, c, v):  # the common case, in a few array passes
        return None
    if (bad := _first(np.diff(history.timestamps) <= 0)) is not None:
        return f"timestamps not strictly increasing at bar {_bar_time(history, bad + 1)}"
    prices = np.vstack([o, h, l, c])
    checks = (
        (~np.isfinite(prices).all(axis=0), "non-finite price"),
        ((prices <= 0).any(axis=0), "non-positive price"),
        (~np.isfinite(v) | (v < 0), "negative or non-finite volume"),
        (h < l, "high below low"),
        ((h < np.maximum(o, c)) | (l > np.minimum(o, c)), "high/low do not bracket open and close"),
    )
    for mask, problem in checks:
        if (bad := _first(mask)) is not None:
            return f"bar {_bar_time(history, bad)}: {problem} (o={o[bad]}, h={h[bad]}, l={l[bad]}, c={c[bad]}, v={v[bad]})"
    return None


# --------------------------------------------------------------------------- helpers

# Below this fraction of the price a volatility measure is rounding noise: the market is flat.
FLAT_TOLERANCE = 1e-9
FLAT_REASON = "flat prices: no volatility to scale by"


def _is_flat(scale: float, price: float) -> bool:
    return not scale > FLAT_TOLERANCE * abs(price)


def _flat_vote() -> Vote:
    return Vote(0.0, 0.0, FLAT_REASON)


def _clip(x: float, bound: float = 1.0) -> float:
    return min(bound, max(-bound, x))


# --------------------------------------------------------------------------- momentum

RSI_PERIOD = 14
ATR_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
# RSI 70 / 30 (Wilder's overbought / oversold lines) map to full +1 / -1 momentum.
RSI_SPAN = 20.0
# A histogram of a quarter ATR is a strong reading (95th percentile on BTC 1h 2018 is ~0.35).
MACD_ATR_SCALE = 0.25
# The histogram needs slow + signal - 1 closes; one more bar tells whether it is rising.
MOMENTUM_MIN_BARS = MACD_SLOW + MACD_SIGNAL - 1 + 1


def _rsi_label(value: float) -> str:
    if value >= 70:
        return " overbought"
    if value <= 30:
        return " oversold"
    return ""


@register_agent("momentum", min_bars=MOMENTUM_MIN_BARS)
def momentum(history: BarHistory, context: AgentContext) -> Vote:
    """Follow momentum: RSI above 50 and a positive MACD histogram (in ATR units) are bullish.

    RSI is read as momentum strength (Wilder's centre-line use), not as a contrarian
    overbought/oversold trigger: fading stretched moves is ``mean_reversion``'s job, so the
    two disagree by design. Confidence is the agreement of the two readings.
    """
    close = history.close
    rsi_now = float(ind.rsi(close, RSI_PERIOD)[-1])
    hist = ind.macd(close, MACD_FAST, MACD_SLOW, MACD_SIGNAL).histogram
    atr_now = float(ind.atr(history.high, history.low, close, ATR_PERIOD)[-1])
    if _is_flat(atr_now, history.last_close):
        return _flat_vote()
    rsi_term = _clip((rsi_now - 50.0) / RSI_SPAN)
    macd_term = math.tanh(hist[-1] / (MACD_ATR_SCALE * atr_now))
    direction = "rising" if hist[-1] > hist[-2] else "falling" if hist[-1] < hist[-2] else "flat"
    reason = f"RSI {rsi_now:.1f}{_rsi_label(rsi_now)}, MACD hist {hist[-1]:+.4g} {direction}"
    return Vote((rsi_term + macd_term) / 2.0, 1.0 - abs(rsi_term - macd_term) / 2.0, reason)


# --------------------------------------------------------------------------- trend

TREND_FAST, TREND_SLOW = 20, 50
# A gap of 1.5 ATR between the averages gives tanh(1) = 0.76 (BTC 1h 2018: 95% within ~2.7).
TREND_ATR_SCALE = 1.5
TREND_PERSISTENCE_BARS = 10
TREND_MIN_BARS = TREND_SLOW + TREND_PERSISTENCE_BARS - 1


@register_agent("trend", min_bars=TREND_MIN_BARS)
def trend(history: BarHistory, context: AgentContext) -> Vote:
    """Moving-average crossover: long when SMA(20) is above SMA(50), strength = gap / ATR(14).

    Confidence is the share of the last 10 bars on which the gap had today's sign: a fresh
    crossover (often a whipsaw) counts less than an established trend.
    """
    close = history.close
    gap = ind.sma(close, TREND_FAST) - ind.sma(close, TREND_SLOW)
    atr_now = float(ind.atr(history.high, history.low, close, ATR_PERIOD)[-1])
    if _is_flat(atr_now, history.last_close):
        return _flat_vote()
    gap_atr = float(gap[-1]) / atr_now
    side = np.sign(gap[-1])
    held = float(np.mean(np.sign(gap[-TREND_PERSISTENCE_BARS:]) == side))
    relation = "above" if side > 0 else "below" if side < 0 else "equal to"
    reason = (
        f"SMA{TREND_FAST} {relation} SMA{TREND_SLOW} by {gap_atr:+.2f} ATR, "
        f"held {held:.0%} of last {TREND_PERSISTENCE_BARS} bars"
    )
    return Vote(math.tanh(gap_atr / TREND_ATR_SCALE), held, reason)


# --------------------------------------------------------------------------- mean reversion

BOLLINGER_PERIOD = 20
BOLLINGER_WIDTH = 2.0  # deviations at which the vote is full strength


@register_agent("mean_reversion", min_bars=BOLLINGER_PERIOD)
def mean_reversion(history: BarHistory, context: AgentContext) -> Vote:
    """Fade stretches: value = -z / 2 (clipped), z = Bollinger z-score (20 bars, population std).

    Confidence grows with the stretch (|z| / 2, full at the bands): near the mean a
    reversion has nothing to revert.
    """
    z = float(ind.bollinger_zscore(history.close, BOLLINGER_PERIOD)[-1])
    if z == 0.0 and np.ptp(history.close[-BOLLINGER_PERIOD:]) == 0.0:
        return Vote(0.0, 0.0, f"flat prices: {BOLLINGER_PERIOD}-bar window is constant")
    where = "above upper band" if z > BOLLINGER_WIDTH else "below lower band" if z < -BOLLINGER_WIDTH else "inside bands"
    reason = f"Bollinger z {z:+.2f} ({where})"
    return Vote(_clip(-z / BOLLINGER_WIDTH), min(1.0, abs(z) / BOLLINGER_WIDTH), reason)


# --------------------------------------------------------------------------- breakout

DONCHIAN_PERIOD = 20
# Inside the channel the vote only leans towards the nearer edge, at most this strongly.
INSIDE_CHANNEL_MAX = 0.5
INSIDE_CHANNEL_CONFIDENCE = 0.3
BREAKOUT_MIN_BARS = max(DONCHIAN_PERIOD + 1, ATR_PERIOD + 1)


@register_agent("breakout", min_bars=BREAKOUT_MIN_BARS)
def breakout(history: BarHistory, context: AgentContext) -> Vote:
    """Donchian breakout: the close beyond the previous 20 bars' high (low), measured in ATR.

    A break votes at least 0.5 and reaches 1 at one ATR beyond the edge; confidence grows
    the same way (a decisive break is more believable). Inside the channel the vote leans
    towards the nearer edge, at most 0.5, with low confidence.
    """
    close = history.last_close
    upper = float(np.max(history.high[-DONCHIAN_PERIOD - 1 : -1]))
    lower = float(np.min(history.low[-DONCHIAN_PERIOD - 1 : -1]))
    atr_now = float(ind.atr(history.high, history.low, history.close, ATR_PERIOD)[-1])
    if _is_flat(atr_now, close) or _is_flat(upper - lower, close):
        return _flat_vote()
    channel = f"{DONCHIAN_PERIOD}-bar"
    if close > upper or close < lower:
        side = 1.0 if close > upper else -1.0
        beyond = (close - upper if side > 0 else lower - close) / atr_now
        edge = f"high {upper:.6g}" if side > 0 else f"low {lower:.6g}"
        strength = 0.5 + 0.5 * min(1.0, beyond)
        where = "above" if side > 0 else "below"
        return Vote(side * strength, strength, f"close {beyond:.2f} ATR {where} {channel} {edge}")
    position = (close - lower) / (upper - lower)  # 0 at the low, 1 at the high
    reason = f"inside {channel} channel at {position:.0%} of [{lower:.6g}, {upper:.6g}]"
    return Vote(INSIDE_CHANNEL_MAX * (2.0 * position - 1.0), INSIDE_CHANNEL_CONFIDENCE, reason)


# --------------------------------------------------------------------------- sentiment

HOUR_MS = 3_600_000
SENTIMENT_HALF_LIFE_MS = 6 * HOUR_MS
# Older headlines are dropped: at 48 h their weight is 1/256 of a fresh one.
SENTIMENT_MAX_AGE_MS = 48 * HOUR_MS

# Names a headline may use for a base asset. A headline counts for a symbol when it names the
# symbol's base asset, or names none of these assets (general crypto news); a headline that
# names only other assets is about them and is ignored. Unknown bases match their ticker.
ASSET_ALIASES: dict[str, tuple[str, ...]] = {
    "BTC": ("btc", "bitcoin", "xbt"),
    "ETH": ("eth", "ethereum", "ether"),
    "SOL": ("sol", "solana"),
    "XRP": ("xrp", "ripple"),
    "BNB": ("bnb",),
    "ADA": ("ada", "cardano"),
    "DOGE": ("doge", "dogecoin"),
    "LTC": ("ltc", "litecoin"),
    "NEO": ("neo",),
    "DOT": ("polkadot",),  # "dot" alone is an everyday word
    "AVAX": ("avax", "avalanche"),
    "LINK": ("chainlink",),  # likewise "link"
    "TRX": ("trx", "tron"),
    "XLM": ("xlm", "stellar"),
}

# VADER's lexicon is built for social media and misses market verbs ("Bitcoin soars" scores
# 0). These entries (VADER's -4..+4 valence scale) are added to the one shared analyzer.
MARKET_LEXICON: dict[str, float] = {
    **dict.fromkeys(("soar", "soars", "soared", "soaring"), 2.2),
    **dict.fromkeys(("surge", "surges", "surged", "surging"), 1.8),
    **dict.fromkeys(("rally", "rallies", "rallied", "rallying"), 1.8),
    **dict.fromkeys(("rebound", "rebounds", "rebounded"), 1.4),
    **dict.fromkeys(("inflows", "adoption", "uptrend"), 1.2),
    "bullish": 2.0,
    "bearish": -2.0,
    **dict.fromkeys(("plunge", "plunges", "plunged", "plunging"), -2.2),
    **dict.fromkeys(("plummet", "plummets", "plummeted", "plummeting"), -2.4),
    **dict.fromkeys(("tumble", "tumbles", "tumbled", "slump", "slumps", "slumped"), -1.8),
    **dict.fromkeys(("crashes", "crashed", "selloff", "sell-off"), -2.0),
    **dict.fromkeys(("hack", "exploit", "exploited", "bans", "banned"), -2.2),
    **dict.fromkeys(("outflows", "downtrend", "liquidations", "liquidated"), -1.2),
    "sues": -1.5,
    "bankruptcy": -2.6,
}


@lru_cache(maxsize=1)
def _vader():  # -> SentimentIntensityAnalyzer (untyped library)
    """The one VADER analyzer, built on first use: construction parses the lexicon file."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(MARKET_LEXICON)
    return analyzer


@lru_cache(maxsize=4096)
def headline_sentiment(title: str) -> float:
    """VADER compound score of one headline in [-1, 1] (cached: every symbol scores the same feed)."""
    return float(_vader().polarity_scores(title)["compound"])


def _alias_pattern(aliases: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(map(re.escape, aliases)) + r")\b", re.IGNORECASE)


_ASSET_PATTERNS = {asset: _alias_pattern(aliases) for asset, aliases in ASSET_ALIASES.items()}


def base_asset(symbol: str) -> str:
    """``"BTC/USDT"`` and ``"BTC/USDT:USDT"`` -> ``"BTC"``."""
    return symbol.split("/")[0].split(":")[0].upper()


@lru_cache(maxsize=256)
def _asset_pattern(asset: str) -> re.Pattern[str]:
    return _ASSET_PATTERNS.get(asset) or _alias_pattern((asset.lower(),))


def is_relevant(title: str, asset: str) -> bool:
    """True when ``title`` names ``asset`` or names none of the known assets (general news)."""
    if _asset_pattern(asset).search(title):
        return True
    return not any(pattern.search(title) for other, pattern in _ASSET_PATTERNS.items() if other != asset)


def _recency_weight(age_ms: int) -> float:
    return 0.5 ** (age_ms / SENTIMENT_HALF_LIFE_MS)


def _ignored_note(future: int, stale: int, other: int) -> str:
    counts = ((future, "after now"), (stale, "older than 48h"), (other, "about other assets"))
    parts = [f"{count} {what}" for count, what in counts if count]
    return f" ({', '.join(parts)} ignored)" if parts else ""


@register_agent("sentiment", min_bars=0)
def sentiment(history: BarHistory, context: AgentContext) -> Vote:
    """Recency-weighted mean VADER compound score of the relevant headlines.

    Only headlines published at or before ``context.now_ms`` count (no look-ahead), each
    weighted ``0.5 ** (age / 6 h)``, none older than 48 h. Confidence ``W / (W + 1)`` with
    ``W`` the summed weight: one fresh headline gives 0.5, three give 0.75.
    """
    if context.headlines is None:
        return abstain("no headline feed configured")
    asset = base_asset(history.symbol)
    scores, weights, newest_age = [], [], None
    future = stale = other = 0
    for headline in context.headlines:
        age = context.now_ms - headline.published_ms
        if age < 0:
            future += 1
        elif age > SENTIMENT_MAX_AGE_MS:
            stale += 1
        elif not is_relevant(headline.title, asset):
            other += 1
        else:
            scores.append(headline_sentiment(headline.title))
            weights.append(_recency_weight(age))
            newest_age = age if newest_age is None else min(newest_age, age)
    note = _ignored_note(future, stale, other)
    if not weights:
        return abstain("no recent headlines" + note)
    assert newest_age is not None  # set with the first weight
    total = math.fsum(weights)
    value = math.fsum(w * s for w, s in zip(weights, scores)) / total
    reason = f"VADER {value:+.2f} over {len(weights)} headline(s) on {asset}, newest {newest_age / HOUR_MS:.1f}h old{note}"
    return Vote(value, total / (total + 1.0), reason)


DEFAULT_AGENTS: tuple[str, ...] = ("momentum", "trend", "mean_reversion", "breakout", "sentiment")
