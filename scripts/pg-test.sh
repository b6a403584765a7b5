#!/usr/bin/env bash
# Start a throwaway PostgreSQL for the store tests.
#
#   source scripts/pg-test.sh      # start, export KEYGATE_TEST_POSTGRES_URL, define pg_test_stop
#   go test -race ./store/
#   pg_test_stop                   # stop the server and delete its data
#
#   scripts/pg-test.sh             # start and print the export line
#   scripts/pg-test.sh stop        # stop and delete
#
# PG_TEST_PORT (default 25432, below the kernel's ephemeral range of
# 32768-60999, so no test's outgoing connection can hold it) picks the
# port; the data lives in
# /tmp/keygate-pg-$PG_TEST_PORT. Running it again while the server is up
# reuses that server. Installs PostgreSQL with apt-get when it is missing.
#
# Written to be sourced: it never calls exit or set -e, which would hit the
# caller's shell.

PG_TEST_PORT="${PG_TEST_PORT:-25432}"
PG_TEST_ROOT="/tmp/keygate-pg-${PG_TEST_PORT}"

pg_test__log() { echo "pg-test: $*" >&2; }

# pg_test__bindir prints the directory of initdb/pg_ctl, installing
# PostgreSQL when there is none.
pg_test__bindir() {
	local d
	d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
	if [[ -z "$d" ]] && command -v pg_ctl >/dev/null 2>&1; then
		d="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
	fi
	if [[ -z "$d" ]]; then
		if [[ "$(id -u)" != 0 ]]; then
			pg_test__log "PostgreSQL is not installed; run as root, or: apt-get install -y postgresql"
			return 1
		fi
		pg_test__log "installing PostgreSQL with apt-get"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 || return 1
		d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
	fi
	[[ -x "$d/pg_ctl" ]] || { pg_test__log "no pg_ctl found"; return 1; }
	echo "$d"
}

# pg_test__as_owner runs a command as the owner of the cluster: initdb
# refuses to run as root, so root hands over to the postgres user. It runs
# from /tmp so the postgres user never needs to read the caller's directory.
pg_test__as_owner() {
	if [[ "$(id -u)" == 0 ]]; then
		(cd /tmp && runuser -u postgres -- "$@")
	else
		(cd /tmp && "$@")
	fi
}

pg_test_start() {
	local bin url data="$PG_TEST_ROOT/data" sock="$PG_TEST_ROOT/sock"
	bin="$(pg_test__bindir)" || return 1
	url="postgres://postgres@127.0.0.1:${PG_TEST_PORT}/postgres?sslmode=disable"

	if "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_TEST_PORT"; then
		pg_test__log "reusing the server already on port $PG_TEST_PORT"
	else
		mkdir -p "$sock" || return 1
		[[ "$(id -u)" == 0 ]] && chown -R postgres: "$PG_TEST_ROOT"
		if [[ ! -f "$data/PG_VERSION" ]]; then
			# trust auth is fine: it listens on loopback only and lives in /tmp.
			pg_test__as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust \
				--encoding=UTF8 --locale=C --no-sync >"$PG_TEST_ROOT/initdb.log" 2>&1 || {
				pg_test__log "initdb failed, see $PG_TEST_ROOT/initdb.log"
				return 1
			}
		fi
		# Durability is worthless for a test server; speed is not.
		pg_test__as_owner "$bin/pg_ctl" -D "$data" -l "$PG_TEST_ROOT/server.log" -w -t 30 \
			-o "-c listen_addresses=127.0.0.1 -p $PG_TEST_PORT -k $sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
			start >/dev/null || {
			pg_test__log "pg_ctl start failed, see $PG_TEST_ROOT/server.log"
			return 1
		}
	fi

	local i
	for ((i = 0; i < 60; i++)); do
		"$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_TEST_PORT" && break
		sleep 0.5
	done
	# pg_isready only says the postmaster answers; prove the superuser can log
	# in over TCP, which is what the tests do.
	if ! psql "$url" -qAtc 'SELECT 1' >/dev/null; then
		pg_test__log "cannot connect to $url"
		return 1
	fi
	export KEYGATE_TEST_POSTGRES_URL="$url"
	pg_test__log "PostgreSQL ready: KEYGATE_TEST_POSTGRES_URL=$url"
}

pg_test_stop() {
	local bin
	bin="$(pg_test__bindir)" || return 1
	if [[ -f "$PG_TEST_ROOT/data/postmaster.pid" ]]; then
		pg_test__as_owner "$bin/pg_ctl" -D "$PG_TEST_ROOT/data" -m fast -w stop >/dev/null
	fi
	rm -rf "$PG_TEST_ROOT"
	unset KEYGATE_TEST_POSTGRES_URL
	pg_test__log "stopped"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	# Executed rather than sourced.
	case "${1:-start}" in
	start) pg_test_start && echo "export KEYGATE_TEST_POSTGRES_URL='$KEYGATE_TEST_POSTGRES_URL'" ;;
	stop) pg_test_stop ;;
	*) echo "usage: $0 [start|stop]" >&2 && exit 2 ;;
	esac
else
	pg_test_start
fi
