#!/usr/bin/env bash
# Install the edge agent on a Raspberry Pi or a Jetson (Debian-based), from this source
# tree, idempotently: run it again to upgrade; it changes only what differs.
#
#   sudo scripts/install-edge.sh            # an environmental station or a wifi AP box
#   sudo EXTRAS=vision scripts/install-edge.sh   # a camera pole: OpenCV and ONNX Runtime
#   sudo BUNDLE=edge-bundle-0.1.0-manylinux2014_aarch64-py3.11.tar.gz scripts/install-edge.sh
#        # no network: the wheels from `make edge-bundle` (scripts/build_bundle.py)
#
# Layout: the program in a venv under /opt/edge-agent/releases/<version>, `current`
# pointing at it (set releases_dir: /opt/edge-agent in the config to take updates), the config under /etc/edge-agent
# (written by `edge-agent provision`), the outbox and state under /var/lib/edge-agent, a
# dedicated `edge-agent` user in the serial (dialout) and video groups only, and the
# hardened systemd unit (on a Jetson with the drop-in for its GPU and camera engines), and
# `edge-agent` on the PATH (/usr/local/bin) for the technician.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=/opt/edge-agent
EXTRAS="${EXTRAS:-}"
# The system's Python: the service user must be able to run it, which a Python under
# root's home (pyenv and the like) is not.
PYTHON="${PYTHON:-/usr/bin/python3}"

if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (sudo $0)" >&2
  exit 1
fi

if ! id -u edge-agent >/dev/null 2>&1; then
  echo "creating the edge-agent user"
  useradd --system --user-group --home-dir /var/lib/edge-agent --shell /usr/sbin/nologin edge-agent
fi
usermod --append --groups dialout,video edge-agent

# Each version in its own virtualenv, releases/<version>, and `current` pointing at the
# one that runs: the layout software updates from the center switch within
# (edge_agent/software_update.py), so the agent's group may write it.
if [ -n "${BUNDLE:-}" ]; then
  VERSION="$(basename "$BUNDLE" | sed -E 's/^edge-bundle-([^-]+)-.*/\1/')"
else
  VERSION="$("$PYTHON" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$SRC/pyproject.toml")"
fi
install -d -m 0775 -o root -g edge-agent "$PREFIX" "$PREFIX/releases"
PYTHON="$PYTHON" "$SRC/scripts/venv-install.sh" "$PREFIX/releases/$VERSION" "$EXTRAS" "${BUNDLE:-}"
chown -R edge-agent:edge-agent "$PREFIX/releases/$VERSION"
ln -sfn "releases/$VERSION" "$PREFIX/current.new" && mv -T "$PREFIX/current.new" "$PREFIX/current"
rm -rf "$PREFIX/venv"  # the layout before releases/
ln -sf "$PREFIX/current/bin/edge-agent" /usr/local/bin/edge-agent

install -d -m 0770 -o root -g edge-agent /etc/edge-agent
install -d -m 0750 -o edge-agent -g edge-agent /var/lib/edge-agent
# The outbox and status an older version, or an agent run by hand under umask 022, left
# readable by every account: plates and their crops are for the agent's group at most.
chmod -R o-rwx /var/lib/edge-agent
install -m 0644 "$SRC/systemd/edge-agent.service" /etc/systemd/system/edge-agent.service
if [ -f /etc/nv_tegra_release ]; then
  # A Jetson: its GPU and camera engines (the drop-in says which), nowhere else.
  install -d -m 0755 /etc/systemd/system/edge-agent.service.d
  install -m 0644 "$SRC/systemd/edge-agent.service.d/jetson.conf" \
    /etc/systemd/system/edge-agent.service.d/jetson.conf
fi
if [ -f /etc/edge-agent/agent.yaml ]; then
  # The agent reads its credential as its own user; provisioning wrote them as root.
  chgrp -R edge-agent /etc/edge-agent
  chmod -R g+rX,o-rwx /etc/edge-agent
  # A config pushed from the center replaces agent.yaml: the folder and the file are the
  # group's to write; the credentials stay read-only to it.
  chmod g+w /etc/edge-agent /etc/edge-agent/agent.yaml
fi

if [ ! -d /run/systemd/system ]; then
  # An image being built in a chroot, or a container: the unit is enabled at first boot.
  install -d /etc/systemd/system/multi-user.target.wants
  ln -sf /etc/systemd/system/edge-agent.service \
    /etc/systemd/system/multi-user.target.wants/edge-agent.service
  echo "installed; systemd is not running here, edge-agent.service starts at boot"
  exit 0
fi
systemctl daemon-reload
systemctl enable edge-agent.service >/dev/null
if [ -f /etc/edge-agent/agent.yaml ]; then
  systemctl restart edge-agent.service
  echo "edge-agent $VERSION restarted; check it with: edge-agent check -c /etc/edge-agent/agent.yaml"
else
  echo "installed $VERSION. Next: edge-agent provision --out /etc/edge-agent ..., then run this again"
fi
