"""What the UI's Resources page shows for the code location: every outside system, its non-secret
configuration, and never a secret (the secrets are dg.EnvVar: the page shows the variable's name)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from tradepipe.resources import RESOURCE_KEYS, BrokerResource, LedgerDatabase, TradingConfigResource, build_resources
from tradepipe.config.settings import SECRET_FIELDS, Settings, load_settings

SECRETS = {
    "TRADEPIPE_EXCHANGE_API_KEY": "key-0f1e2d3c4b5a-NEVER-SHOWN",
    "TRADEPIPE_EXCHANGE_SECRET": "secret-9a8b7c6d5e4f-NEVER-SHOWN",
    "TRADEPIPE_SMTP_PASSWORD": "smtp-pw-NEVER-SHOWN",
}
DATABASE_PASSWORD = "db-pw-NEVER-SHOWN"
REDIS_PASSWORD = "redis-pw-NEVER-SHOWN"

# What the webserver serves for the Resources page: the repository snapshot of the code location.
# A configured value is its JSON text, or an environment variable's name.
PROBE = """
import json
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from tradepipe.definitions import defs

snap = RepositorySnap.from_def(defs.get_repository_def())
shown = lambda value: json.loads(value) if isinstance(value, str) else {"env_var": value.name}
print(json.dumps({
    "snapshot": serialize_value(snap),
    "resources": {r.name: {k: shown(v) for k, v in r.configured_values.items()} for r in snap.resources},
}))
"""


def _code_location_snapshot(tmp_path: Path) -> dict:
    env = {
        **os.environ,
        **SECRETS,
        "TRADEPIPE_HOME": str(tmp_path),
        "TRADEPIPE_BROKER": "ccxt",
        "TRADEPIPE_MARKET_SOURCE": "ccxt",
        "TRADEPIPE_EXCHANGE": "binance",
        "TRADEPIPE_SMTP_HOST": "smtp.example.org",
        "TRADEPIPE_DATABASE_URL": f"postgresql://tradepipe:{DATABASE_PASSWORD}@db.example.org:5432/tradepipe",
        "TRADEPIPE_REDIS_URL": f"redis://:{REDIS_PASSWORD}@cache.example.org:6379/0",
    }
    completed = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=tmp_path, check=True)
    return json.loads(completed.stdout)


def test_the_resources_page_lists_every_outside_system_and_no_secret(tmp_path: Path) -> None:
    shown = _code_location_snapshot(tmp_path)
    everything = shown["snapshot"]
    for secret in [*SECRETS.values(), DATABASE_PASSWORD, REDIS_PASSWORD]:
        assert secret not in everything

    resources = shown["resources"]
    assert set(resources) >= set(RESOURCE_KEYS)
    broker, ledger, trading = resources["broker"], resources["ledger"], resources["trading"]
    # Secrets and URLs that carry credentials are shown as the variable that holds them ...
    assert broker["api_key"] == {"env_var": "TRADEPIPE_EXCHANGE_API_KEY"}
    assert broker["secret"] == {"env_var": "TRADEPIPE_EXCHANGE_SECRET"}
    assert ledger["url"] == trading["database_url"] == {"env_var": "TRADEPIPE_DATABASE_URL"}
    assert resources["weights_cache"]["redis_url"] == trading["redis_url"] == {"env_var": "TRADEPIPE_REDIS_URL"}
    # ... and the rest as it is configured.
    assert (broker["kind"], broker["exchange"], broker["live"]) == ("ccxt", "binance", False)
    assert resources["market"]["source"] == "ccxt" and resources["market"]["symbols"] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert trading["book"] == "main" and trading["smtp_host"] == "smtp.example.org" and trading["fee_bps"] == "10"
    assert not SECRET_FIELDS & set(trading)


def test_the_trading_resource_mirrors_every_setting_but_the_secrets() -> None:
    settings = load_settings(book="paper2", timeframe="4h", fee_bps="7.5", agents="momentum,trend")
    resource = TradingConfigResource.from_settings(settings)
    assert set(resource.model_dump()) == set(Settings.model_fields) - SECRET_FIELDS
    again = resource.settings()
    assert again.model_dump(exclude=set(SECRET_FIELDS)) == settings.model_dump(exclude=set(SECRET_FIELDS))
    assert again.exchange_api_key is None and again.smtp_password is None


def test_the_trading_resource_reads_no_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    resource = TradingConfigResource(book="paper2")
    monkeypatch.setenv("TRADEPIPE_BOOK", "from-the-environment")
    monkeypatch.setenv("TRADEPIPE_EXCHANGE_API_KEY", "not-picked-up")
    assert resource.settings().book == "paper2" and resource.settings().exchange_api_key is None


def test_each_environment_has_its_own_resource_set(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    url = f"postgresql://tradepipe:{DATABASE_PASSWORD}@db.example.org:5432/tradepipe"
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", url)
    settings = load_settings(broker="ccxt", market_source="ccxt")

    deployment = build_resources(settings)  # PostgreSQL: the deployment's set
    assert isinstance(deployment["ledger"].url, dg.EnvVar) and deployment["ledger"].url == "TRADEPIPE_DATABASE_URL"
    assert isinstance(deployment["broker"].api_key, dg.EnvVar)
    assert "NEVER-SHOWN" not in repr(deployment["broker"]) and "NEVER-SHOWN" not in repr(deployment["ledger"])

    monkeypatch.delenv("TRADEPIPE_DATABASE_URL")
    local_settings = load_settings(broker="ccxt", market_source="ccxt")  # make run: SQLite under TRADEPIPE_HOME
    local = build_resources(local_settings)
    assert isinstance(local["ledger"], LedgerDatabase) and local["ledger"].url == local_settings.resolved_database_url
    assert local["ledger"].url.startswith("sqlite:///") and isinstance(local["broker"].api_key, dg.EnvVar)
    monkeypatch.setenv("TRADEPIPE_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert build_resources(load_settings())["weights_cache"].redis_url == "redis://127.0.0.1:6379/0"  # nothing to hide
    monkeypatch.setenv("TRADEPIPE_REDIS_URL", f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0")
    assert build_resources(load_settings())["weights_cache"].redis_url == "TRADEPIPE_REDIS_URL"  # a password: the variable

    test = build_resources(settings, "test")  # plain values: a test needs no environment
    assert test["ledger"].url == url and test["broker"].api_key == SECRETS["TRADEPIPE_EXCHANGE_API_KEY"]
    assert isinstance(test["broker"], BrokerResource)
