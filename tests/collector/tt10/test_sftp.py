"""The uploader's third protocol, SFTP, against Debian's OpenSSH sshd (its own process):
files arrive whole under their names, an outage delays them and loses none, no file is
sent twice, and a server whose host key is not the one in `known_hosts` gets nothing, not
even the password. The settings' checks and the missing extra need no server."""

import asyncio
import sys
from pathlib import Path

import pytest
import yaml

import collector.tt10
from collector.config import Tt10Settings, Tt10UploadSettings, load_collector
from collector.tt10.ledger import Ledger
from collector.tt10.upload import Tt10Uploader, UploadError
from iotruntime.configfile import ConfigError
from testbed.waiting import free_port, wait_until
from tests.collector.tt10.sshd_server import PASSWORD, USER, SftpServer, host_key
from tests.collector.tt10.station_files import uploader, write

NAMES = [f"KG_PQ_WW01_2026112010{minute}00.txt" for minute in ("00", "05", "10", "15")]


def settings(tmp_path: Path, server: SftpServer, known_hosts: Path | None = None) -> Tt10Settings:
    secret = tmp_path / "sftp.password"
    secret.write_text(PASSWORD + "\n")
    if known_hosts is None:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(server.known_hosts_line())
    return Tt10Settings.model_validate(
        {
            "directory": tmp_path / "tt10",
            "province": "KG",
            "facility": "PQ",
            "upload": {
                "protocol": "sftp",
                "host": "127.0.0.1",
                "port": server.port,
                "username": USER,
                "password_file": secret,
                "known_hosts": known_hosts,
                "remote_dir": str(server.root),
                "scan_every_s": 1,
                "backoff_max_s": 0.5,
                "timeout_s": 5,
            },
        }
    )


@pytest.fixture
def server(tmp_path):
    sshd = SftpServer(free_port(), tmp_path / "sshd")
    sshd.start()
    yield sshd
    sshd.remove()


@pytest.mark.servers
def test_files_arrive_whole_under_their_own_names_over_sftp(tmp_path, server):
    config = settings(tmp_path, server)
    for name in NAMES[:2]:
        write(config.directory, name)
    sender = uploader(config, PASSWORD)
    try:
        assert sender.send_pending() == 2
    finally:
        sender.close()
    # No temporary name is left behind: each was renamed once whole.
    assert sorted(server.files()) == NAMES[:2]
    assert (server.root / NAMES[0]).read_bytes() == (config.directory / NAMES[0]).read_bytes()


@pytest.mark.servers
def test_the_sftp_uploader_resends_after_the_server_returns_and_never_sends_a_file_twice(
    tmp_path, server
):
    config = settings(tmp_path, server)
    write(config.directory, NAMES[0])
    sender = uploader(config, PASSWORD)

    async def outage() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(stop))
        await asyncio.to_thread(wait_until, lambda: NAMES[0] in server.files())
        server.stop()
        for name in NAMES[1:3]:
            write(config.directory, name)
        await asyncio.to_thread(wait_until, lambda: sender.status().link.failures >= 2)
        down = sender.status()
        assert down.link.state == "retrying"
        assert down.pending == 2
        assert down.link.last_error
        server.start()  # the same port, host key and folder
        await asyncio.to_thread(wait_until, lambda: sender.status().pending == 0)
        stop.set()
        await task

    try:
        asyncio.run(asyncio.wait_for(outage(), timeout=60))
        assert sender.status().link.state == "ok"
        assert sender.status().sent == 3
    finally:
        sender.close()
    before = server.files()
    assert sorted(before) == NAMES[:3]

    # A collector restart: a new uploader on the same ledger sends only the new file.
    write(config.directory, NAMES[3])
    restarted = uploader(config, PASSWORD)
    try:
        assert restarted.send_pending() == 1
        assert restarted.send_pending() == 0
    finally:
        restarted.close()
    after = server.files()
    assert sorted(after) == NAMES
    assert {name: after[name] for name in NAMES[:3]} == before


@pytest.mark.servers
def test_a_file_already_on_the_sftp_server_at_its_size_is_recorded_without_a_transfer(
    tmp_path, server
):
    config = settings(tmp_path, server)
    write(config.directory, NAMES[0])
    (server.root / NAMES[0]).write_bytes((config.directory / NAMES[0]).read_bytes())
    there = server.files()
    sender = uploader(config, PASSWORD)
    try:
        assert sender.send_pending() == 1
        assert sender.status().sent == 1
    finally:
        sender.close()
    assert server.files() == there


