#!/usr/bin/env bash
# The browser tests (tests/browser) drive Debian's Chromium.  Install it when it
# is missing: as root with apt-get (as CI runs), otherwise say how.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -n "${CHROMIUM:-}" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium package for the browser tests (apt-get) ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    chromium --version
    exit 0
fi
cat >&2 <<'MSG'
The browser tests need Chromium, which is not installed.
  Debian/Ubuntu:  sudo apt-get install -y chromium
  elsewhere:      install Chromium and set CHROMIUM=/path/to/chromium
MSG
exit 1
