#!/usr/bin/env bash
# The simulator against moto server: requests per second for IAM GetRole and EventBridge
# DescribeEventBus, the same `wrk` run against each (2 threads, 32 connections, 10 s). Prints both
# figures and their ratio. Neither server checks signatures, so one fixed SigV4-shaped header serves
# every request.
#
#   bash benches/moto.sh            (needs python3 with venv, and wrk: `apt-get install wrk`)
#
# Env: RELAYFORM (the binary, default target/release/relayform, built if missing), MOTO_VENV (where
# moto is installed, default a directory under /tmp), WRK_SECONDS (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk > /dev/null || { echo "benches/moto.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }
bin=${RELAYFORM:-target/release/relayform}
[ -x "$bin" ] || cargo build --release -q -p relayform
venv=${MOTO_VENV:-/tmp/relayform-moto-venv}
[ -x "$venv/bin/moto_server" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q "moto[server]"; }
secs=${WRK_SECONDS:-10}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; wait "$p" 2> /dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$bin" sim serve --addr 127.0.0.1:0 --json > "$work/sim.json" 2> "$work/sim.err" &
pids+=($!)
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  [ -s "$work/sim.json" ] && grep -q "Running on" "$work/moto.log" 2> /dev/null && break
  sleep 0.1
done
sim=$("$venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["aws_endpoint"])' "$work/sim.json")
key=$("$venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["demo"]["access_key_id"])' "$work/sim.json")
moto="http://127.0.0.1:$port"

# The same role and bus in both.
"$venv/bin/python" - "$key" "$sim" "$moto" <<'PY'
import boto3, json, sys
key = sys.argv[1]
trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
for url in sys.argv[2:]:
    kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
              aws_secret_access_key="sim-demo-secret-access-key")
    boto3.client("iam", **kw).create_role(RoleName="bench", AssumeRolePolicyDocument=trust)
    boto3.client("events", **kw).create_event_bus(Name="bench")
PY

# A wrk script: the request's name, body, content type, signing service, and X-Amz-Target if any.
script() {
  {
    echo 'wrk.method = "POST"'
    echo "wrk.body = '$2'"
    echo "wrk.headers[\"Content-Type\"] = \"$3\""
    echo 'wrk.headers["X-Amz-Date"] = "20261201T000000Z"'
    echo "wrk.headers[\"Authorization\"] = \"AWS4-HMAC-SHA256 Credential=$key/20261201/us-east-1/$4/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\""
    [ -z "${5:-}" ] || echo "wrk.headers[\"X-Amz-Target\"] = \"$5\""
  } > "$work/$1.lua"
}
script GetRole "Action=GetRole&RoleName=bench&Version=2010-05-08" "application/x-www-form-urlencoded; charset=utf-8" iam
script DescribeEventBus '{"Name":"bench"}' "application/x-amz-json-1.1" events AWSEvents.DescribeEventBus

rate() { # script url -> requests per second (fails when any answer was not a 2xx)
  local out
  out=$(wrk -t2 -c32 -d"${secs}s" -s "$work/$1.lua" "$2/")
  if grep -q "Non-2xx" <<< "$out"; then echo "benches/moto.sh: $1 at $2 answered errors:" >&2; echo "$out" >&2; exit 1; fi
  awk '/Requests\/sec/ { print $2 }' <<< "$out"
}
echo "wrk -t2 -c32 -d${secs}s, requests per second ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
for op in GetRole DescribeEventBus; do
  s=$(rate "$op" "$sim")
  m=$(rate "$op" "$moto")
  awk -v op="$op" -v s="$s" -v m="$m" 'BEGIN { printf "  %-17s simulator %9.0f   moto %7.0f   ×%.0f\n", op, s, m, s / m }'
done
