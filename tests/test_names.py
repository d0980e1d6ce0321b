"""Names are data: a book, run or file name is one path component under TRADEPIPE_HOME, never a path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tradepipe.cli.main import main as cli
from tradepipe.config.names import NameRefused, check_name, path_under_home

RULE = "use 1 to 64 letters, digits, '_', '.' or '-', not starting with '.'"


@pytest.mark.parametrize("name", ["backtest", "bt-2019.v2", "A_b-c.d", "x" * 64, "_private", "2019"])
def test_plain_names_are_accepted(name: str) -> None:
    assert check_name(name, "book") == name


@pytest.mark.parametrize(
    "name", ["", ".", "..", ".hidden", "../../outside/evil", "a/b", "a\\b", "x" * 65, "with space", "bt:1", "naïve", "a\x00b", "~root"]
)
def test_a_name_that_is_not_one_safe_path_component_is_refused_in_one_line(name: str) -> None:
    with pytest.raises(NameRefused) as refused:
        check_name(name, "book")
    assert str(refused.value).endswith(f": {RULE}") and "\n" not in str(refused.value)


def test_files_are_written_only_under_the_home_even_through_a_link(tmp_path: Path) -> None:
    home, outside = tmp_path / "home", tmp_path / "outside"
    (home / "charts").mkdir(parents=True)
    outside.mkdir()
    assert path_under_home(home, "charts", "main", "BTC-USDT.html") == (home / "charts" / "main" / "BTC-USDT.html").resolve()
    os.symlink(outside, home / "charts" / "evil")
    with pytest.raises(NameRefused, match=r"is outside TRADEPIPE_HOME .*: nothing is written there"):
        path_under_home(home, "charts", "evil", "x.html")
    with pytest.raises(NameRefused, match="is outside TRADEPIPE_HOME"):
        path_under_home(home, "..", "outside")


def test_backtest_refuses_a_book_name_that_is_a_path(tmp_path: Path) -> None:
    replay = tmp_path / "candles"
    replay.mkdir()
    (replay / "BTC_USDT-1h.csv").write_text("timestamp,open,high,low,close,volume\n")

    result = CliRunner().invoke(cli, ["backtest", "--replay-dir", str(replay), "--book", "../../outside/evil", "--symbols", "BTC/USDT"])

    assert result.exit_code == 2
    assert result.output == f"backtest refused: book '../../outside/evil': {RULE}\n"
    assert not (tmp_path / "outside").exists() and not (tmp_path / "home").exists()  # nothing written, no ledger made


def test_backtest_refuses_a_book_name_longer_than_64(tmp_path: Path) -> None:
    replay = tmp_path / "candles"
    replay.mkdir()
    result = CliRunner().invoke(cli, ["backtest", "--replay-dir", str(replay), "--book", "b" * 65])
    assert result.exit_code == 2 and result.output.startswith("backtest refused: book 'bbbb") and result.output.count("\n") == 1


def test_walkforward_refuses_a_run_name_that_is_a_path(tmp_path: Path) -> None:
    data = tmp_path / "candles"
    data.mkdir()
    result = CliRunner().invoke(cli, ["walkforward", "--data", str(data), "--name", "../escape", "--symbols", "BTC/USDT", "--quiet"])
    assert result.exit_code == 2
    assert result.output == f"walkforward refused: name '../escape': {RULE}\n"
    assert not (tmp_path / "escape").exists()


def test_a_report_file_name_and_a_chart_path_are_checked(tmp_path: Path) -> None:
    from tradepipe.reports.day_charts import chart_path
    from tradepipe.reports.service import write_files

    with pytest.raises(NameRefused, match="report name '../x-2026-12-07T1000'"):
        write_files(tmp_path, "../x-2026-12-07T1000", "{}", "<html></html>")
    assert list(tmp_path.iterdir()) == []
    assert chart_path(tmp_path, "main", "BTC/USDT", "2026-12-07") == (tmp_path / "charts/main/2026-12-07/BTC-USDT.html").resolve()
    with pytest.raises(NameRefused, match="book '..'"):
        chart_path(tmp_path, "..", "BTC/USDT", "2026-12-07")
