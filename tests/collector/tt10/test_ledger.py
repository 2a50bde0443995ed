"""The uploader's ledger on disk, and `collector tt10 status` and `resend` over it; no
server needed (test_upload.py sends to a real one)."""

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from collector.cli.app import app
from collector.cli.run import _tt10_uploader
from collector.config import load_collector
from collector.tt10.ledger import Ledger, sha256_of

NAMES = [f"KG_PQ_WW01_2026112010{minute}00.txt" for minute in ("00", "05", "10")]


def config_file(tmp_path: Path, password: str | None = "pw") -> Path:  # noqa: S107
    if password is not None:
        (tmp_path / "ftp.password").write_text(password)
    upload = {"host": "ftp.example", "username": "pq", "password_file": "ftp.password"}
    body = {
        "tt10": {"directory": "tt10", "province": "KG", "facility": "PQ", "upload": upload},
    }
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    (tmp_path / "tt10").mkdir()
    for name in NAMES:
        (tmp_path / "tt10" / name).write_text(f"pH\t7.000\tpH\t{name[-18:-4]}\t00\n")
    return path


def test_the_ledger_is_private_and_remembers_what_was_sent_across_a_restart(tmp_path):
    directory = tmp_path / "tt10"
    directory.mkdir()
    (directory / NAMES[0]).write_text("a\n")
    (directory / ".KG_PQ_WW01_20261120100500.txt.partial").write_text("half")
    ledger = Ledger(tmp_path / "ledger.sqlite")
    assert ledger.scan(directory) == 1
    [item] = ledger.pending()
    ledger.sent(item.name, item.sha256)
    ledger.close()
    assert stat.S_IMODE((tmp_path / "ledger.sqlite").stat().st_mode) == 0o600

    again = Ledger(tmp_path / "ledger.sqlite")
    try:
        (directory / NAMES[0]).touch()  # looked at anew, same content
        assert again.scan(directory) == 0
        assert again.pending() == []
        assert [digest for digest, _ in again.sends_of(NAMES[0])] == [sha256_of(b"a\n")]
    finally:
        again.close()


def test_resend_since_marks_the_files_of_that_interval_and_later(tmp_path):
    directory = tmp_path / "tt10"
    directory.mkdir()
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        for name in NAMES:
            (directory / name).write_text(name)
        ledger.scan(directory)
        for item in ledger.pending():
            ledger.sent(item.name, item.sha256)
        assert ledger.resend([], "20261120100500") == NAMES[1:]
        assert [p.name for p in ledger.pending()] == NAMES[1:]
        assert all(p.resend for p in ledger.pending())
    finally:
        ledger.close()


def test_collector_tt10_status_and_resend_on_the_command_line(tmp_path):
    config = config_file(tmp_path)
    runner = CliRunner()
    answer = runner.invoke(app, ["tt10", "resend", "-c", str(config), "--file", "nope.txt"])
    assert answer.exit_code == 2
    assert "not a station data file" in answer.output
    assert "nope.txt" in answer.output

    answer = runner.invoke(app, ["tt10", "resend", "-c", str(config), "--file", NAMES[1]])
    assert answer.exit_code == 0, answer.output
    assert "1 file(s) marked to be sent again" in answer.output

    answer = runner.invoke(app, ["tt10", "status", "-c", str(config), "--json"])
    assert answer.exit_code == 0, answer.output
    state = json.loads(answer.output)
    assert state["pending"] == 3
    assert state["oldest_pending"] == "20261120100000"
    assert state["link"]["state"] == "idle"

    answer = runner.invoke(app, ["tt10", "status", "-c", str(config)])
    assert answer.exit_code == 0, answer.output
    assert "upload to ftps://ftp.example:21/: idle" in answer.output
    assert "0 sent, 3 waiting, oldest interval 20261120100000, 0 held" in answer.output

    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    answer = runner.invoke(app, ["tt10", "resend", "-c", str(config), "--since", since])
    assert answer.exit_code == 0, answer.output
    assert "0 file(s) marked" in answer.output


@pytest.mark.parametrize("password", [None, "  \n"])
def test_a_missing_or_empty_password_file_stops_the_collector_naming_file_and_key(
    tmp_path, capsys, password
):
    config = config_file(tmp_path, password)
    settings = load_collector(config).tt10
    assert settings is not None
    with pytest.raises(typer.Exit):
        _tt10_uploader(config, settings)
    printed = " ".join(capsys.readouterr().out.split())
    assert str(config) in printed
    assert "tt10.upload.password_file" in printed
    assert "ftp.password" in printed
