#!/usr/bin/env bash
# The official Anthropic and OpenAI SDKs against a real keygate demo (its
# mock provider speaks every provider format): /v1/messages, /v1/responses
# and chat completions across anthropic, openai, gemini and azure models.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(mktemp -d)/keygate"
go build -o "$bin" ./cmd/keygate
cd sdktest
[ -d node_modules/@anthropic-ai/sdk ] && [ -d node_modules/openai ] || npm install --no-audit --no-fund --silent
KEYGATE_BIN="$bin" node --test dialects.test.mjs
