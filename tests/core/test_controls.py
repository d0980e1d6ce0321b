"""Trader controls as the cycle applies them: pause state, force-exits, one-line refusals."""

from __future__ import annotations

import pytest

from tradepipe.core.controls import ControlCommand, ControlInputError, checked_command, plan_controls

SYMBOLS = ("BTC/USDT", "ETH/USDT")


def command(n: int, action: str, symbol: str | None = None) -> ControlCommand:
    return ControlCommand(n, action, symbol, "alice", f"reason {n}")


def test_commands_apply_in_order_and_force_exits_wait_for_a_usable_bar() -> None:
    plan = plan_controls(
        None,
        [command(1, "pause"), command(2, "forceexit", "all"), command(3, "forceexit", "SOL/USDT"), command(4, "reload")],
        held={"BTC/USDT", "ETH/USDT"}, usable={"BTC/USDT", "ETH/USDT"},
    )
    assert plan.entries_paused == "by alice (reason 1)" and plan.reload_weights
    assert plan.force_exit == {"BTC/USDT", "ETH/USDT"}
    assert plan.applied == {1: "entries paused", 2: "closing BTC/USDT, ETH/USDT", 3: "no open position in SOL/USDT: nothing to close",
                            4: "weights re-read from the ledger's live set for this bar"}

    later = plan_controls("by alice (reason 1)", [command(5, "resume"), command(6, "forceexit", "ETH/USDT")], held={"ETH/USDT"}, usable=set())
    assert later.entries_paused is None and later.applied == {5: "entries resumed"} and later.force_exit == frozenset()
    assert later.waiting == {6: "no usable bar for ETH/USDT this cycle; tried again next bar"}


@pytest.mark.parametrize(
    ("action", "symbol", "reason", "message"),
    [
        ("sell", None, "x", "unknown control 'sell'"),
        ("pause", "BTC/USDT", "x", "pause takes no symbol"),
        ("forceexit", None, "x", "forceexit needs a symbol like BTC/USDT or 'all'"),
        ("forceexit", "DOGE/USDT", "x", "DOGE/USDT is not traded by this book"),
        ("resume", None, " ", "a reason is required"),
        ("resume", None, "x" * 501, "at most 500"),
    ],
)
def test_bad_commands_are_one_line(action: str, symbol: str | None, reason: str, message: str) -> None:
    with pytest.raises(ControlInputError, match=message) as error:
        checked_command(action, symbol, reason, "alice", SYMBOLS)
    assert "\n" not in str(error.value)


def test_good_commands_are_normalised() -> None:
    assert checked_command(" ForceExit ", "btc/usdt", " flatten ", "alice", SYMBOLS) == ("forceexit", "BTC/USDT", "flatten", "alice")
    assert checked_command("forceexit", "ALL", "flatten", "alice", SYMBOLS)[1] == "all"
