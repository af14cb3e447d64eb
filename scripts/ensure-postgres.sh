#!/usr/bin/env bash
# Make sure PostgreSQL listens on 127.0.0.1:5432 for the tests (which connect as postgres,
# trust): start its cluster, installing PostgreSQL first if needed.
set -euo pipefail
HOST=127.0.0.1 PORT=5432

listening() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

listening && { echo "postgresql: listening on $HOST:$PORT"; exit 0; }

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! compgen -G "/etc/postgresql/*/main" >/dev/null; then
  echo "postgresql: not installed, installing the Debian package"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  version=$(ls /etc/postgresql | sort -V | tail -1)
  # a new test machine: the tests connect over loopback as postgres without a password
  hba=/etc/postgresql/$version/main/pg_hba.conf
  $sudo sed -i '0,/^host/s//host    all    postgres    127.0.0.1\/32    trust\nhost/' "$hba"
fi
version=$(ls /etc/postgresql | sort -V | tail -1)
echo "postgresql: starting cluster $version/main on $HOST:$PORT"
ctl() { $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main "$1"; }
ctl start || ctl reload || true  # reload: a cluster the package started reads the trust line
for _ in $(seq 100); do listening && exit 0; sleep 0.1; done
echo "postgresql: did not start listening on $HOST:$PORT" >&2
exit 1
