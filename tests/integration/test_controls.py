"""Trader controls end to end: queued by the CLI, a real Dagster run and a real HTTP server; applied only
by the trading cycle (pause blocks new risk, force-exit closes, reload re-reads the live set)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tradepipe.adapters.db.engine import session_factory, upgrade
from tradepipe.adapters.db.models import ControlCommandRow, OrderRow, PositionRow
from tradepipe.cli.main import main
from tradepipe.config.settings import load_settings

BAR0 = 1_764_633_600_000  # 2025-12-02T00:00:00Z
MINUTE = 60_000


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def held(url: str) -> dict[str, Decimal]:
    with session_factory(url)() as session:
        return {p.symbol: p.quantity for p in session.scalars(select(PositionRow).where(PositionRow.book == "main")) if p.quantity != 0}


@pytest.fixture
def traded(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, object, int]]:
    """A live book on the synthetic market (1m bars) that holds a position."""
    from tradepipe.trading.runner import TradingRunner

    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    upgrade(sqlite_url)
    runner = TradingRunner(load_settings(database_url=sqlite_url))
    bar = BAR0
    while not held(sqlite_url):
        runner.run_cycle(bar, run_id="test")
        bar += MINUTE
        assert bar < BAR0 + 400 * MINUTE, "the synthetic market should open a position within 400 minutes"
    yield sqlite_url, runner, bar


def test_pause_blocks_new_risk_and_forceexit_closes_through_the_cycle(traded: tuple[str, object, int]) -> None:
    url, runner, bar = traded

    code, out, _ = cli("control", "pause", "--reason", "news at 14:00", "--by", "alice")
    assert code == 0 and "queued control #1 pause for book 'main': the running book applies it on its next bar" in out
    with session_factory(url)() as session:  # queued, not applied: only the cycle applies it
        assert session.scalars(select(ControlCommandRow.status)).one() == "pending"

    before = {o.id for o in _orders(url)}
    for step in range(60):
        runner.run_cycle(bar + step * MINUTE, run_id="test")  # type: ignore[attr-defined]
    bar += 60 * MINUTE
    paused_orders = [o for o in _orders(url) if o.id not in before]
    exposure_ok = all(o.status == "rejected" and o.reject_kind == "entries_paused" or _reduces(o) for o in paused_orders)
    assert exposure_ok, [(o.symbol, o.side, o.status, o.reject_kind, o.reason) for o in paused_orders]
    _, listed, _ = cli("control", "list", "--json")
    (pause,) = json.loads(listed)
    assert (pause["status"], pause["requested_by"], pause["source"], pause["reason"]) == ("applied", "alice", "cli", "news at 14:00")
    assert pause["outcome"] == "entries paused" and pause["cycle_id"] is not None
    assert "PAUSED by alice (news at 14:00)" in cli("control", "list")[1]

    held_now = held(url)
    code, out, _ = cli("control", "forceexit", "all", "--reason", "flatten before maintenance")
    assert code == 0
    runner.run_cycle(bar, run_id="test")  # type: ignore[attr-defined]  # decides the exits
    runner.run_cycle(bar + MINUTE, run_id="test")  # type: ignore[attr-defined]  # paper orders fill at the next bar's open
    if held_now:
        assert held(url) == {}, "force-exit all should leave the book flat"
    force = json.loads(cli("control", "list", "--json")[1])[0]
    assert force["action"] == "forceexit" and force["status"] == "applied" and force["outcome"].startswith(("closing", "no open position"))

    code, out, _ = cli("control", "resume", "--reason", "news passed")
    runner.run_cycle(bar + 2 * MINUTE, run_id="test")  # type: ignore[attr-defined]
    assert "entries: open" not in cli("control", "list")[1] and "entries open" in cli("control", "list")[1]


def _orders(url: str) -> list[OrderRow]:
    with session_factory(url)() as session:
        return list(session.scalars(select(OrderRow).where(OrderRow.book == "main").order_by(OrderRow.id)))


def _reduces(order: OrderRow) -> bool:
    """An order that brings the position toward zero: its reason says 'from X% to Y% of equity' with |Y| <= |X|."""
    if order.reason.startswith("stop-loss"):
        return True
    found = re.search(r"from (-?[\d.]+)% to (-?[\d.]+)% of equity", order.reason)
    return found is not None and abs(float(found.group(2))) <= abs(float(found.group(1)))


def test_bad_input_is_one_line_and_a_stopped_book_is_queued(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    upgrade(sqlite_url)

    for args, expected in (
        (("forceexit", "DOGE", "--reason", "x"), "forceexit needs a symbol like BTC/USDT or 'all'"),
        (("forceexit", "DOGE/USDT", "--reason", "x"), "DOGE/USDT is not traded by this book"),
        (("pause", "--reason", "  "), "a reason is required"),
    ):
        code, out, err = cli("control", *args)
        assert code == 2 and err.count("\n") == 1 and expected in err, err
    code, out, _ = cli("control", "reload", "--reason", "new set promoted")
    assert code == 0 and "which has never traded: it is applied when the book first trades" in out
    with session_factory(sqlite_url)() as session:
        assert [r.action for r in session.scalars(select(ControlCommandRow))] == ["reload"]  # the refused ones left nothing


def test_the_dagster_job_queues_with_its_config(sqlite_url: str) -> None:
    from tradepipe.jobs import trader_control
    from tradepipe.resources import build_resources

    upgrade(sqlite_url)
    resources = build_resources(load_settings(database_url=sqlite_url), "test")
    result = trader_control.execute_in_process(
        run_config={"ops": {"queue_trader_control": {"config": {"action": "forceexit", "symbol": "BTC/USDT", "reason": "from the UI"}}}},
        resources={"trading": resources["trading"], "ledger": resources["ledger"]},
    )
    assert result.success
    with session_factory(sqlite_url)() as session:
        row = session.scalars(select(ControlCommandRow)).one()
    assert (row.action, row.symbol, row.source, row.requested_by, row.status) == ("forceexit", "BTC/USDT", "dagster", "dagster-ui", "pending")

    bad = trader_control.execute_in_process(
        run_config={"ops": {"queue_trader_control": {"config": {"action": "explode", "reason": "x"}}}},
        resources={"trading": resources["trading"], "ledger": resources["ledger"]}, raise_on_error=False,
    )
    assert not bad.success


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(url: str, token: str | None, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_http_endpoint_needs_its_token_and_queues(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from tradepipe.cli.context import ledger_session_factory
    from tradepipe.trading.control_http import control_app

    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    upgrade(sqlite_url)
    code, _, err = cli("control", "serve")
    assert code == 2 and "control endpoint is off: set TRADEPIPE_CONTROL_TOKEN" in err  # off by default

    settings = load_settings(database_url=sqlite_url)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(control_app(settings, ledger_session_factory(settings), "s3cret-token"), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}/control"
        assert _request(base, None, {"action": "pause", "reason": "x"})[0] == 401
        assert _request(base, "wrong", {"action": "pause", "reason": "x"})[0] == 401
        status, answer = _request(base, "s3cret-token", {"action": "sell-everything", "reason": "x"})
        assert status == 400 and answer["error"].startswith("unknown control 'sell-everything'")
        status, answer = _request(base, "s3cret-token", {"action": "pause", "reason": "on my phone", "requested_by": "bob"})
        assert status == 202 and answer["action"] == "pause" and answer["running"] is False and "never traded" in answer["message"]
        status, listed = _request(base, "s3cret-token")
        assert status == 200 and [(c["action"], c["requested_by"], c["source"], c["status"]) for c in listed["controls"]] == [("pause", "bob", "http", "pending")]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
