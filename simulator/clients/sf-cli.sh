#!/usr/bin/env bash
# The Salesforce CLI (`sf`) against the simulator: its logins (access token, JWT bearer), `org display`,
# `data query` (data and Tooling API), `data create record` and `api request rest`.
#
# The simulator's instance URL for these is its base URL: orgs are found by the session's token there,
# as on a real My Domain host (the CLI appends paths to the bare origin of an instance URL).
set -euo pipefail
fail() { echo "sf-cli: $*" >&2; exit 1; }
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }

token=$(curl -sf -X POST "$SIM_INSTANCE/services/oauth2/token" -d grant_type=client_credentials \
  -d "client_id=$SIM_CLIENT_ID" -d "client_secret=$SIM_CLIENT_SECRET" | json '["access_token"]')

SF_ACCESS_TOKEN=$token sf org login access-token --instance-url "$SIM_BASE" --alias sim --no-prompt --json >login.json \
  || fail "org login access-token: $(cat login.json)"
[ "$(json '["result"]["orgId"]' <login.json)" = "$SIM_ORG_ID" ] || fail "login reached another org: $(cat login.json)"

sf org display --target-org sim --json >display.json || fail "org display: $(cat display.json)"
[ "$(json '["result"]["username"]' <display.json)" = "$SIM_USERNAME" ] || fail "org display: $(cat display.json)"
[ "$(json '["result"]["connectedStatus"]' <display.json)" = "Connected" ] || fail "org display: $(cat display.json)"
sf org auth show-access-token --target-org sim --json >shown.json || fail "show-access-token: $(cat shown.json)"
[ "$(json '["result"]["accessToken"]' <shown.json)" = "$token" ] || fail "show-access-token gave another token"

sf data create record --use-tooling-api --sobject PlatformEventChannel --target-org sim \
  --values "FullName=SfCli__chn" --json >chn.json 2>&1 && fail "a channel without Metadata was created: $(cat chn.json)"
sf api request rest "/services/data/v59.0/tooling/sobjects/PlatformEventChannel" --method POST --target-org sim \
  --body '{"FullName":"SfCli__chn","Metadata":{"channelType":"event","label":"SfCli"}}' >chn.json \
  || fail "api request rest (create a channel): $(cat chn.json)"
json '["id"]' <chn.json | grep -q '^0YL' || fail "api request rest: $(cat chn.json)"
sf data query --use-tooling-api --query "SELECT Id, DeveloperName, ChannelType FROM PlatformEventChannel WHERE DeveloperName = 'SfCli'" \
  --target-org sim --json >chns.json || fail "tooling query: $(cat chns.json)"
[ "$(json '["result"]["records"][0]["DeveloperName"]' <chns.json)" = "SfCli" ] || fail "tooling query: $(cat chns.json)"

sf data create record --sobject Account --values "Name='Sf Cli'" --target-org sim --json >acct.json \
  || fail "data create record: $(cat acct.json)"
json '["result"]["id"]' <acct.json | grep -q '^001' || fail "data create record: $(cat acct.json)"
sf data query --query "SELECT ChangeEventHeader FROM AccountChangeEvent" --target-org sim --json >bad.json 2>&1 \
  && fail "a query on a change event was answered: $(cat bad.json)"
grep -q 'INVALID_TYPE' bad.json || fail "a refused query says why: $(cat bad.json)"
# relayform itself, taking its session from this CLI login (`auth: {sf_cli: ...}`).
if [ -n "${RELAYFORM_BIN:-}" ]; then
  cat >spec.yaml <<SPEC
version: 1
orgs:
  sim:
    instance_url: $SIM_BASE
    auth: {sf_cli: {alias: sim}}
aws_accounts:
  demo:
    account_id: "000000000000"
    region: us-east-1
    endpoint_url: $SIM_BASE
    credentials: default_chain
relays:
  orders: {org: sim, aws_account: demo, events: [Order_Placed__e], error_recovery: earliest}
SPEC
  RELAYFORM_SF_CLI=sf "$RELAYFORM_BIN" plan spec.yaml >plan.txt 2>plan.err || fail "relayform plan with sf_cli: $(cat plan.txt plan.err)"
  grep -q '+ salesforce.relay\[orders\]' plan.txt || fail "relayform plan with sf_cli: $(cat plan.txt)"
  ! grep -q "$token" plan.txt plan.err || fail "relayform printed the session"
fi

# The JWT bearer login last: a second login of the same user takes the place of the first.
sf org login jwt --username "$SIM_USERNAME" --client-id "$SIM_JWT_CLIENT_ID" --jwt-key-file "$SIM_JWT_KEY" \
  --instance-url "$SIM_BASE" --alias sim-jwt --json >jwt.json || fail "org login jwt: $(cat jwt.json)"
[ "$(json '["result"]["orgId"]' <jwt.json)" = "$SIM_ORG_ID" ] || fail "jwt login: $(cat jwt.json)"

sf data query --query "SELECT Id FROM Organization" --target-org sim-jwt --json >org.json || fail "data query: $(cat org.json)"
[ "$(json '["result"]["records"][0]["Id"]' <org.json)" = "$SIM_ORG_ID" ] || fail "data query: $(cat org.json)"
echo "sf: access-token and jwt logins, org display, show-access-token, data and tooling queries, create record, api request rest"
