"""Issue #25, item 7: a bundle from `scripts/build_bundle.py` installs the agent into a
fresh virtualenv with no index at all, through the very script the installers use, and a
damaged bundle is refused before anything is installed."""

import subprocess
import sys
import tarfile

import pytest

from tests.helpers import REPO

SCRIPTS = REPO / "scripts"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """This machine's bundle of the agent without extras (fetched from the package index
    once: the target's wheels are what the build needs the network for)."""
    out = tmp_path_factory.mktemp("bundles")
    made = subprocess.run(
        [sys.executable, str(SCRIPTS / "build_bundle.py"), "edge", "--platform",
         "manylinux2014_x86_64", "--python", f"{sys.version_info.major}.{sys.version_info.minor}",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    [found] = out.glob("edge-bundle-*.tar.gz")
    return found


def install(venv, bundle) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / "venv-install.sh"), str(venv), "", str(bundle)],
        capture_output=True, text=True, timeout=600, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "PIP_INDEX_URL": "http://127.0.0.1:9/"},
    )  # fmt: skip


def test_the_bundle_installs_a_working_agent_with_no_index(bundle, tmp_path):
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
    assert "wheels/requirements.txt" in names
    assert "wheels/SHA256SUMS" in names
    assert any(n.startswith("wheels/phuquoc_telemetry-") for n in names)
    venv = tmp_path / "venv"
    done = install(venv, bundle)
    assert done.returncode == 0, done.stdout + done.stderr
    profiles = subprocess.run(
        [str(venv / "bin" / "edge-agent"), "profiles", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert profiles.returncode == 0, profiles.stderr
    assert '"pq-sim-wastewater"' in profiles.stdout


def test_a_damaged_bundle_is_refused(bundle, tmp_path):
    damaged = tmp_path / "damaged.tar.gz"
    unpacked = tmp_path / "unpacked"
    with tarfile.open(bundle) as tar:
        tar.extractall(unpacked, filter="data")
    [wheel] = (unpacked / "wheels").glob("pyyaml-*.whl")
    wheel.write_bytes(wheel.read_bytes()[:-10])
    with tarfile.open(damaged, "w:gz") as tar:
        tar.add(unpacked / "wheels", arcname="wheels")
    done = install(tmp_path / "venv", damaged)
    assert done.returncode == 1
    assert "does not match its checksum" in done.stderr
    assert not (tmp_path / "venv" / "bin" / "edge-agent").exists()
