"""The uploader against a real FTP server (pyftpdlib, its own process): files arrive whole
under their names, an outage delays them and loses none, and no file is sent twice, not
after the server returns, not after a collector restart; `resend` sends one again."""

import asyncio
import time
from pathlib import Path

import pytest

from collector.config import Tt10Settings
from collector.tt10.upload import UploadError
from iotruntime.certificates import create_ca, issue_server
from testbed.waiting import free_port, wait_until
from tests.collector.tt10.ftp_server import PASSWORD, USER, FtpServer
from tests.collector.tt10.station_files import uploader, write

pytestmark = pytest.mark.servers  # every test starts an FTP server

NAMES = [f"KG_PQ_WW01_2026112010{minute}00.txt" for minute in ("00", "05", "10", "15")]


def settings(tmp_path: Path, port: int, **upload: object) -> Tt10Settings:
    secret = tmp_path / "ftp.password"
    secret.write_text(PASSWORD + "\n")
    return Tt10Settings.model_validate(
        {
            "directory": tmp_path / "tt10",
            "province": "KG",
            "facility": "PQ",
            "upload": {
                "protocol": "ftp",
                "host": "127.0.0.1",
                "port": port,
                "username": USER,
                "password_file": secret,
                "scan_every_s": 1,
                "backoff_max_s": 0.5,
                "timeout_s": 5,
            }
            | upload,
        }
    )


@pytest.fixture
def server(tmp_path):
    ftp = FtpServer(free_port(), tmp_path / "authority")
    ftp.start()
    yield ftp
    ftp.stop()


def test_files_arrive_whole_under_their_own_names(tmp_path, server):
    config = settings(tmp_path, server.port)
    for name in NAMES[:2]:
        write(config.directory, name)
    sender = uploader(config, PASSWORD)
    try:
        assert sender.send_pending() == 2
    finally:
        sender.close()
    assert sorted(p.name for p in server.root.iterdir()) == NAMES[:2]
    assert (server.root / NAMES[0]).read_bytes() == (config.directory / NAMES[0]).read_bytes()
    # Each went up under a temporary name first, renamed once whole.
    assert server.received() == [n + ".part" for n in NAMES[:2]]


def test_the_uploader_resends_after_the_server_returns_and_never_sends_a_file_twice(
    tmp_path, server
):
    config = settings(tmp_path, server.port)
    write(config.directory, NAMES[0])
    sender = uploader(config, PASSWORD)

    async def outage() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(stop))
        await asyncio.to_thread(wait_until, lambda: (server.root / NAMES[0]).exists())
        server.stop()
        for name in NAMES[1:3]:
            write(config.directory, name)
        # The uploader notices, records the failure and keeps trying with backoff.
        await asyncio.to_thread(wait_until, lambda: sender.status().link.failures >= 2)
        down = sender.status()
        assert down.link.state == "retrying"
        assert down.pending == 2
        assert down.link.last_error
        server.start()
        await asyncio.to_thread(wait_until, lambda: sender.status().pending == 0)
        stop.set()
        await task

    try:
        asyncio.run(asyncio.wait_for(outage(), timeout=60))
        back = sender.status()
        assert back.link.state == "ok"
        assert back.sent == 3
    finally:
        sender.close()
    assert sorted(p.name for p in server.root.iterdir()) == NAMES[:3]

    # A collector restart: a new uploader on the same ledger sends nothing again...
    write(config.directory, NAMES[3])
    restarted = uploader(config, PASSWORD)
    try:
        assert restarted.send_pending() == 1
        assert restarted.send_pending() == 0
    finally:
        restarted.close()
    assert sorted(server.received()) == sorted(n + ".part" for n in NAMES)


def test_a_file_on_the_server_already_is_not_sent_again_after_a_lost_ledger_commit(
    tmp_path, server
):
    """A collector stopped after the rename but before the ledger's commit finds the file
    on the server at its size, and records it as sent without a second transfer."""
    config = settings(tmp_path, server.port)
    write(config.directory, NAMES[0])
    (server.root / NAMES[0]).write_bytes((config.directory / NAMES[0]).read_bytes())
    sender = uploader(config, PASSWORD)
    try:
        assert sender.send_pending() == 1
        assert sender.status().sent == 1
    finally:
        sender.close()
    assert server.received() == []


def test_resend_sends_a_file_again_and_a_changed_file_waits_for_it(tmp_path, server):
    config = settings(tmp_path, server.port)
    write(config.directory, NAMES[0])
    write(config.directory, NAMES[1])
    sender = uploader(config, PASSWORD)
    try:
        assert sender.send_pending() == 2
        # Rewritten with late data: the authority has a version, so this one is held.
        write(config.directory, NAMES[1], "COD\t50.000\tmg/L\t20261120100500\t00\n")
        time.sleep(0.01)
        assert sender.send_pending() == 0
        assert sender.status().held_names == (NAMES[1],)
        assert sender.ledger.resend([NAMES[0], NAMES[1]], None) == [NAMES[0], NAMES[1]]
        assert sender.send_pending() == 2
        assert sender.status().held == 0
    finally:
        sender.close()
    assert (server.root / NAMES[1]).read_text() == "COD\t50.000\tmg/L\t20261120100500\t00\n"
    assert server.received().count(NAMES[1] + ".part") == 2


def test_ftps_checks_the_server_certificate_and_protects_the_data(tmp_path):
    ca = create_ca("test authority CA")
    issued = issue_server(ca, "127.0.0.1")
    pem = tmp_path / "server.pem"
    pem.write_bytes(issued.cert_pem + issued.key_pem)
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.cert_pem)
    server = FtpServer(free_port(), tmp_path / "authority", cert=pem)
    server.start()
    try:
        config = settings(tmp_path, server.port, protocol="ftps", ca_file=ca_file)
        write(config.directory, NAMES[0])
        sender = uploader(config, PASSWORD)
        try:
            assert sender.send_pending() == 1
        finally:
            sender.close()
        assert (server.root / NAMES[0]).exists()

        other = tmp_path / "other-ca.crt"
        other.write_bytes(create_ca("someone else").cert_pem)
        wrong = settings(tmp_path, server.port, protocol="ftps", ca_file=other)
        write(wrong.directory, NAMES[1])
        refused = uploader(wrong, PASSWORD)
        try:
            with pytest.raises(UploadError, match="CERTIFICATE_VERIFY_FAILED"):
                refused.send_pending()
            assert refused.status().pending == 1
        finally:
            refused.close()
    finally:
        server.stop()
