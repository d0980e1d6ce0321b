"""Alembic migrations: upgrade/downgrade on both backends, a linear history, no drift from the models."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy.orm import Session

from tradepipe.adapters.db.engine import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    downgrade,
    get_engine,
    sqlite_path,
    upgrade,
)
from tradepipe.adapters.db.models import Base, BookRow
from tradepipe.cli.main import main

MODEL_TABLES = set(Base.metadata.tables)


def _tables(url: str) -> set[str]:
    path = sqlite_path(url)
    if path is not None and not path.exists():  # opening never creates a SQLite file: none, no tables
        return set()
    return set(sa.inspect(get_engine(url)).get_table_names())


def _head() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1
    return heads[0]


def test_models_define_tables() -> None:
    assert {"books", "trading_cycles", "orders", "fills", "positions", "portfolio_snapshots"} <= MODEL_TABLES


def test_upgrade_creates_exactly_the_model_tables_and_downgrade_removes_them(database_url: str) -> None:
    assert _tables(database_url) == set()

    upgrade(database_url)
    assert _tables(database_url) == MODEL_TABLES | {"alembic_version"}
    assert current_revision(database_url) == _head()

    downgrade(database_url, "base")
    # Alembic keeps its own (now empty) bookkeeping table; every tradepipe table is gone.
    assert _tables(database_url) <= {"alembic_version"}
    assert current_revision(database_url) is None

    # The downgrade left nothing behind that stops a fresh upgrade (indexes, constraints, sequences).
    upgrade(database_url)
    assert _tables(database_url) == MODEL_TABLES | {"alembic_version"}


def test_history_is_one_linear_chain() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revisions = list(script.walk_revisions())  # head first, down to base

    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1
    for revision in revisions:
        assert not isinstance(revision.down_revision, (tuple, list)), f"{revision.revision} is a merge"
        assert not revision.branch_labels, f"{revision.revision} starts a branch"
    # Each revision points at the next one down, ending at the base.
    for newer, older in zip(revisions, revisions[1:]):
        assert newer.down_revision == older.revision
    assert revisions[-1].down_revision is None
    # Every migration file is on that chain.
    files = [p for p in (MIGRATIONS_DIR / "versions").glob("*.py") if not p.name.startswith("__")]
    assert len(files) == len(revisions)


def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    upgrade(database_url)

    with get_engine(database_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)

    assert diff == [], f"models differ from migrations; run alembic autogenerate: {diff}"


def test_drift_check_does_see_a_difference(migrated_url: str) -> None:
    """Guards the test above against passing vacuously: a model change must show up in the diff."""
    drifted = sa.MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["books"].append_column(sa.Column("notes", sa.Text(), nullable=True))

    with get_engine(migrated_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, drifted)

    assert [(op[0], op[2], op[3].name) for op in diff] == [("add_column", "books", "notes")]


def test_cli_db_upgrade_creates_sqlite_under_tradepipe_home_and_is_idempotent(tmp_path: Path) -> None:
    database = tmp_path / "home" / "tradepipe.sqlite"  # TRADEPIPE_HOME is tmp_path/home (autouse fixture)
    url = f"sqlite:///{database}"
    assert not database.exists()

    first = CliRunner().invoke(main, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert database.is_file()
    assert f"database at revision {_head()}" in first.stdout
    assert _tables(url) == MODEL_TABLES | {"alembic_version"}

    with Session(get_engine(url)) as session:
        session.add(BookRow(name="main", starting_cash=1000, quote_currency="USDT"))
        session.commit()

    second = CliRunner().invoke(main, ["db", "upgrade"])
    assert second.exit_code == 0, second.output
    assert f"database at revision {_head()}" in second.stdout
    assert _tables(url) == MODEL_TABLES | {"alembic_version"}
    with get_engine(url).connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM alembic_version")) == 1
        assert connection.scalar(sa.text("SELECT name FROM books")) == "main"  # data survived


def test_cli_db_upgrade_and_downgrade_use_tradepipe_database_url(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", database_url)

    up = CliRunner().invoke(main, ["db", "upgrade"])
    assert up.exit_code == 0, up.output
    assert _tables(database_url) == MODEL_TABLES | {"alembic_version"}

    down = CliRunner().invoke(main, ["db", "downgrade", "base"])
    assert down.exit_code == 0, down.output
    assert "database at revision None" in down.stdout
    assert _tables(database_url) <= {"alembic_version"}
