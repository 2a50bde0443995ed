"""A real FTP (or explicit FTPS) server for the uploader's tests: pyftpdlib in a process of
its own, so a test can take it away and bring it back on the same port and folder, as an
authority's server goes down and returns. Every file it receives is logged, one name a
line, so a test can count how often each file was sent."""

import argparse
import subprocess
import sys
from pathlib import Path

from testbed.waiting import wait_for_port

USER = "kg-authority"
PASSWORD = "s3cret-for-tests"  # noqa: S105 - a test server's


def serve(port: int, root: Path, log: Path, cert: Path | None) -> None:
    """Imported here, in the server's process: the tests' own process never loads it."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
    from pyftpdlib.servers import FTPServer

    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(root), perm="elradfmwMT")
    base = TLS_FTPHandler if cert else FTPHandler

    class Logged(base):  # type: ignore[valid-type,misc]
        def on_file_received(self, file: str) -> None:
            with log.open("a", encoding="utf-8") as out:
                out.write(Path(file).name + "\n")

    Logged.authorizer = authorizer
    if cert is not None:
        Logged.certfile = str(cert)
        Logged.tls_control_required = True
        Logged.tls_data_required = True
    FTPServer(("127.0.0.1", port), Logged).serve_forever()


class FtpServer:
    """The server process: `start`, `stop`, `start` again on the same port and folder."""

    def __init__(self, port: int, root: Path, cert: Path | None = None) -> None:
        self.port = port
        self.root = root
        self.log = root.parent / f"{root.name}-received.log"
        self.cert = cert
        self._process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        args = [sys.executable, "-m", "tests.collector.tt10.ftp_server", str(self.port)]
        args += [str(self.root), str(self.log)] + ([str(self.cert)] if self.cert else [])
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def received(self) -> list[str]:
        """Names of the files stored, in order, one entry per transfer."""
        if not self.log.exists():
            return []
        return self.log.read_text(encoding="utf-8").split()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("root", type=Path)
    parser.add_argument("log", type=Path)
    parser.add_argument("cert", type=Path, nargs="?")
    options = parser.parse_args()
    serve(options.port, options.root, options.log, options.cert)
