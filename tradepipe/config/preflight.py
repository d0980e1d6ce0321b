"""Start-up checks that need more than the settings' own types: the agent registry, ccxt's list of
exchanges and what the market source can serve. Run when the code location loads and by every CLI
command; a failure is one line naming the variable and the values it accepts.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from pathlib import Path

from tradepipe.config.settings import DEFAULT_AGENTS, Settings, SettingsError, load_settings

_REPLAY_FILE = re.compile(r"^[A-Z0-9]+_[A-Z0-9]+-(\w+)\.(csv|parquet)$")


def check_settings(settings: Settings) -> None:
    """Raise ``SettingsError`` if the agents, the exchange or the timeframe cannot work."""
    problems = [_agents(settings), _exchange(settings)]
    problems.append(None if any(problems) else _timeframe(settings))  # a bad exchange has no timeframes to list
    found = [problem for problem in problems if problem]
    if found:
        raise SettingsError("invalid tradepipe configuration:\n  " + "\n  ".join(found))


def _agents(settings: Settings) -> str | None:
    if tuple(settings.agents) == DEFAULT_AGENTS:
        return None  # the shipped set (tests hold it valid): spares every command importing the agents (pandas, seconds)
    from tradepipe.core.agents import AGENTS

    unknown = [name for name in settings.agents if name not in AGENTS]
    if unknown:
        return f"TRADEPIPE_AGENTS: unknown agent(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(sorted(AGENTS))}"
    duplicates = sorted({name for name in settings.agents if settings.agents.count(name) > 1})
    if duplicates:
        return f"TRADEPIPE_AGENTS: agent(s) listed more than once: {', '.join(map(repr, duplicates))}"
    return None


def _uses_ccxt(settings: Settings) -> bool:
    return settings.market_source == "ccxt" or settings.broker == "ccxt"


def _exchange(settings: Settings) -> str | None:
    if not _uses_ccxt(settings):  # ccxt costs a second to import: only checked when it is used
        return None
    import ccxt

    if settings.exchange in ccxt.exchanges:
        return None
    close = difflib.get_close_matches(settings.exchange, ccxt.exchanges, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return (
        f"TRADEPIPE_EXCHANGE={settings.exchange!r}: ccxt {ccxt.__version__} has no such exchange{hint}; "
        f"accepted: {', '.join(ccxt.exchanges)}"
    )


def _timeframe(settings: Settings) -> str | None:
    timeframe = settings.resolved_timeframe
    if settings.market_source == "replay" and settings.replay_dir is not None:
        served = _replay_timeframes(settings.replay_dir)
        where = f"the replay folder {settings.replay_dir}"
    elif settings.market_source == "ccxt":
        import ccxt

        served = set(getattr(ccxt, settings.exchange)().timeframes or {})
        where = f"ccxt's {settings.exchange}"
    else:
        return None  # the synthetic market makes bars of any timeframe
    if timeframe in served:
        return None
    return f"TRADEPIPE_TIMEFRAME={timeframe!r}: {where} has no {timeframe} bars; accepted: {', '.join(sorted(served, key=_length)) or 'none'}"


def _replay_timeframes(directory: Path) -> set[str]:
    if not directory.is_dir():
        return set()
    return {match.group(1) for path in directory.iterdir() if (match := _REPLAY_FILE.match(path.name))}


def _length(timeframe: str) -> tuple[int, str]:
    from tradepipe.core.timeframes import timeframe_ms

    try:
        return timeframe_ms(timeframe), timeframe
    except ValueError:
        return 0, timeframe


@lru_cache(maxsize=1)
def location_settings() -> Settings:
    """The settings the Dagster code location is built from, read once when it loads (its partitions,
    the sensor's interval and the resources' configuration); a bad value stops the load."""
    settings = load_settings()
    check_settings(settings)
    return settings
