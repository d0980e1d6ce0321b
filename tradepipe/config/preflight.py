"""Start-up checks that need more than the settings' own types: the agent registry, ccxt's list of
exchanges, what the market source can serve, the exchange keys, and the names in the environment.
Run when the code location loads and by every CLI command; a failure is one line naming the variable
and the values it accepts.
"""

from __future__ import annotations

import difflib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from dotenv import dotenv_values

from tradepipe.config.ledger_settings import ENV_PREFIX, PROCESS_VARIABLES, TEST_PREFIX
from tradepipe.config.settings import DEFAULT_AGENTS, WEIGHT_SUM_TOLERANCE, Settings, SettingsError, load_settings

_REPLAY_FILE = re.compile(r"^[A-Z0-9]+_[A-Z0-9]+-(\w+)\.(csv|parquet)$")


def known_variables() -> frozenset[str]:
    """Every TRADEPIPE_* name tradepipe reads: one per setting, plus the process variables."""
    return frozenset(ENV_PREFIX + field.upper() for field in Settings.model_fields) | PROCESS_VARIABLES


def check_settings(settings: Settings) -> None:
    """Raise ``SettingsError`` if the agents, the exchange, the timeframe, the keys, the weight bounds or a
    variable's name cannot work."""
    problems = [_agents(settings), _exchange(settings)]
    problems.append(None if any(problems) else _timeframe(settings))  # a bad exchange has no timeframes to list
    problems += [_exchange_keys(settings), _max_weight(settings), *unknown_variables(_given_names())]
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


def _exchange_keys(settings: Settings) -> str | None:
    """The ccxt broker signs every order: without both keys every cycle would fail at its first order."""
    if settings.broker != "ccxt":
        return None
    missing = [
        ENV_PREFIX + field.upper()
        for field in ("exchange_api_key", "exchange_secret")
        if not (value := getattr(settings, field)) or not value.get_secret_value().strip()
    ]
    if not missing:
        return None
    return f"{' and '.join(missing)} must be set with TRADEPIPE_BROKER=ccxt: every order is signed with the exchange keys"


def _max_weight(settings: Settings) -> str | None:
    """A maximum no full weight set can meet. Left unset, the default adapts (the bound becomes 1/n for
    n < 3 agents, core/weighting); given explicitly, it is what the user asked for and cannot hold."""
    agents = len(set(settings.agents))
    if "max_weight" not in settings.model_fields_set or agents * settings.max_weight >= 1 - WEIGHT_SUM_TOLERANCE:
        return None
    return (
        f"TRADEPIPE_MAX_WEIGHT={settings.max_weight:g} x {agents} agents (TRADEPIPE_AGENTS) = {agents * settings.max_weight:g} < 1: "
        f"no weight set summing to 1 fits under it; raise it to at least {1 / agents:.4g}, enable more agents, or unset it"
    )


def _given_names() -> list[str]:
    """The TRADEPIPE_* names of the environment and of the .env file that Settings reads."""
    names = list(os.environ)
    dotenv = Path(".env")
    if dotenv.is_file():
        names += [name for name in dotenv_values(dotenv) if name]
    return names


def unknown_variables(names: Iterable[str], known: Iterable[str] | None = None) -> list[str]:
    """One line per TRADEPIPE_* name tradepipe does not read, with the nearest known name: a misspelt
    safety variable (LIVEE for LIVE, STOPLOSS for STOP_LOSS_FRACTION) would otherwise be silently ignored."""
    accepted = sorted(known if known is not None else known_variables())
    lines = []
    for name in sorted(set(names)):
        upper = name.upper()  # Settings reads the environment case-insensitively
        if not upper.startswith(ENV_PREFIX) or upper.startswith(TEST_PREFIX) or upper in accepted:
            continue
        close = _nearest(upper, accepted)
        hint = f"did you mean {close}?" if close else "no known variable is close"
        lines.append(f"{name}: tradepipe reads no such variable ({hint}); unset or rename it")
    return lines


def _nearest(name: str, accepted: list[str]) -> str | None:
    """The known name most like ``name``, compared without the shared prefix and the underscores
    (else every name is "close" by its TRADEPIPE_ alone, and STOPLOSS is nearer SMTP_HOST than STOP_LOSS_FRACTION)."""
    def core(variable: str) -> str:
        return variable.removeprefix(ENV_PREFIX).replace("_", "")

    by_core = {core(known): known for known in accepted}
    close = difflib.get_close_matches(core(name), list(by_core), n=1, cutoff=0.6)
    return by_core[close[0]] if close else None


def _timeframe(settings: Settings) -> str | None:
    timeframe = settings.resolved_timeframe
    if settings.market_source == "replay" and settings.replay_dir is not None:
        if not settings.replay_dir.is_dir():
            return f"TRADEPIPE_REPLAY_DIR={str(settings.replay_dir)!r}: no such folder (expected a folder of BASE_QUOTE-TIMEFRAME.csv|.parquet candles)"
        served = _replay_timeframes(settings.replay_dir)
        if not served:
            return f"TRADEPIPE_REPLAY_DIR={str(settings.replay_dir)!r}: the folder holds no BASE_QUOTE-TIMEFRAME.csv|.parquet candle files"
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
