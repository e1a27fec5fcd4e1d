#!/usr/bin/env bash
# Installs Debian's Chromium (and ChromeDriver) for the console's browser tests, the way
# localstack/install-emulators.sh installs the AWS emulators: `make test` runs it first, a
# second run with everything in place returns at once. The tests look for the browser in
# $SALVO_CHROMIUM, then chromium, chromium-browser, google-chrome on PATH, and skip when it is
# missing (they fail instead when CI=true).
#
# Where the packages cannot be installed (no apt-get, not root and no password-less sudo), it
# says so and exits 0: the browser tests then skip with the same hint.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

for b in "${SALVO_CHROMIUM:-}" chromium chromium-browser google-chrome; do
	if [ -n "$b" ] && have "$b"; then
		echo "install-chromium: $("$b" --version 2>/dev/null | head -n 1) already at $(command -v "$b")"
		exit 0
	fi
done

if ! have apt-get; then
	echo "install-chromium: no apt-get here; install Chromium yourself (or set SALVO_CHROMIUM); the browser tests skip until then"
	exit 0
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
	if have sudo && sudo -n true 2>/dev/null; then
		sudo=(sudo -n)
	else
		echo "install-chromium: not root; run 'sudo apt-get install -y chromium chromium-driver' yourself; the browser tests skip until then"
		exit 0
	fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-chromium: installing Debian's chromium and chromium-driver"
if ! "${sudo[@]}" apt-get install -y --no-install-recommends chromium chromium-driver; then
	echo "install-chromium: first attempt failed; refreshing the package lists and trying again"
	"${sudo[@]}" apt-get update
	"${sudo[@]}" apt-get install -y --no-install-recommends chromium chromium-driver ||
		{ echo "install-chromium: apt-get install chromium chromium-driver failed (see above)" >&2; exit 1; }
fi
have chromium || { echo "install-chromium: chromium not on PATH after the install" >&2; exit 1; }
echo "install-chromium: done ($(chromium --version 2>/dev/null | head -n 1))"
