"""Redaction masks passwords, keys, tokens and signatures, and only those: a user name stays readable."""

from __future__ import annotations

import logging

import pytest

from tradepipe.core.redaction import redact

KEY, SIGNATURE = "dummy-api-key-0123456789", "9f2b4c0e77aa"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://tradepipe@db.example.org:5432/ledger", "postgresql://tradepipe@db.example.org:5432/ledger"),
        ("could not connect to postgresql://postgres@127.0.0.1/x", "could not connect to postgresql://postgres@127.0.0.1/x"),
        ("postgresql://trader:pw@db:5432/x", "postgresql://***@db:5432/x"),
        ("redis://:pw@cache:6379/0", "redis://***@cache:6379/0"),
        (
            f"GET https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature={SIGNATURE}, Request: "
            f"{{'X-MBX-APIKEY': '{KEY}', 'Content-Type': 'application/x-www-form-urlencoded'}} None",
            "GET https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=*** Request: "
            "{'X-MBX-APIKEY': '***', 'Content-Type': 'application/x-www-form-urlencoded'} None",
        ),
        ('{"apiKey": "k-1", "secret": "s-2", "password": "p-3", "symbol": "BTC/USDT"}', '{"apiKey": "***", "secret": "***", "password": "***", "symbol": "BTC/USDT"}'),
        ("{'OK-ACCESS-SIGN': 'c2ln', 'OK-ACCESS-PASSPHRASE': 'pp'}", "{'OK-ACCESS-SIGN': '***', 'OK-ACCESS-PASSPHRASE': '***'}"),
        ("trader@example.com signed in", "trader@example.com signed in"),
    ],
)
def test_only_secrets_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_a_known_url_without_a_password_masks_nothing() -> None:
    url = "postgresql://postgres@127.0.0.1:5432/ledger"
    # the user name "postgres" is also the start of "postgresql": masking it gave "***ql://***@..."
    assert redact(f"the ledger database at {url} is down", url) == f"the ledger database at {url} is down"


def test_every_log_record_is_redacted_whoever_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    import tradepipe  # noqa: F401 - installs the record factory

    with caplog.at_level(logging.DEBUG, logger="ccxt.base.exchange"):
        logging.getLogger("ccxt.base.exchange").debug(
            "%s %s, Request: %s %s", "GET", f"https://api.binance.com/api/v3/account?timestamp=1&signature={SIGNATURE}",
            {"X-MBX-APIKEY": KEY}, None,
        )
    (record,) = caplog.records
    assert record.getMessage() == "GET https://api.binance.com/api/v3/account?timestamp=1&signature=*** Request: {'X-MBX-APIKEY': '***'} None"
