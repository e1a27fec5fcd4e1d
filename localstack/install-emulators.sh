#!/usr/bin/env bash
# Installs the AWS emulators the integration tests use into the folder given as $1:
#   - Node 22 (the npm package "node", which ships a Node binary; fauxqs needs Node >= 22.5)
#   - fauxqs  (SQS over the AWS JSON protocol, plus S3)
#   - dynalite (DynamoDB)
# all from the npm registry, with `npm --prefix DIR`. Versions are pinned below; a second run
# with everything in place returns at once. The tests find the tools through SALVO_TOOLS_DIR
# (set by `make test`) and skip when they are missing (they fail instead when CI=true).
set -euo pipefail

NODE_VERSION=22.23.3
FAUXQS_VERSION=2.4.1
DYNALITE_VERSION=4.0.0

dir="${1:?usage: install-emulators.sh DIR}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

die() {
	echo "install-emulators: $*" >&2
	exit 1
}

# installed_version PACKAGE prints the version recorded in DIR/node_modules/PACKAGE, if any.
installed_version() {
	local pj="$dir/node_modules/$1/package.json"
	[ -f "$pj" ] || return 0
	sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pj" | head -n 1
}

node_bin="$dir/node_modules/node/bin/node"
if [ "$(installed_version node)" = "$NODE_VERSION" ] &&
	[ "$(installed_version fauxqs)" = "$FAUXQS_VERSION" ] &&
	[ "$(installed_version dynalite)" = "$DYNALITE_VERSION" ] &&
	[ -x "$node_bin" ] && "$node_bin" --version >/dev/null 2>&1; then
	echo "install-emulators: node $NODE_VERSION, fauxqs $FAUXQS_VERSION, dynalite $DYNALITE_VERSION already in $dir"
	exit 0
fi

command -v npm >/dev/null 2>&1 || die "npm not found on PATH; install Node.js and npm (e.g. apt-get install -y nodejs npm) and run again"

# A package.json of our own keeps npm from walking up to a parent project.
if [ ! -f "$dir/package.json" ]; then
	printf '{\n  "name": "salvo-emulators",\n  "private": true\n}\n' >"$dir/package.json"
fi

echo "install-emulators: installing node@$NODE_VERSION fauxqs@$FAUXQS_VERSION dynalite@$DYNALITE_VERSION into $dir"
if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error --save-exact \
	"node@$NODE_VERSION" "fauxqs@$FAUXQS_VERSION" "dynalite@$DYNALITE_VERSION"; then
	die "npm install failed (is the npm registry reachable? see npm's message above)"
fi

[ -x "$node_bin" ] || die "node binary missing at $node_bin after npm install"
got="$("$node_bin" --version)" || die "$node_bin does not run"
[ "$got" = "v$NODE_VERSION" ] || die "$node_bin reports $got, want v$NODE_VERSION"
for f in fauxqs/package.json dynalite/package.json; do
	[ -f "$dir/node_modules/$f" ] || die "node_modules/$f missing after npm install"
done
echo "install-emulators: done (node $got)"
