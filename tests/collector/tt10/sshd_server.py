"""A real SFTP server for the uploader's tests: Debian's OpenSSH sshd in the foreground
(`-D -e`), with its own config and a host key made for the test, on a loopback port, so a
test can stop it and start it again on the same port, key and folder.

The login is what an authority usually gives, a user name and a password. sshd checks a
password against the system's accounts, so a system user without a shell is made for the
tests (once; its password is set on every run) and the tests need root. Each server's
folder is a fresh one in that user's home, owned by the user, removed by `remove`."""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from testbed.waiting import wait_for_port

SSHD = Path("/usr/sbin/sshd")
USER = "pq-tt10-sftp"
PASSWORD = "s3cret-for-sftp-tests"  # noqa: S105 - a test server's
HOME = Path("/var/lib") / USER


def ensure_user() -> None:
    """The test user with its password, and sshd's privilege separation folder, which
    Debian makes only when the ssh service starts."""
    if not SSHD.exists():
        pytest.fail("sshd is not installed: run `make test`, which installs openssh-server")
    if os.geteuid() != 0:
        pytest.fail("the SFTP tests need root: sshd checks passwords of system accounts")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        home = ["--create-home", "--home-dir", str(HOME), "--shell", "/usr/sbin/nologin"]
        subprocess.run(["useradd", "--system", *home, USER], check=True)
    subprocess.run(["chpasswd"], input=f"{USER}:{PASSWORD}\n", text=True, check=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)


def host_key(path: Path) -> str:
    """Make an ed25519 key pair at `path`; returns the public key, `type base64`."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    kind, key = path.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {key}"


class SftpServer:
    """sshd serving only SFTP to the test user: `start`, `stop`, `start` again.
    `refuse` names SFTP requests the server answers with permission denied, as a server
    without them would refuse them (`posix-rename`)."""

    def __init__(self, port: int, workdir: Path, refuse: str = "") -> None:
        ensure_user()
        self.port = port
        workdir.mkdir(parents=True, exist_ok=True)
        self.public_key = host_key(workdir / "ssh_host_ed25519_key")
        self.root = Path(tempfile.mkdtemp(prefix="authority-", dir=HOME))
        shutil.chown(self.root, USER, USER)
        self.log = workdir / "sshd.log"
        self._config = workdir / "sshd_config"
        sftp = "internal-sftp" + (f" -P {refuse}" if refuse else "")
        self._config.write_text(
            f"ListenAddress 127.0.0.1\nPort {port}\n"
            f"HostKey {workdir / 'ssh_host_ed25519_key'}\nPidFile none\n"
            "UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication no\nPermitRootLogin no\n"
            f"AllowUsers {USER}\nSubsystem sftp {sftp}\nForceCommand {sftp}\n"
        )
        self._process: subprocess.Popen[bytes] | None = None

    def known_hosts_line(self) -> str:
        """The line an operator adds once the authority confirmed the key."""
        return f"[127.0.0.1]:{self.port} {self.public_key}\n"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self._config)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def files(self) -> dict[str, tuple[int, int]]:
        """Each file in the folder with its inode and modification time: a file sent
        again is a new inode, renamed over the old one."""
        return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in self.root.iterdir()}

    def logins(self) -> int:
        """How many logins sshd accepted; a refused host key never gets to one."""
        return self.log.read_text(encoding="utf-8").count("Accepted password for")
