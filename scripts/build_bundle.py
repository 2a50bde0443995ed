#!/usr/bin/env python3
"""An offline install bundle: this project's wheel and every wheel it needs, for a given
machine, in one tar.gz that `scripts/install-edge.sh` or `scripts/install-collector.sh`
installs from with no network (`BUNDLE=... sudo scripts/install-edge.sh`).

A camera pole or an air station often has no route to PyPI, and the laptop that builds
the bundle is not the Pi that runs it: the wheels are fetched for the target's platform
and Python (`--platform manylinux2014_aarch64 --python 3.11` for a Raspberry Pi OS 12),
binary wheels only, so nothing has to compile on the box. The bundle holds a
`requirements.txt` pinning every wheel it carries and `SHA256SUMS`, and installs the
same set wherever it is unpacked. The same bundle is a release the collector offers to
boxes already installed (`collector releases add`, edge_agent/software_update.py): build it
with the extras those boxes run (`--extras vision` for camera poles).

  .venv/bin/python scripts/build_bundle.py edge --extras vision
  .venv/bin/python scripts/build_bundle.py collector --platform manylinux2014_x86_64
"""

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "phuquoc-telemetry"
# What each install script installs by default on top of the package.
DEFAULT_EXTRAS = {"edge": "", "collector": "api,export"}
# Wheels of these only, without their declared dependencies (see the Makefile).
NO_DEPS = {"vision": ["rapidocr-onnxruntime>=1.4.4"]}
# A platform tag names the oldest glibc a wheel needs; a newer box takes the older tags too.
GLIBC_TAGS = ("manylinux2014", "manylinux_2_17", "manylinux_2_28")


def platforms(tag: str) -> list[str]:
    """`manylinux2014_aarch64` and the other manylinux tags of the same architecture."""
    for prefix in GLIBC_TAGS:
        if tag.startswith(prefix + "_"):
            arch = tag.removeprefix(prefix + "_")
            return [f"{p}_{arch}" for p in GLIBC_TAGS]
    return [tag]


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def build(
    role: str, extras: str, platform: str, python: str, out: Path, source: Path = REPO
) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        wheels = Path(tmp) / "wheels"
        print(f"building the {PACKAGE} wheel from {source}", flush=True)
        pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(source))
        [own] = wheels.glob("phuquoc_telemetry-*.whl")
        target = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
        for tag in platforms(platform):
            target += ["--platform", tag]
        wanted = f"{own}[{extras}]" if extras else str(own)
        print(f"fetching its dependencies for {platform}, Python {python}", flush=True)
        pip("download", "--quiet", "--dest", str(wheels), *target, wanted)
        for extra in filter(None, extras.split(",")):
            for requirement in NO_DEPS.get(extra, []):
                pip("download", "--quiet", "--no-deps", "--dest", str(wheels), *target, requirement)
        found = sorted(wheels.glob("*.whl"))
        pins = sorted(_pin(w) for w in found)
        (wheels / "requirements.txt").write_text("\n".join(pins) + "\n")
        sums = [f"{hashlib.sha256(w.read_bytes()).hexdigest()}  {w.name}" for w in found]
        (wheels / "SHA256SUMS").write_text("\n".join(sums) + "\n")
        version = own.name.split("-")[1]
        out.mkdir(parents=True, exist_ok=True)
        bundle = out / f"{role}-bundle-{version}-{platform}-py{python}.tar.gz"
        with tarfile.open(bundle, "w:gz") as tar:
            tar.add(wheels, arcname="wheels")
        print(f"{bundle}: {len(found)} wheels, {bundle.stat().st_size / 1e6:.1f} MB")
        return bundle


def _pin(wheel: Path) -> str:
    name, version = wheel.name.split("-")[:2]
    return f"{name}=={version}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=sorted(DEFAULT_EXTRAS), help="what the bundle installs")
    parser.add_argument("--extras", help="the package's extras (default: the role's)")
    parser.add_argument(
        "--platform",
        default="manylinux2014_aarch64",
        help="the target's wheel platform (default: a 64-bit Raspberry Pi or Jetson)",
    )
    parser.add_argument("--python", default="3.11", help="the target's Python (default 3.11)")
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument(
        "--source", type=Path, default=REPO, help="the tree to build (default: this one)"
    )
    args = parser.parse_args()
    extras = DEFAULT_EXTRAS[args.role] if args.extras is None else args.extras
    try:
        build(args.role, extras, args.platform, args.python, args.out, args.source)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"error: {' '.join(exc.cmd[2:5])} failed (exit {exc.returncode}); see above")


if __name__ == "__main__":
    main()
