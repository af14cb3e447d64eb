#!/usr/bin/env bash
# Make sure Mosquitto is installed (installing the Debian package if needed) and, unless
# --install-only, that a broker listens on 127.0.0.1:1883 (the anonymous loopback broker
# of scripts/mosquitto-dev.conf, for the bridge's tests). `acd demo` and the tests of
# authentication start their own private Mosquittos: they only need it installed.
set -euo pipefail
HOST=127.0.0.1 PORT=1883
here=$(cd "$(dirname "$0")" && pwd)

listening() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  echo "mosquitto: not installed, installing the Debian package"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mosquitto >/dev/null
fi
[ "${1:-}" = "--install-only" ] && { echo "mosquitto: installed"; exit 0; }

listening && { echo "mosquitto: listening on $HOST:$PORT"; exit 0; }
bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
echo "mosquitto: starting on $HOST:$PORT"
"$bin" -d -c "$here/mosquitto-dev.conf"
for _ in $(seq 50); do listening && exit 0; sleep 0.1; done
echo "mosquitto: did not start listening on $HOST:$PORT" >&2
exit 1
