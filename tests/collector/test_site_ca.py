"""Issue #25, item 7: the site CA and the broker's certificate made by `collector site-ca`,
kept when run again, and a real TLS handshake with them, as a box makes it."""

import socket
import ssl
import stat
import threading

from iotruntime.certificates import issued_by
from testbed.processes import run_cli


def handshake(folder, host: str, stem: str) -> str:
    """A TLS server with the broker's pair and a client that trusts only the site CA and
    checks the host name: the negotiated version, or the error."""
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(folder / f"{stem}.crt", folder / f"{stem}.key")
    client_side = ssl.create_default_context(cafile=str(folder / "site-ca.crt"))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve() -> None:
            connection, _ = listener.accept()
            try:
                with server_side.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection(listener.getsockname()) as raw:
            try:
                with client_side.wrap_socket(raw, server_hostname=host) as tls:
                    return str(tls.version())
            except ssl.SSLError as exc:
                return f"refused: {exc.reason}"
            finally:
                thread.join(5)


def test_the_site_ca_signs_a_broker_certificate_boxes_accept_and_is_kept(tmp_path):
    out = tmp_path / "pki"
    made = run_cli("collector", "site-ca", "--out", str(out), "--broker-host", "127.0.0.1")
    assert made.returncode == 0, made.stdout + made.stderr
    assert stat.S_IMODE((out / "site-ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "broker.key").stat().st_mode) == 0o600
    ca = (out / "site-ca.crt").read_bytes()
    assert issued_by((out / "broker.crt").read_bytes(), ca)
    assert handshake(out, "127.0.0.1", "broker").startswith("TLSv1.")

    again = run_cli(
        "collector", "site-ca", "--out", str(out), "--broker-host", "127.0.0.1",
        "--broker-host", "localhost",
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "site CA kept" in again.stdout
    assert (out / "site-ca.crt").read_bytes() == ca
    assert handshake(out, "localhost", "broker-localhost").startswith("TLSv1.")
    assert handshake(out, "broker.elsewhere", "broker").startswith("refused")


def test_half_a_site_ca_or_an_unknown_group_is_refused(tmp_path):
    out = tmp_path / "pki"
    out.mkdir()
    (out / "site-ca.crt").write_text("only the certificate")
    half = run_cli("collector", "site-ca", "--out", str(out), "--broker-host", "b1")
    assert half.returncode == 2
    assert "holds half a site CA" in half.stdout
    group = run_cli(
        "collector", "site-ca", "--out", str(tmp_path / "x"), "--broker-host", "b1",
        "--group", "no-such-group-here",
    )  # fmt: skip
    assert group.returncode == 2
    assert "no group 'no-such-group-here'" in group.stdout
