#!/usr/bin/env bash
# The whole test suite: vet, then every package with the race detector,
# against the embedded SQLite and a real PostgreSQL this script starts
# (and installs from Debian's packages when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/pg-test.sh
source scripts/redis-test.sh
trap 'pg_test_stop; redis_test_stop' EXIT

go vet ./...
go test -race -count=1 -timeout 10m ./...
# The bulk import's time budget, without the race detector's slowdown.
go test -count=1 -run 'TestKeysImportTenThousand' ./cli/
# The official OpenAI SDKs (npm openai, openai-go) against a real keygate.
./scripts/sdk-test.sh
