"""A trader's controls of a running book: pause/resume new entries, force-exit, reload the weights.

Commands are queued in the ledger (``control_commands``) by whoever asks (CLI, Dagster job, HTTP) and
applied only by the trading cycle, inside its book-locked transaction: the cycle stays the single writer
of orders, and a command is applied once, on a bar, with its outcome recorded beside it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

ACTIONS = ("pause", "resume", "forceexit", "reload")
ALL = "all"
MAX_REASON = 500
_SYMBOL = re.compile(r"^[A-Z0-9]{1,15}/[A-Z0-9]{1,15}$")


class ControlInputError(ValueError):
    """A command that cannot be queued; the message is the one line shown to the trader."""


@dataclass(frozen=True)
class ControlCommand:
    id: int
    action: str
    symbol: str | None
    requested_by: str
    reason: str

    def who(self) -> str:
        return f"{self.requested_by} ({self.reason})"


def checked_command(action: str, symbol: str | None, reason: str, requested_by: str, symbols: Collection[str]) -> tuple[str, str | None, str, str]:
    """The command as it will be stored, or :class:`ControlInputError` with one clear line."""
    action = (action or "").strip().lower()
    if action not in ACTIONS:
        raise ControlInputError(f"unknown control {action!r}: expected one of {', '.join(ACTIONS)}")
    reason, requested_by = (reason or "").strip(), (requested_by or "").strip()
    if not reason:
        raise ControlInputError("a reason is required (--reason): the ledger records who asked and why")
    if len(reason) > MAX_REASON:
        raise ControlInputError(f"reason is {len(reason)} characters; at most {MAX_REASON}")
    if not requested_by or len(requested_by) > 128:
        raise ControlInputError("who asked must be 1 to 128 characters")
    if action != "forceexit":
        if symbol:
            raise ControlInputError(f"{action} takes no symbol (only forceexit does)")
        return action, None, reason, requested_by
    symbol = (symbol or "").strip()
    if symbol.lower() == ALL:
        return action, ALL, reason, requested_by
    symbol = symbol.upper()
    if not _SYMBOL.match(symbol):
        raise ControlInputError(f"forceexit needs a symbol like BTC/USDT or 'all', got {symbol!r}")
    if symbols and symbol not in symbols:
        raise ControlInputError(f"{symbol} is not traded by this book (symbols: {', '.join(sorted(symbols))})")
    return action, symbol, reason, requested_by


@dataclass(frozen=True)
class ControlPlan:
    """What the cycle does with the pending commands on this bar."""

    entries_paused: str | None  # who paused and why, while paused
    force_exit: frozenset[str]
    reload_weights: bool
    applied: dict[int, str] = field(default_factory=dict)  # command id -> outcome
    waiting: dict[int, str] = field(default_factory=dict)  # command id -> why it waits for a later bar


def plan_controls(
    paused: str | None, commands: Sequence[ControlCommand], held: Collection[str], usable: Collection[str]
) -> ControlPlan:
    """Apply ``commands`` (oldest first) to the pause state ``paused``; force-exits of held symbols.

    A force-exit of a symbol without a usable bar this cycle waits (stays pending) for a bar that has one.
    """
    applied: dict[int, str] = {}
    waiting: dict[int, str] = {}
    force: set[str] = set()
    reload = False
    for command in commands:
        if command.action == "pause":
            applied[command.id] = "entries paused" if paused is None else "entries were already paused"
            paused = f"by {command.who()}"
        elif command.action == "resume":
            applied[command.id] = "entries resumed" if paused is not None else "entries were not paused"
            paused = None
        elif command.action == "reload":
            reload = True
            applied[command.id] = "weights re-read from the ledger's live set for this bar"
        else:
            symbol = command.symbol or ""
            wanted = sorted(held) if symbol == ALL else [symbol] if symbol in held else []
            blocked = [s for s in wanted if s not in usable]
            if blocked:
                waiting[command.id] = f"no usable bar for {', '.join(blocked)} this cycle; tried again next bar"
                continue
            force.update(wanted)
            applied[command.id] = f"closing {', '.join(wanted)}" if wanted else f"no open position in {symbol}: nothing to close"
    return ControlPlan(paused, frozenset(force), reload, applied, waiting)
