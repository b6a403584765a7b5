#!/usr/bin/env bash
# Browser tests of the dashboard (SPEC section 10): builds keygate, starts
# `keygate demo` (the gateway and its mock provider with a mixed key pool)
# on a free loopback port, drives it with real headless Chromium through
# playwright-core (dashboard/e2e), and stops it. Installs Debian's chromium,
# fonts-noto-cjk and nodejs/npm when missing. The run writes the README's
# screenshots to docs/screenshots (SCREENSHOT_DIR= to skip or move them).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if ((${#need[@]})); then
	echo "dashboard-test: installing ${need[*]} with apt-get" >&2
	sudo=""
	[[ "$(id -u)" == 0 ]] || sudo="sudo"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

work="$(mktemp -d)"
pid=""
cleanup() {
	if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/keygate" ./cmd/keygate
(cd dashboard/e2e && npm ci --no-audit --no-fund --loglevel=error)

"$work/keygate" demo --listen 127.0.0.1:0 >"$work/demo.out" 2>"$work/demo.err" &
pid=$!
for _ in $(seq 1 100); do
	grep -q "admin token:" "$work/demo.out" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/demo.err" >&2; exit 1; }
	sleep 0.1
done
KEYGATE_URL="$(grep -o 'running on http://[0-9.:]*' "$work/demo.out" | cut -d' ' -f3)"
KEYGATE_ADMIN_TOKEN="$(grep -o 'admin token: *[^ ]*' "$work/demo.out" | awk '{print $3}')"
[[ -n "$KEYGATE_URL" && -n "$KEYGATE_ADMIN_TOKEN" ]] || { echo "dashboard-test: keygate demo did not start" >&2; cat "$work/demo.out" "$work/demo.err" >&2; exit 1; }
export KEYGATE_URL KEYGATE_ADMIN_TOKEN
export SCREENSHOT_DIR="${SCREENSHOT_DIR-$PWD/docs/screenshots}"

cd dashboard/e2e
node --test --test-concurrency=1 --test-timeout=120000 dashboard.test.mjs
