#!/bin/sh
# Install Debian's chromium (used by the report's end-to-end browser test) when it is missing.
# Cheap when already installed: one file test, no apt call. Never fails the caller: the test that needs the browser
# skips with a clear reason when it is absent.
set -u
BROWSER="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$BROWSER" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: apt-get not found; the browser test will be skipped" >&2
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
echo "install-chromium: installing Debian's chromium package (one time)" >&2
$SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium >/dev/null 2>&1; } \
    || echo "install-chromium: could not install chromium; the browser test will be skipped" >&2
exit 0
