#!/usr/bin/env bash
# Property-based API testing: schemathesis throws generated requests at every operation of the
# served OpenAPI description, authenticated as an admin, and fails on any 5xx, any response
# that does not match its documented status, content type, headers or schema, or a crash.
# Fixed seed and a bounded number of examples, so a run is repeatable and takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.7.2
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ] || [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" \
    "openapi-spec-validator==$VALIDATOR_VERSION"
fi

# The binary the end-to-end tests use (a no-op right after `cargo test`).
cargo test --workspace --locked --no-run
bin=target/debug/switchboard
# The run works on its own embedded database, whatever DATABASE_URL says.
unset DATABASE_URL
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
password='schemathesis password 1'

echo "$password" | "$bin" agent create --data-dir "$data" --email fuzzer@example.com \
  --name Fuzzer --role admin --password-stdin >/dev/null
# No API rate limits: the run sends thousands of requests a minute with one token, and each
# 429 would be a request whose handler went unchecked (tests/api/edge.rs covers the limits).
WHATSAPP_APP_SECRET=schemathesis-app-secret WHATSAPP_VERIFY_TOKEN=schemathesis-verify-token \
SWITCHBOARD_API_RATE_PER_CREDENTIAL=0 SWITCHBOARD_API_RATE_PER_ADDRESS=0 \
SWITCHBOARD_EVENT_STREAM_MAX_SECONDS=2 RUST_LOG=warn \
  "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" >"$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$data"' EXIT
ready=no
for _ in $(seq 1 150); do
  if curl -fs "$base/api/health/ready" >/dev/null; then ready=yes; break; fi
  sleep 0.2
done
if [ "$ready" != yes ]; then
  echo "the server did not become ready:" >&2
  cat "$data/server.log" >&2
  exit 1
fi

# An independent validator first: the description must be valid OpenAPI 3.1.
curl -fs "$base/api/openapi.json" >"$data/openapi.json"
"$venv/bin/openapi-spec-validator" "$data/openapi.json"

token=$(curl -fs "$base/api/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"fuzzer@example.com\",\"password\":\"$password\"}" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

# A typed client: TypeScript types generated from the served description (openapi-typescript),
# a program using them type-checked (tsc) and run against this server. Then the check proves
# it can fail: with one field taken out of the description, the same program must not
# type-check.
(
  cd tests/client
  npm ci --no-audit --no-fund >/dev/null
  npx --no-install openapi-typescript "$data/openapi.json" -o generated/api.d.ts >/dev/null
  npx --no-install tsc -p .
  node dist/client.js "$base" "$token"
  python3 - "$data/openapi.json" "$data/broken.json" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
lock = spec["components"]["schemas"]["LockState"]
del lock["properties"]["locked"]
lock["required"] = [r for r in lock.get("required", []) if r != "locked"]
json.dump(spec, open(sys.argv[2], "w"))
PY
  npx --no-install openapi-typescript "$data/broken.json" -o generated/api.d.ts >/dev/null
  if npx --no-install tsc -p . --noEmit >/dev/null; then
    echo "the client type-checks without LockState.locked: the check cannot fail" >&2
    exit 1
  fi
  npx --no-install openapi-typescript "$data/openapi.json" -o generated/api.d.ts >/dev/null
  echo "typed client: generated, type-checked, run; fails without a field it uses"
)

# One worker: with two, CPython 3.11's ast module (which schemathesis's coverage phase drives
# from several threads) sometimes aborts the run with "AST constructor recursion depth mismatch"
# (cpython#106905, fixed in later releases) — a crash of the tool, not a finding.
run() {
  "$venv/bin/schemathesis" run "$base/api/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --seed 20261127 --max-examples 25 --request-timeout 10 --workers 1 \
    --no-color --warnings off "$@"
}

# Every operation but logout, then logout on its own: logging out revokes the session the
# first run authenticates with.
run --exclude-path /api/auth/logout
run --include-path /api/auth/logout

if grep -q "panicked" "$data/server.log"; then
  echo "the server panicked during the run:" >&2
  grep -B2 -A10 "panicked" "$data/server.log" >&2
  exit 1
fi
echo "schemathesis: no failures"
