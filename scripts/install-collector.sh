#!/usr/bin/env bash
# Install the collector at the operations center (Debian), from this source tree or a
# bundle, idempotently: run it again to upgrade; it changes only what differs.
#
#   sudo scripts/install-collector.sh
#   sudo BUNDLE=collector-bundle-0.1.0-manylinux2014_x86_64-py3.11.tar.gz scripts/install-collector.sh
#        # no network: the wheels from `make collector-bundle` (scripts/build_bundle.py)
#
# Layout: the program in a venv under /opt/collector (with the api and export extras
# unless EXTRAS says otherwise), the config under /etc/collector, the store, spool and
# databases under /var/lib/collector, a dedicated `collector` user, the hardened systemd
# unit, and `collector` on the PATH (/usr/local/bin) for the staff.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=/opt/collector
EXTRAS="${EXTRAS-api,export}"
PYTHON="${PYTHON:-/usr/bin/python3}"

if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (sudo $0)" >&2
  exit 1
fi

if ! id -u collector >/dev/null 2>&1; then
  echo "creating the collector user"
  useradd --system --user-group --home-dir /var/lib/collector --shell /usr/sbin/nologin collector
fi

install -d -m 0755 "$PREFIX"
PYTHON="$PYTHON" "$SRC/scripts/venv-install.sh" "$PREFIX/venv" "$EXTRAS" "${BUNDLE:-}"
ln -sf "$PREFIX/venv/bin/collector" /usr/local/bin/collector

install -d -m 0750 -o root -g collector /etc/collector
install -d -m 0750 -o collector -g collector /var/lib/collector
install -m 0644 "$SRC/systemd/collector.service" /etc/systemd/system/collector.service
if [ -f /etc/collector/collector.yaml ]; then
  # The collector reads its secrets (broker password, webhook secrets) as its own user.
  chgrp -R collector /etc/collector
  chmod -R g+rX,o-rwx /etc/collector
fi

if [ ! -d /run/systemd/system ]; then
  install -d /etc/systemd/system/multi-user.target.wants
  ln -sf /etc/systemd/system/collector.service \
    /etc/systemd/system/multi-user.target.wants/collector.service
  echo "installed; systemd is not running here, collector.service starts at boot"
  exit 0
fi
systemctl daemon-reload
systemctl enable collector.service >/dev/null
if [ -f /etc/collector/collector.yaml ]; then
  systemctl restart collector.service
  echo "collector restarted"
else
  echo "installed. Next: write /etc/collector/collector.yaml (configs/collector.yaml is a start), then run this again"
fi
