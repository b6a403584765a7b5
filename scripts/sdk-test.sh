#!/usr/bin/env bash
# The official SDKs against a real keygate: builds the harness (keygate's
# app, as `keygate serve` runs it, with the mock provider behind it, both on
# free loopback ports), starts it, runs every SDK suite under sdktest/
# (node --test for the npm packages, go test for the Go SDKs), and stops it.
# A new SDK suite is a file in sdktest/node or a test in sdktest/go.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
harness_pid=
cleanup() {
	[ -n "$harness_pid" ] && kill "$harness_pid" 2>/dev/null && wait "$harness_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	apt-get install -y -qq nodejs npm >/dev/null
fi

go build -o "$tmp/harness" ./sdktest/harness
mkfifo "$tmp/stdin"
"$tmp/harness" <"$tmp/stdin" >"$tmp/info.json" 2>"$tmp/harness.log" &
harness_pid=$!
exec 3>"$tmp/stdin" # the harness serves while this stays open
for _ in $(seq 100); do
	[ -s "$tmp/info.json" ] && break
	sleep 0.1
done
if [ ! -s "$tmp/info.json" ]; then
	cat "$tmp/harness.log" >&2
	echo "sdk-test: the harness did not start" >&2
	exit 1
fi
export KEYGATE_SDK_INFO="$tmp/info.json"

(cd sdktest/node && npm ci --no-audit --no-fund --loglevel=error && node --test)
(cd sdktest/go && go test -count=1 ./...)
exec 3>&-
