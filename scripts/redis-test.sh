#!/usr/bin/env bash
# Start a throwaway redis-server for the cluster tests.
#
#   source scripts/redis-test.sh   # start, export KEYGATE_TEST_REDIS_URL, define redis_test_stop
#   go test -race ./cluster/
#   redis_test_stop
#
#   scripts/redis-test.sh          # start and print the export line
#   scripts/redis-test.sh stop     # stop and delete
#
# REDIS_TEST_PORT (default 26379) picks the port; the data lives in
# /tmp/keygate-redis-$REDIS_TEST_PORT. Running it again while the server is
# up reuses it. Installs Debian's redis-server with apt-get when it is
# missing. The end-to-end test of several replicas starts (and kills) its
# own redis-server from the same package; it finds it through
# KEYGATE_TEST_REDIS_SERVER.
#
# Written to be sourced: it never calls exit or set -e.

REDIS_TEST_PORT="${REDIS_TEST_PORT:-26379}"
REDIS_TEST_ROOT="/tmp/keygate-redis-${REDIS_TEST_PORT}"

redis_test__log() { echo "redis-test: $*" >&2; }

redis_test__bin() {
	if ! command -v redis-server >/dev/null 2>&1; then
		if [[ "$(id -u)" != 0 ]]; then
			redis_test__log "redis-server is not installed; run as root, or: apt-get install -y redis-server"
			return 1
		fi
		redis_test__log "installing redis-server with apt-get"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2 || return 1
	fi
	command -v redis-server
}

redis_test_start() {
	local bin
	bin="$(redis_test__bin)" || return 1
	export KEYGATE_TEST_REDIS_SERVER="$bin"
	if redis-cli -p "$REDIS_TEST_PORT" ping >/dev/null 2>&1; then
		redis_test__log "reusing the server already on port $REDIS_TEST_PORT"
	else
		mkdir -p "$REDIS_TEST_ROOT" || return 1
		"$bin" --port "$REDIS_TEST_PORT" --bind 127.0.0.1 --save '' --appendonly no \
			--dir "$REDIS_TEST_ROOT" --daemonize yes --pidfile "$REDIS_TEST_ROOT/redis.pid" \
			--logfile "$REDIS_TEST_ROOT/redis.log" || {
			redis_test__log "redis-server failed to start, see $REDIS_TEST_ROOT/redis.log"
			return 1
		}
		local i
		for ((i = 0; i < 50; i++)); do
			redis-cli -p "$REDIS_TEST_PORT" ping >/dev/null 2>&1 && break
			sleep 0.1
		done
	fi
	export KEYGATE_TEST_REDIS_URL="redis://127.0.0.1:${REDIS_TEST_PORT}/0"
	redis_test__log "Redis ready: KEYGATE_TEST_REDIS_URL=$KEYGATE_TEST_REDIS_URL"
}

redis_test_stop() {
	if [[ -f "$REDIS_TEST_ROOT/redis.pid" ]]; then
		kill "$(cat "$REDIS_TEST_ROOT/redis.pid")" 2>/dev/null
	fi
	rm -rf "$REDIS_TEST_ROOT"
	unset KEYGATE_TEST_REDIS_URL
	redis_test__log "stopped"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	case "${1:-start}" in
	start) redis_test_start && echo "export KEYGATE_TEST_REDIS_URL='$KEYGATE_TEST_REDIS_URL' KEYGATE_TEST_REDIS_SERVER='$KEYGATE_TEST_REDIS_SERVER'" ;;
	stop) redis_test_stop ;;
	*) echo "usage: $0 [start|stop]" >&2 && exit 2 ;;
	esac
else
	redis_test_start
fi
