#!/usr/bin/env bash
# Installs the real components the test suite runs against, when they are missing:
# Mosquitto (broker), InfluxDB 1.x (store, v1 write and InfluxQL), VictoriaMetrics (a
# server that takes InfluxDB's /api/v2/write), socat (virtual serial pairs), the DejaVu
# fonts the synthetic licence plates are lettered in, systemd-analyze (the unit files
# are verified with it), libseccomp (the units' system-call filters are tried with it),
# OpenSSH's sshd (the station files' SFTP uploader is tested against it), promtool
# (the shipped Prometheus alerting rules are checked and unit-tested with it), net-snmp's
# snmpd (the SNMP access-point source reads it as a managed AP) and Chromium with its
# WebDriver (the wall is tested in a real browser, through selenium).
# With --training, instead: the narrow sans fonts the plate recogniser's training letters
# its plates in (make plate-recogniser); the tests use the shipped model and need none.
set -euo pipefail

if [ "${1:-}" = "--training" ]; then
  declare -A binary_of=(
    [fonts-opendin]=/usr/share/fonts/truetype/opendin/OSP-DIN.ttf
    [fonts-liberation]=/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Regular.ttf
    [fonts-roboto-unhinted]=/usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Regular.ttf
    [fonts-b612]=/usr/share/fonts/opentype/b612/B612-Regular.otf
  )
else
  declare -A binary_of=(
    [mosquitto]=/usr/sbin/mosquitto
    [mosquitto-clients]=/usr/bin/mosquitto_sub
    [influxdb]=/usr/bin/influxd
    [socat]=/usr/bin/socat
    [victoria-metrics]=/usr/bin/victoria-metrics
    [fonts-dejavu-core]=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
    [fonts-dejavu-extra]=/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf
    [systemd]=/usr/bin/systemd-analyze
    [libseccomp2]=/usr/lib/$(uname -m)-linux-gnu/libseccomp.so.2
    [openssh-server]=/usr/sbin/sshd
    [snmpd]=/usr/sbin/snmpd
    [prometheus]=/usr/bin/promtool
    [chromium]=/usr/bin/chromium
    [chromium-driver]=/usr/bin/chromedriver
  )
fi
missing=()
for pkg in "${!binary_of[@]}"; do
  [ -e "${binary_of[$pkg]}" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  echo "Installing Debian packages with sudo: ${missing[*]}"
  sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "These Debian packages are needed and missing: ${missing[*]}" >&2
  echo "Install them as root:  apt-get install ${missing[*]}" >&2
  exit 1
fi
