#!/usr/bin/env bash
# Install hotspots and everything its tests need, on a fresh Debian machine
# with access to PyPI and Debian's package mirror (no other network needed).
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless Chromium renders the maps and reports in the browser tests.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: could not install chromium; browser tests will be skipped" >&2
  else
    echo "setup: chromium missing and not root; run 'sudo apt-get install chromium' for the browser tests" >&2
  fi
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]"
# Byte-compile the package once: Python reads these even where PYTHONDONTWRITEBYTECODE stops it
# writing them, so every run (and every worker process) skips compiling the sources again.
python3 -m compileall -q src/hotspots >/dev/null
