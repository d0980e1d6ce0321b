"""``tradepipe --help`` lists every command without importing it, and ``status`` answers without SQLAlchemy,
pydantic, numpy, pandas or Dagster when only the ledger's variables are set (and without pandas or Dagster always)."""

from __future__ import annotations

import os
import subprocess
import sys

import click

from tradepipe.cli.main import COMMANDS, main
from tradepipe.config.settings import DEFAULT_AGENTS

HEAVY = ("sqlalchemy", "pandas", "numpy", "dagster", "pydantic")


def loaded_after(*args: str, env: dict[str, str] | None = None, printed: str = "") -> list[str]:
    """The heavy packages a fresh interpreter has imported after running ``tradepipe ARGS`` (which printed ``printed``)."""
    code = (
        "import sys\nfrom tradepipe.cli.main import main\n"
        f"try:\n    main({list(args)!r})\nexcept SystemExit:\n    pass\n"
        f"print('LOADED:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert printed in result.stdout, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("LOADED:")]
    return [m for m in line.removeprefix("LOADED:").split(",") if m]


def test_the_command_table_matches_the_commands() -> None:
    context = click.Context(main)
    for name, (_, _, short_help) in COMMANDS.items():
        command = main.get_command(context, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=1000) == short_help, name


def test_help_imports_no_heavy_package_and_status_no_pandas_or_dagster(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert loaded_after("--help") == []
    loaded = loaded_after("status")  # no ledger here: the one-line error path, after settings and the database check
    assert "pandas" not in loaded and "dagster" not in loaded


def test_status_on_a_ledger_loads_no_heavy_package(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tradepipe.adapters.db.engine import upgrade

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade(url)
    env = {**os.environ, "TRADEPIPE_DATABASE_URL": url}
    assert loaded_after("status", env=env, printed="tradepipe status — book 'main'") == []
    assert loaded_after("status", "--json", env={**env, "TRADEPIPE_SEED": "8"}, printed='"book": "main"') == ["pydantic"]  # the full settings, still no ORM


def test_the_default_agents_exist() -> None:
    from tradepipe.core.agents import AGENTS

    assert set(DEFAULT_AGENTS) <= set(AGENTS)  # preflight trusts the default set without importing the agents