@pytest.mark.servers
@pytest.mark.parametrize("refuse", ["", "posix-rename"], ids=["posix-rename", "plain-rename"])
def test_a_resend_replaces_the_file_whether_or_not_the_server_offers_posix_rename(tmp_path, refuse):
    server = SftpServer(free_port(), tmp_path / "sshd", refuse=refuse)
    server.start()
    try:
        config = settings(tmp_path, server)
        write(config.directory, NAMES[0])
        sender = uploader(config, PASSWORD)
        try:
            assert sender.send_pending() == 1
            write(config.directory, NAMES[0], "COD\t50.000\tmg/L\t20261120100000\t00\n")
            assert sender.ledger.resend([NAMES[0]], None) == [NAMES[0]]
            assert sender.send_pending() == 1
        finally:
            sender.close()
        assert sorted(server.files()) == [NAMES[0]]
        assert (server.root / NAMES[0]).read_text() == "COD\t50.000\tmg/L\t20261120100000\t00\n"
    finally:
        server.remove()


@pytest.mark.servers
@pytest.mark.parametrize(
    ("known_hosts", "reason"),
    [
        ("empty", "is not in tt10.upload.known_hosts"),
        ("another key", "not the ssh-ed25519 .* of tt10.upload.known_hosts"),
        ("no file", "tt10.upload.known_hosts: cannot read .*: No such file"),
    ],
    ids=["known_hosts empty", "another key in known_hosts", "no known_hosts file"],
)
def test_an_unknown_host_key_is_refused_with_the_reason_and_nothing_is_sent(
    tmp_path, server, known_hosts, reason
):
    path = tmp_path / "known_hosts"
    if known_hosts == "empty":
        path.write_text("")
    elif known_hosts == "another key":
        path.write_text(f"[127.0.0.1]:{server.port} {host_key(tmp_path / 'impostor')}\n")
    config = settings(tmp_path, server, known_hosts=path)
    write(config.directory, NAMES[0])
    refused = uploader(config, PASSWORD)
    try:
        with pytest.raises(UploadError, match=reason):
            refused.send_pending()
        status = refused.status()
        assert status.pending == 1
        assert status.link.state == "retrying"
    finally:
        refused.close()
    assert server.files() == {}
    assert server.logins() == 0  # the password was never sent


def test_sftp_defaults_to_port_22_and_ftp_keeps_21(tmp_path):
    common = {"host": "sftp.example", "username": "pq", "password_file": tmp_path / "pw"}
    sftp = Tt10UploadSettings.model_validate(
        common | {"protocol": "sftp", "known_hosts": tmp_path / "known_hosts"}
    )
    assert sftp.port == 22
    assert Tt10UploadSettings.model_validate(common | {"protocol": "ftps"}).port == 21
    assert Tt10UploadSettings.model_validate(common | {"protocol": "ftp"}).port == 21
    given = common | {"protocol": "sftp", "known_hosts": tmp_path / "kh", "port": 2222}
    assert Tt10UploadSettings.model_validate(given).port == 2222


@pytest.mark.parametrize(
    ("upload", "problem"),
    [
        ({"protocol": "sftp"}, "protocol sftp needs known_hosts"),
        (
            {"protocol": "sftp", "known_hosts": "known_hosts", "ca_file": "ca.crt"},
            "ca_file is for ftps; sftp checks the server by known_hosts",
        ),
        ({"protocol": "ftps", "known_hosts": "known_hosts"}, "known_hosts is for sftp, not ftps"),
    ],
    ids=["sftp without known_hosts", "sftp with ca_file", "ftps with known_hosts"],
)
def test_a_server_check_that_does_not_fit_the_protocol_is_a_config_error(tmp_path, upload, problem):
    body = {
        "tt10": {
            "directory": "tt10",
            "province": "KG",
            "facility": "PQ",
            "upload": {"host": "sftp.example", "username": "pq", "password_file": "pw"} | upload,
        }
    }
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_collector(path)
    assert str(error.value).startswith(f"{path}: tt10.upload: ")
    assert problem in str(error.value)


def test_an_sftp_uploader_without_the_tt10_extra_says_which_extra_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "paramiko", None)  # import paramiko fails
    monkeypatch.delitem(sys.modules, "collector.tt10.sftp", raising=False)
    monkeypatch.delattr(collector.tt10, "sftp", raising=False)
    config = Tt10Settings.model_validate(
        {
            "directory": tmp_path / "tt10",
            "province": "KG",
            "facility": "PQ",
            "upload": {
                "protocol": "sftp",
                "host": "sftp.example",
                "username": "pq",
                "password_file": tmp_path / "pw",
                "known_hosts": tmp_path / "known_hosts",
            },
        }
    )
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        with pytest.raises(
            ValueError, match=r"sftp needs the tt10 extra: pip install '.*\[tt10\]'"
        ):
            Tt10Uploader(config, ledger, "pw")
    finally:
        ledger.close()
