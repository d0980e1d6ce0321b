"""Settings: defaults, parsing, the .env file, and one readable message per bad value (never a secret)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from tradepipe.cli.main import main
from tradepipe.config.settings import DEFAULT_AGENTS, SettingsError, load_settings

SECRET = "hunter2"


def _error_for(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as excinfo:
        load_settings()
    return str(excinfo.value)


# --- defaults ------------------------------------------------------------------------------------


def test_defaults_are_a_safe_local_paper_setup(tmp_path: Path) -> None:
    settings = load_settings()

    assert settings.home == tmp_path / "home"  # TRADEPIPE_HOME, set by the autouse fixture
    assert settings.database_url is None
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'home' / 'tradepipe.sqlite'}"
    assert settings.redis_url is None
    assert settings.market_source == "synthetic"
    assert settings.resolved_timeframe == "1m"
    assert settings.broker == "paper"
    assert settings.live is False
    assert settings.real_money is False
    assert settings.symbols == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert settings.starting_cash == Decimal("10000")
    assert settings.fee_bps == Decimal("10")
    assert settings.agents == list(DEFAULT_AGENTS)
    assert settings.agent_weights == {}
    assert settings.report_recipients == []
    assert settings.smtp_password is None


def test_without_tradepipe_home_the_database_lives_in_dot_tradepipe_under_the_cwd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TRADEPIPE_HOME")

    settings = load_settings()

    assert settings.resolved_database_url == f"sqlite:///{tmp_path / '.tradepipe' / 'tradepipe.sqlite'}"


def test_default_weights_are_equal_over_the_enabled_agents(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().default_weights == {agent: pytest.approx(0.2) for agent in DEFAULT_AGENTS}

    monkeypatch.setenv("TRADEPIPE_AGENTS", "momentum,trend")
    assert load_settings().default_weights == {"momentum": 0.5, "trend": 0.5}


@pytest.mark.parametrize(
    ("env", "timeframe"),
    [
        ({"TRADEPIPE_MARKET_SOURCE": "synthetic"}, "1m"),
        ({"TRADEPIPE_MARKET_SOURCE": "replay", "TRADEPIPE_REPLAY_DIR": "candles"}, "1h"),
        ({"TRADEPIPE_MARKET_SOURCE": "ccxt"}, "1h"),
        ({"TRADEPIPE_MARKET_SOURCE": "synthetic", "TRADEPIPE_TIMEFRAME": "5m"}, "5m"),
        ({"TRADEPIPE_MARKET_SOURCE": "ccxt", "TRADEPIPE_TIMEFRAME": "4h"}, "4h"),
    ],
)
def test_timeframe_defaults_to_1m_on_synthetic_and_1h_elsewhere(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], timeframe: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert load_settings().resolved_timeframe == timeframe


def test_real_money_needs_both_the_ccxt_broker_and_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_MARKET_SOURCE", "ccxt")
    monkeypatch.setenv("TRADEPIPE_BROKER", "ccxt")
    assert load_settings().real_money is False

    monkeypatch.setenv("TRADEPIPE_LIVE", "1")
    assert load_settings().real_money is True

    monkeypatch.setenv("TRADEPIPE_BROKER", "paper")
    with pytest.raises(SettingsError, match="TRADEPIPE_LIVE=1 needs TRADEPIPE_BROKER=ccxt"):
        load_settings()  # refused, not silently paper


# --- parsing -------------------------------------------------------------------------------------


def test_symbols_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    # ETH/BTC became ETH/USDT here: a symbol quoted in another currency than the book's cash is refused now
    monkeypatch.setenv("TRADEPIPE_SYMBOLS", " BTC/USDT, ETH/USDT ,1INCH/USDT,")

    assert load_settings().symbols == ["BTC/USDT", "ETH/USDT", "1INCH/USDT"]


def test_agent_weights_are_parsed_and_normalised_over_enabled_agents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_AGENT_WEIGHTS", "momentum=0.3, trend=0.7")

    settings = load_settings()

    assert settings.agent_weights == {"momentum": 0.3, "trend": 0.7}
    assert settings.default_weights == {
        "momentum": pytest.approx(0.3),
        "trend": pytest.approx(0.7),
        "mean_reversion": 0.0,
        "breakout": 0.0,
        "sentiment": 0.0,
    }


def test_agent_weights_that_sum_to_one_within_float_error_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_AGENTS", "momentum,trend,breakout")
    monkeypatch.setenv("TRADEPIPE_AGENT_WEIGHTS", "momentum=0.1,trend=0.2,breakout=0.7")  # 0.1+0.2+0.7 != 1.0 in floats

    weights = load_settings().default_weights

    assert weights == {"momentum": pytest.approx(0.1), "trend": pytest.approx(0.2), "breakout": pytest.approx(0.7)}


def test_report_recipients_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_REPORT_RECIPIENTS", "ops@example.com, quant@example.org")

    assert load_settings().report_recipients == ["ops@example.com", "quant@example.org"]


def test_scalar_values_are_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_FEE_BPS", "7.5")
    monkeypatch.setenv("TRADEPIPE_STARTING_CASH", "2500.01")
    monkeypatch.setenv("TRADEPIPE_SEED", "42")
    monkeypatch.setenv("TRADEPIPE_SMTP_STARTTLS", "false")

    settings = load_settings()

    assert settings.fee_bps == Decimal("7.5")
    assert settings.starting_cash == Decimal("2500.01")
    assert settings.seed == 42
    assert settings.smtp_starttls is False


def test_dotenv_in_the_cwd_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The autouse fixture has chdir'd to tmp_path.
    (tmp_path / ".env").write_text(
        "TRADEPIPE_SYMBOLS=ETH/USDT,SOL/USDT\n"
        "TRADEPIPE_FEE_BPS=2\n"
        "TRADEPIPE_REPORT_RECIPIENTS=ops@example.com\n"
    )
    monkeypatch.setenv("TRADEPIPE_FEE_BPS", "3")

    settings = load_settings()

    assert settings.symbols == ["ETH/USDT", "SOL/USDT"]
    assert settings.report_recipients == ["ops@example.com"]
    assert settings.fee_bps == Decimal("3")


def test_a_bad_value_in_dotenv_is_reported_like_an_environment_variable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TRADEPIPE_MARKET_SOURCE=nyse\n")

    with pytest.raises(SettingsError, match="TRADEPIPE_MARKET_SOURCE"):
        load_settings()


# --- bad values: one message naming the variable and what it accepts -----------------------------


@pytest.mark.parametrize(
    ("env", "variable", "accepted"),
    [
        pytest.param(
            {"TRADEPIPE_MARKET_SOURCE": "nyse"},
            "TRADEPIPE_MARKET_SOURCE",
            ["synthetic", "replay", "ccxt"],
            id="unknown-market-source",
        ),
        pytest.param(
            {"TRADEPIPE_FEE_BPS": "-1"}, "TRADEPIPE_FEE_BPS", ["greater than or equal to 0"], id="negative-fee"
        ),
        pytest.param(
            {"TRADEPIPE_DATABASE_URL": "mysql://user@host/db"},
            "TRADEPIPE_DATABASE_URL",
            ["sqlite:///", "postgresql://"],
            id="database-url-wrong-scheme",
        ),
        pytest.param(
            {"TRADEPIPE_DATABASE_URL": "tradepipe.sqlite"},
            "TRADEPIPE_DATABASE_URL",
            ["sqlite:///", "postgresql://"],
            id="database-url-no-scheme",
        ),
        pytest.param(
            {"TRADEPIPE_REDIS_URL": "http://localhost:6379"},
            "TRADEPIPE_REDIS_URL",
            ["redis://host:6379/0", "rediss://"],
            id="redis-url-wrong-scheme",
        ),
        pytest.param(
            {"TRADEPIPE_REDIS_URL": "redis://localhost:6379/zero"},
            "TRADEPIPE_REDIS_URL",
            ["redis://host:6379/0"],
            id="redis-url-bad-db",
        ),
        pytest.param(
            {"TRADEPIPE_SYMBOLS": "BTC/USDT,eth-usdt"},
            "TRADEPIPE_SYMBOLS",
            ["'eth-usdt'", "BASE/QUOTE", "BTC/USDT,ETH/USDT"],
            id="symbol-does-not-parse",
        ),
        pytest.param(
            {"TRADEPIPE_SYMBOLS": " , "}, "TRADEPIPE_SYMBOLS", ["empty", "BASE/QUOTE"], id="no-symbols"
        ),
        pytest.param(
            {"TRADEPIPE_TIMEFRAME": "hourly"}, "TRADEPIPE_TIMEFRAME", ["s, m, h, d, w", "1h"], id="bad-timeframe"
        ),
        pytest.param(
            {"TRADEPIPE_TIMEFRAME": "0m"}, "TRADEPIPE_TIMEFRAME", ["s, m, h, d, w"], id="zero-timeframe"
        ),
        pytest.param(
            {"TRADEPIPE_MARKET_SOURCE": "replay"},
            "TRADEPIPE_REPLAY_DIR",
            ["TRADEPIPE_MARKET_SOURCE=replay"],
            id="replay-without-dir",
        ),
        pytest.param(
            {"TRADEPIPE_MIN_WEIGHT": "0.5", "TRADEPIPE_MAX_WEIGHT": "0.3"},
            "TRADEPIPE_MIN_WEIGHT",
            ["TRADEPIPE_MAX_WEIGHT"],
            id="min-weight-above-max",
        ),
        pytest.param(
            {"TRADEPIPE_BROKER": "ccxt"},
            "TRADEPIPE_BROKER",
            ["TRADEPIPE_MARKET_SOURCE=ccxt"],
            id="ccxt-broker-on-synthetic-market",
        ),
        pytest.param(
            {"TRADEPIPE_AGENT_WEIGHTS": "momentum:0.3"},
            "TRADEPIPE_AGENT_WEIGHTS",
            ["momentum=0.3,trend=0.7"],
            id="agent-weights-do-not-parse",
        ),
        pytest.param(
            {"TRADEPIPE_AGENT_WEIGHTS": "momentum=0.5,astrology=0.5"},
            "TRADEPIPE_AGENT_WEIGHTS",
            ["astrology", "not enabled"],
            id="agent-weights-name-unknown-agent",
        ),
        pytest.param(
            {"TRADEPIPE_AGENT_WEIGHTS": "momentum=0,trend=0"},
            "TRADEPIPE_AGENT_WEIGHTS",
            ["positive sum"],
            id="agent-weights-sum-to-zero",
        ),
        pytest.param(
            {"TRADEPIPE_AGENT_WEIGHTS": "momentum=-1,trend=2"},
            "TRADEPIPE_AGENT_WEIGHTS",
            ["non-negative"],
            id="agent-weights-negative",
        ),
        pytest.param(
            {"TRADEPIPE_AGENT_WEIGHTS": "momentum=nan"},
            "TRADEPIPE_AGENT_WEIGHTS",
            ["finite"],
            id="agent-weights-nan",
        ),
        pytest.param(
            {"TRADEPIPE_LIVE": "maybe"}, "TRADEPIPE_LIVE", ["exactly 0", "or 1"], id="live-not-a-boolean"
        ),
        # strict safety settings
        pytest.param({"TRADEPIPE_LIVE": "yes"}, "TRADEPIPE_LIVE='yes'", ["exactly 0"], id="live-yes-is-not-1"),
        pytest.param({"TRADEPIPE_LIVE": "true"}, "TRADEPIPE_LIVE='true'", ["exactly 0"], id="live-true-is-not-1"),
        pytest.param({"TRADEPIPE_LIVE": "1"}, "TRADEPIPE_LIVE", ["TRADEPIPE_BROKER=ccxt", "paper"], id="live-with-paper-broker"),
        pytest.param(
            {"TRADEPIPE_AGENT_WEIGHTS": "momentum=2"}, "TRADEPIPE_AGENT_WEIGHTS", ["sum to 2", "not 1"], id="agent-weights-sum-above-one"
        ),
        pytest.param(
            {"TRADEPIPE_AGENT_WEIGHTS": "momentum=0.3,trend=0.3"}, "TRADEPIPE_AGENT_WEIGHTS", ["sum to 0.6"], id="agent-weights-sum-below-one"
        ),
        pytest.param(
            {"TRADEPIPE_AGENT_WEIGHTS": "momentum=abc"}, "TRADEPIPE_AGENT_WEIGHTS", ["could not parse 'momentum=abc'"], id="agent-weights-not-a-number"
        ),
    ],
)
def test_bad_value_raises_settings_error_naming_variable_and_accepted_values(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str, accepted: list[str]
) -> None:
    message = _error_for(monkeypatch, **env)

    assert variable in message
    for fragment in accepted:
        assert fragment in message
    assert "Traceback" not in message
    assert "pydantic" not in message.lower()  # no library jargon or documentation links


def test_settings_error_is_a_value_error_without_a_pydantic_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_FEE_BPS", "-1")

    with pytest.raises(ValueError) as excinfo:
        load_settings()

    assert isinstance(excinfo.value, SettingsError)
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__ is True


def test_every_bad_variable_is_reported_on_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error_for(monkeypatch, TRADEPIPE_FEE_BPS="-1", TRADEPIPE_TIMEFRAME="hourly")

    problem_lines = message.splitlines()[1:]
    assert len(problem_lines) == 2
    assert any(line.strip().startswith("TRADEPIPE_FEE_BPS") for line in problem_lines)
    assert any(line.strip().startswith("TRADEPIPE_TIMEFRAME") for line in problem_lines)


# --- secrets never appear ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"TRADEPIPE_DATABASE_URL": f"mysql://user:{SECRET}@host/db"}, id="database-url"),
        pytest.param({"TRADEPIPE_DATABASE_URL": f"user:{SECRET}@host/db"}, id="database-url-without-scheme"),
        pytest.param({"TRADEPIPE_REDIS_URL": f"http://:{SECRET}@host:6379/0"}, id="redis-url"),
        pytest.param(
            {"TRADEPIPE_SMTP_PASSWORD": SECRET, "TRADEPIPE_MARKET_SOURCE": "nyse"}, id="smtp-password-beside-error"
        ),
        pytest.param(
            {"TRADEPIPE_EXCHANGE_SECRET": SECRET, "TRADEPIPE_EXCHANGE_API_KEY": SECRET, "TRADEPIPE_BROKER": "ccxt"},
            id="exchange-credentials-in-cross-field-error",
        ),
    ],
)
def test_a_secret_never_appears_in_an_error_message(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    message = _error_for(monkeypatch, **env)

    assert "TRADEPIPE_" in message
    assert SECRET not in message


def test_secrets_are_masked_in_repr_str_and_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_SMTP_PASSWORD", SECRET)
    monkeypatch.setenv("TRADEPIPE_EXCHANGE_API_KEY", "key-" + SECRET)
    monkeypatch.setenv("TRADEPIPE_EXCHANGE_SECRET", "secret-" + SECRET)

    settings = load_settings()

    for rendered in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.model_dump())):
        assert SECRET not in rendered
    # ...while the code that needs the value can still read it.
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == SECRET
    assert settings.exchange_secret is not None
    assert settings.exchange_secret.get_secret_value() == "secret-" + SECRET


# --- the command line ----------------------------------------------------------------------------


def test_cli_status_with_a_bad_variable_exits_2_with_one_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRADEPIPE_MARKET_SOURCE", "nyse")

    result = CliRunner().invoke(main, ["status"])

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("invalid tradepipe configuration") == 1
    assert "TRADEPIPE_MARKET_SOURCE='nyse'" in result.stderr
    assert "'synthetic', 'replay' or 'ccxt'" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "home").exists()  # nothing was created before the configuration was checked


def test_cli_never_prints_a_secret_from_a_bad_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", f"mysql://user:{SECRET}@host/db")

    result = CliRunner().invoke(main, ["status"])

    assert result.exit_code == 2
    assert "TRADEPIPE_DATABASE_URL" in result.stderr
    assert SECRET not in result.output


def test_shorts_only_on_the_synthetic_paper_market_unless_set() -> None:
    assert load_settings().shorts_allowed is True
    assert load_settings(market_source="replay", replay_dir="/tmp").shorts_allowed is False
    assert load_settings(market_source="ccxt").shorts_allowed is False
    assert load_settings(allow_short=False).shorts_allowed is False
    assert load_settings(market_source="ccxt", allow_short=True).shorts_allowed is True
    with pytest.raises(SettingsError, match="TRADEPIPE_ALLOW_SHORT"):
        load_settings(market_source="ccxt", broker="ccxt", allow_short=True)


# --- strict safety settings are refused in one line -------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"TRADEPIPE_LIVE": "yes"},
        {"TRADEPIPE_LIVE": "1"},  # with the default paper broker
        {"TRADEPIPE_AGENT_WEIGHTS": "momentum=2"},
        {"TRADEPIPE_AGENT_WEIGHTS": "momentum=0.5,astrology=0.5"},
        {"TRADEPIPE_AGENT_WEIGHTS": "momentum=half"},
    ],
    ids=["live-yes", "live-on-paper", "weights-sum-2", "weights-unknown-agent", "weights-do-not-parse"],
)
def test_cli_refuses_an_unsafe_setting_with_one_line(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    from click.testing import CliRunner

    from tradepipe.cli.main import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["status"])

    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith("invalid tradepipe configuration: TRADEPIPE_")


def test_live_accepts_exactly_0_and_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_LIVE", "0")
    assert load_settings().live is False
    monkeypatch.setenv("TRADEPIPE_LIVE", "1")
    monkeypatch.setenv("TRADEPIPE_BROKER", "ccxt")
    monkeypatch.setenv("TRADEPIPE_MARKET_SOURCE", "ccxt")
    assert load_settings().live is True


# --- contradictions and values that would fail every cycle are refused at start ---------------------


@pytest.mark.parametrize(
    ("env", "line"),
    [
        pytest.param(
            {"TRADEPIPE_BROKER": "ccxt", "TRADEPIPE_LIVE": "1", "TRADEPIPE_MARKET_SOURCE": "replay", "TRADEPIPE_REPLAY_DIR": "candles"},
            "TRADEPIPE_LIVE=1 with TRADEPIPE_MARKET_SOURCE=replay: real-money orders must be decided on the exchange's own current "
            "prices, never on recorded candles; set TRADEPIPE_MARKET_SOURCE=ccxt or TRADEPIPE_LIVE=0",
            id="live-on-replay",
        ),
        pytest.param(
            {"TRADEPIPE_SYMBOLS": "BTC/EUR,ETH/USDT"},
            "TRADEPIPE_SYMBOLS BTC/EUR not quoted in TRADEPIPE_QUOTE_CURRENCY=USDT: the book's cash is USDT, so every symbol "
            "must be BASE/USDT (or change TRADEPIPE_QUOTE_CURRENCY)",
            id="symbol-in-another-quote",
        ),
        pytest.param(
            {"TRADEPIPE_MIN_WEIGHT": "0.3"},
            "TRADEPIPE_MIN_WEIGHT=0.3 x 5 agents (TRADEPIPE_AGENTS) = 1.5 > 1: no weight set can give every agent its minimum; "
            "lower it to at most 0.2 or enable fewer agents",
            id="min-weight-above-one-over-n",
        ),
        pytest.param({"TRADEPIPE_SEED": "-1"}, "TRADEPIPE_SEED='-1': Input should be greater than or equal to 0", id="negative-seed"),
        pytest.param(
            {"TRADEPIPE_STARTING_CASH": "1e400"},
            "TRADEPIPE_STARTING_CASH='1e400': Input should be less than or equal to 1E+15",
            id="starting-cash-1e400",
        ),
        pytest.param({"TRADEPIPE_STARTING_CASH": "inf"}, "TRADEPIPE_STARTING_CASH='inf': Input should be a finite number", id="starting-cash-inf"),
        pytest.param({"TRADEPIPE_STARTING_CASH": "nan"}, "TRADEPIPE_STARTING_CASH='nan': Input should be a finite number", id="starting-cash-nan"),
        pytest.param({"TRADEPIPE_MIN_SHARPE": "nan"}, "TRADEPIPE_MIN_SHARPE='nan': Input should be a finite number", id="min-sharpe-nan"),
        pytest.param(
            {"TRADEPIPE_AGENTS": ""},
            "TRADEPIPE_AGENTS='': could not use an empty list: name at least one agent, e.g. momentum,trend (unset: all five)",
            id="no-agents",
        ),
        pytest.param(
            {"TRADEPIPE_QUOTE_CURRENCY": "usdt"},
            "TRADEPIPE_QUOTE_CURRENCY='usdt': String should match pattern '^[A-Z0-9]{2,10}$'",
            id="quote-currency-lower-case",
        ),
    ],
)
def test_a_contradiction_or_a_value_that_fails_every_cycle_is_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], line: str
) -> None:
    message = _error_for(monkeypatch, **env)

    assert message == f"invalid tradepipe configuration: {line}"


def test_the_same_settings_on_their_own_market_or_quote_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    live = load_settings(broker="ccxt", live=True, market_source="ccxt")
    assert live.real_money
    assert load_settings(symbols="BTC/EUR,ETH/EUR", quote_currency="EUR").symbols == ["BTC/EUR", "ETH/EUR"]
    assert load_settings(min_weight=0.2).min_weight == 0.2  # 5 x 0.2 = 1: exactly one weight set, equal
    assert load_settings(seed=0).seed == 0 and load_settings(starting_cash="1e15").starting_cash == Decimal("1e15")
