"""The alerts webhook against a real HTTP server on loopback (http.server in a thread), and a refused port.

The resource is used as the Dagster layer uses it: alerts that do not get through are recorded in the
ledger's system_metrics and go out on a later send; nothing raises; the URL appears nowhere.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from sqlalchemy import select

from tradepipe.adapters.db.engine import session_factory, upgrade
from tradepipe.adapters.db.models import SystemMetricRow
from tradepipe.adapters.webhook import post_json
from tradepipe.resources.alerts import AlertsResource


class Hook:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.statuses: list[int] = []  # replies to give, in order; then 200
        self.delay_s = 0.0


@pytest.fixture
def hook() -> Iterator[tuple[str, Hook]]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if state.delay_s:
                threading.Event().wait(state.delay_s)
            status = state.statuses.pop(0) if state.statuses else 200
            if status == 200:
                state.bodies.append(body)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/SECRET-TOKEN", state
    finally:
        server.shutdown()
        server.server_close()


def refused_url() -> str:
    with socket.socket() as s:  # a port nobody listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/SECRET-TOKEN"


def test_an_alert_arrives_as_json_that_slack_discord_and_mattermost_read(hook: tuple[str, Hook]) -> None:
    url, state = hook

    delivery = post_json(url, {"text": "halted", "content": "halted", "event": "daily_loss_halt", "details": {"equity": "9700.00"}})

    assert delivery.delivered and delivery.attempts == 1
    assert state.bodies == [{"text": "halted", "content": "halted", "event": "daily_loss_halt", "details": {"equity": "9700.00"}}]


def test_server_errors_are_retried_and_client_errors_are_not(hook: tuple[str, Hook]) -> None:
    url, state = hook
    state.statuses = [503, 500]
    sleeps: list[float] = []

    assert post_json(url, {"text": "x"}, sleep=sleeps.append).attempts == 3
    assert sleeps == [0.5, 1.0] and len(state.bodies) == 1

    state.statuses = [404]
    refused = post_json(url, {"text": "y"}, sleep=sleeps.append)
    assert (refused.delivered, refused.attempts, refused.error) == (False, 1, "HTTP 404 Not Found")


def test_a_refused_connection_is_reported_without_the_url() -> None:
    url = refused_url()

    delivery = post_json(url, {"text": "x"}, attempts=2, sleep=lambda s: None)

    assert (delivery.delivered, delivery.attempts, delivery.error) == (False, 2, "connection refused")
    assert "SECRET-TOKEN" not in repr(delivery)


def test_a_slow_server_times_out(hook: tuple[str, Hook]) -> None:
    url, state = hook
    state.delay_s = 1.0

    delivery = post_json(url, {"text": "x"}, timeout_s=0.2, attempts=1)

    assert (delivery.delivered, delivery.error) == (False, "timed out")


def test_undelivered_alerts_are_recorded_then_retried_never_raised(
    sqlite_url: str, hook: tuple[str, Hook], caplog: pytest.LogCaptureFixture
) -> None:
    upgrade(sqlite_url)
    sessions = session_factory(sqlite_url)
    down = AlertsResource(webhook_url=refused_url(), attempts=2, backoff_seconds=0)

    failed = down.send(sessions, "trading_cycle_failed", "cycle failed", {"run_id": "abc"})

    assert not failed.delivered
    with sessions() as session:
        (row,) = session.scalars(select(SystemMetricRow).where(SystemMetricRow.metric_name == "alert_undelivered")).all()
        assert row.tags["event"] == "trading_cycle_failed" and row.tags["error"] == "connection refused"
        assert row.tags["delivered_at"] is None and row.value == 2
        assert "SECRET-TOKEN" not in json.dumps(row.tags)

    url, state = hook
    up = AlertsResource(webhook_url=url, backoff_seconds=0)
    assert up.send(sessions, "daily_summary", "summary").delivered

    assert [b["event"] for b in state.bodies] == ["trading_cycle_failed", "daily_summary"]  # the old one first
    with sessions() as session:
        (row,) = session.scalars(select(SystemMetricRow).where(SystemMetricRow.metric_name == "alert_undelivered")).all()
        assert row.tags["delivered_at"] is not None and row.value == 3
    assert up.retry_undelivered(sessions) == 0  # sent once, never twice
    assert "SECRET-TOKEN" not in caplog.text


def test_without_a_url_alerts_are_off(sqlite_url: str) -> None:
    upgrade(sqlite_url)

    delivery = AlertsResource().send(session_factory(sqlite_url), "x", "y")

    assert not delivery.delivered and "TRADEPIPE_WEBHOOK_URL" in (delivery.error or "")


def test_the_url_is_an_env_var_secret_in_the_code_location(monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from tradepipe.resources import build_resources
    from tradepipe.config.settings import load_settings

    monkeypatch.setenv("TRADEPIPE_WEBHOOK_URL", "https://hooks.example.com/SECRET-TOKEN")
    settings = load_settings()

    alerts = build_resources(settings)["alerts"]

    assert isinstance(alerts.webhook_url, dg.EnvVar) and alerts.webhook_url.env_var_name == "TRADEPIPE_WEBHOOK_URL"
    assert "SECRET-TOKEN" not in repr(settings) and "SECRET-TOKEN" not in repr(alerts)


def test_an_alert_with_a_key_goes_out_once(sqlite_url: str, hook: tuple[str, Hook]) -> None:
    upgrade(sqlite_url)
    sessions = session_factory(sqlite_url)
    url, state = hook
    alerts = AlertsResource(webhook_url=url)

    first = alerts.send(sessions, "daily_loss_halt", "halted", key="halt:main:2026-12-02")
    again = alerts.send(sessions, "daily_loss_halt", "halted", key="halt:main:2026-12-02")

    assert first.delivered and not again.delivered and len(state.bodies) == 1
