#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the browser tests (tests/e2e/
# test_e2e_web.py drive it with Playwright; Playwright's own browser download is not used).
set -euo pipefail
[ -x /usr/bin/chromium ] && { echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | tail -1)"; exit 0; }
echo "chromium: not installed, installing the Debian package"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
[ -x /usr/bin/chromium ] || { echo "chromium: /usr/bin/chromium still missing" >&2; exit 1; }
