#!/usr/bin/env bash
# Several replicas on one machine (SPEC section 9): a throwaway PostgreSQL
# and Redis, the built-in mock provider of `keygate demo`, and three
# `keygate serve` replicas on 127.0.0.1:18081-18083 sharing them. Try a
# change on one replica and watch the others follow; Ctrl-C stops
# everything and deletes the data.
#
#   scripts/cluster-demo.sh
#
# CLUSTER_DEMO_CHECK=1 starts everything, sends one request through each
# replica and stops (a smoke test). Ports: PG_TEST_PORT (default 25499),
# REDIS_TEST_PORT (26399), 18080-18083.
set -euo pipefail
cd "$(dirname "$0")/.."

export PG_TEST_PORT="${PG_TEST_PORT:-25499}" REDIS_TEST_PORT="${REDIS_TEST_PORT:-26399}"
dir="$(mktemp -d /tmp/keygate-cluster-demo.XXXXXX)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	redis_test_stop 2>/dev/null || true
	pg_test_stop 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
source scripts/pg-test.sh
source scripts/redis-test.sh

echo "building keygate…" >&2
go build -o "$dir/keygate" ./cmd/keygate

# The demo's mock provider (it speaks every provider format) serves the replicas.
"$dir/keygate" demo --listen 127.0.0.1:18080 >"$dir/demo.log" 2>&1 &
pids+=($!)
provider=""
for _ in $(seq 100); do
	provider="$(grep -o 'mock provider on http://[0-9.:]*' "$dir/demo.log" | sed 's/mock provider on //' || true)"
	[[ -n "$provider" ]] && break
	sleep 0.1
done
[[ -n "$provider" ]] || { cat "$dir/demo.log" >&2; echo "the mock provider did not start" >&2; exit 1; }

psql "$KEYGATE_TEST_POSTGRES_URL" -qc "CREATE DATABASE keygate_cluster_demo" 2>/dev/null || true
db="${KEYGATE_TEST_POSTGRES_URL/\/postgres\?/\/keygate_cluster_demo?}"
cat >"$dir/keygate.yaml" <<YAML
database_url: $db
redis_url: $KEYGATE_TEST_REDIS_URL
admin_token: kg-cluster-admin
tokens:
  - {name: app, token: kg-cluster-app, rpm: 60}
models:
  - model_id: gpt-4o-mini
    base_url: $provider/v1
    key_usage_mode: round_robin
    api_keys: [sk-demo-healthy-1-aaaaaaaa, sk-demo-healthy-2-bbbbbbbb, sk-demo-invalid-cccccccc]
YAML
# Every replica needs the same master key.
master="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
for i in 1 2 3; do
	KEYGATE_MASTER_KEY="$master" "$dir/keygate" serve --config "$dir/keygate.yaml" --listen "127.0.0.1:1808$i" \
		>"$dir/replica-$i.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 200); do
		curl -fs "http://127.0.0.1:1808$i/readyz" >/dev/null 2>&1 && break
		sleep 0.1
	done
	curl -fs "http://127.0.0.1:1808$i/readyz" >/dev/null || { cat "$dir/replica-$i.log" >&2; exit 1; }
done

chat() {
	curl -s "http://127.0.0.1:$1/v1/chat/completions" -H "Authorization: Bearer kg-cluster-app" \
		-H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
}
if [[ "${CLUSTER_DEMO_CHECK:-}" == 1 ]]; then
	for p in 18081 18082 18083; do chat "$p" | grep -q '"choices"' || { echo "replica $p failed" >&2; exit 1; }; done
	echo "cluster demo: three replicas answer" >&2
	exit 0
fi

cat <<TEXT
Three keygate replicas share PostgreSQL and Redis:
  http://127.0.0.1:18081  http://127.0.0.1:18082  http://127.0.0.1:18083
  client token kg-cluster-app (60 requests a minute, shared), admin token kg-cluster-admin
  logs in $dir

A chat through replica 1:
  curl http://127.0.0.1:18081/v1/chat/completions -H 'Authorization: Bearer kg-cluster-app' \\
    -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
The keys as replica 3 sees them (the invalid one, found out on replica 1, is disabled here too):
  KEYGATE_URL=http://127.0.0.1:18083 KEYGATE_ADMIN_TOKEN=kg-cluster-admin $dir/keygate keys list
A model added through replica 2 answers on replica 1 at once:
  echo sk-demo-healthy-1-aaaaaaaa > $dir/keys.txt
  KEYGATE_URL=http://127.0.0.1:18082 KEYGATE_ADMIN_TOKEN=kg-cluster-admin $dir/keygate models add \\
    --model-id gpt-4o --base-url $provider/v1 --keys-file $dir/keys.txt
Stop Redis (redis-cli -p $REDIS_TEST_PORT shutdown nosave) and the replicas keep serving;
/readyz says why. Ctrl-C stops everything.
TEXT
wait
