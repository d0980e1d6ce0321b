"""[`alerts`] A generic JSON webhook (Slack, Discord, Mattermost accept it) for the events a trader must see.

Sent on a daily-loss halt, a failed trading cycle, a stale weight set and the daily summary. The URL
(TRADEPIPE_WEBHOOK_URL) authorises posting, so it is a secret: a ``dg.EnvVar`` in every environment but
tests, never in a log line, run config shown in the UI, or the database. Without it, alerts are off
(``send`` says so and does nothing).

Delivery never fails the caller: an alert that does not get through (refused, timed out, HTTP 5xx after
the retries) is recorded in ``system_metrics`` as ``alert_undelivered`` and retried, oldest first,
before every later alert and by the alerts sensor, until it goes out.
"""


import logging
from datetime import datetime, timezone
from typing import Any, Mapping

import dagster as dg
from pydantic import Field
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.alerts import alert_seen, mark_retry, pending_undelivered, record_sent, record_undelivered
from tradepipe.adapters.webhook import Delivery, payload, post_json

log = logging.getLogger(__name__)


class AlertsResource(dg.ConfigurableResource):
    webhook_url: str | None = Field(default=None, repr=False)
    """The webhook to POST to; set through TRADEPIPE_WEBHOOK_URL (a secret). Empty: alerts are off."""
    timeout_seconds: float = 5.0
    """Per attempt; a slow chat server never holds a trading cycle longer than attempts x this."""
    attempts: int = 3
    backoff_seconds: float = 0.5

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url)

    def _post(self, body: Mapping[str, Any]) -> Delivery:
        assert self.webhook_url
        return post_json(self.webhook_url, body, timeout_s=self.timeout_seconds, attempts=self.attempts, backoff_s=self.backoff_seconds)

    def send(
        self,
        sessions: sessionmaker[Session],
        event: str,
        text: str,
        details: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> Delivery:
        """Retry what is still undelivered, then send this alert (once per ``key``); record the outcome. Never raises."""
        if not self.enabled:
            return Delivery(False, 0, "alerts are off (TRADEPIPE_WEBHOOK_URL not set)")
        if key is not None and self._seen(sessions, key):
            return Delivery(False, 0, f"already sent ({key})")
        self.retry_undelivered(sessions)
        body = payload(event, text, details)
        delivery = self._post(body)
        if not delivery.delivered:
            log.warning("alert %s not delivered (%s); recorded for retry", event, delivery.error)
        self._record(sessions, event, key, body, delivery)
        return delivery

    @staticmethod
    def _seen(sessions: sessionmaker[Session], key: str) -> bool:
        try:
            with sessions() as session:
                return alert_seen(session, key)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not read sent alerts: %s", type(exc).__name__)
            return False

    def retry_undelivered(self, sessions: sessionmaker[Session]) -> int:
        """Resend recorded alerts, oldest first, stopping at the first that still fails. Returns how many went out."""
        if not self.enabled:
            return 0
        sent = 0
        try:
            with sessions.begin() as session:
                for row in pending_undelivered(session):
                    delivery = self._post(row.tags["body"])
                    now = datetime.now(timezone.utc)
                    mark_retry(row, delivery.attempts, now if delivery.delivered else None, delivery.error)
                    if not delivery.delivered:
                        break
                    sent += 1
        except Exception as exc:  # noqa: BLE001 - the ledger being busy must not stop an alert
            log.warning("could not retry undelivered alerts: %s", type(exc).__name__)
        return sent

    @staticmethod
    def _record(sessions: sessionmaker[Session], event: str, key: str | None, body: Mapping[str, Any], delivery: Delivery) -> None:
        now = datetime.now(timezone.utc)
        try:
            with sessions.begin() as session:
                if delivery.delivered:
                    record_sent(session, event, key, delivery.attempts, now)
                else:
                    record_undelivered(session, body, delivery.attempts, delivery.error or "unknown", now, key)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not record an undelivered alert: %s", type(exc).__name__)
