#!/usr/bin/env bash
# The AWS CLI (v1, from PyPI) against the simulator's IAM, STS and EventBridge.
set -euo pipefail
aws() { command aws --endpoint-url "$SIM_BASE" --output json "$@"; }
q() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
check() { if [ "$1" != "$2" ]; then echo "expected [$2], got [$1] ($3)"; exit 1; fi; echo "  $3"; }

SRC="aws.partner/salesforce.com/${SIM_ORG_ID}/0YLSM0000000CLI1AA"
check "$(aws sts get-caller-identity | q 'd["Account"]')" 000000000000 "sts get-caller-identity"
aws events create-partner-event-source --name "$SRC" --account 000000000000 >/dev/null
check "$(aws events list-event-sources --name-prefix aws.partner/salesforce.com | q 'len(d["EventSources"])')" 1 "events list-event-sources"
check "$(aws events describe-event-source --name "$SRC" | q 'd["State"]')" PENDING "events describe-event-source: PENDING"
aws events create-event-bus --name "$SRC" --event-source-name "$SRC" >/dev/null
check "$(aws events describe-event-source --name "$SRC" | q 'd["State"]')" ACTIVE "events create-event-bus associates the source"
aws events create-event-bus --name orders >/dev/null

TRUST='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
POLICY='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:PutEvents","Resource":"arn:aws:events:us-east-1:000000000000:event-bus/orders"}]}'
aws iam create-role --role-name cli-forwarder --assume-role-policy-document "$TRUST" >/dev/null
check "$(aws iam get-role --role-name cli-forwarder | q 'd["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]')" events.amazonaws.com "iam get-role (policy decoded by the CLI)"
aws iam put-role-policy --role-name cli-forwarder --policy-name put --policy-document "$POLICY"
check "$(aws iam get-role-policy --role-name cli-forwarder --policy-name put | q 'd["PolicyDocument"]["Statement"][0]["Action"]')" events:PutEvents "iam get-role-policy"

aws events put-rule --name cli-rule --event-bus-name "$SRC" --event-pattern '{"source":[{"prefix":"aws.partner/salesforce.com"}]}' >/dev/null
aws events put-targets --rule cli-rule --event-bus-name "$SRC" \
  --targets "Id=orders,Arn=arn:aws:events:us-east-1:000000000000:event-bus/orders,RoleArn=arn:aws:iam::000000000000:role/cli-forwarder" >/dev/null
check "$(aws events list-targets-by-rule --rule cli-rule --event-bus-name "$SRC" | q 'len(d["Targets"])')" 1 "events put-targets / list-targets-by-rule"
ENTRIES=$(python3 -c 'import json,sys; print(json.dumps([{"Source": sys.argv[1], "DetailType": "Order_Placed__e", "Detail": json.dumps({"payload": {"Order_Id__c": "cli"}})}]))' "$SRC")
check "$(aws events put-partner-events --entries "$ENTRIES" | q 'd["FailedEntryCount"]')" 0 "events put-partner-events"
check "$(curl -sf -H "X-Sim-Admin-Token: $SIM_ADMIN_TOKEN" "$SIM_ADMIN/deliveries?bus=orders" | q 'd["recent"][0]["event"]["detail"]["payload"]["Order_Id__c"]')" cli "the event was forwarded to the orders bus"

if aws iam delete-role --role-name cli-forwarder 2>err.txt; then echo "delete-role should fail while a policy remains"; exit 1; fi
grep -q DeleteConflict err.txt && echo "  iam delete-role: DeleteConflict"
if aws events describe-event-bus --name nope 2>err.txt; then echo "describe-event-bus nope should fail"; exit 1; fi
grep -q ResourceNotFoundException err.txt && echo "  events describe-event-bus: ResourceNotFoundException"
rm -f err.txt

# LocalStack's habit: the keys `test`/`test` are the default account's.
check "$(AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws sts get-caller-identity | q 'd["Account"]')" 000000000000 "sts get-caller-identity with LocalStack's test/test keys"
# Any other unknown key is refused, as AWS refuses it (strict_access_keys: true, the default).
if AWS_ACCESS_KEY_ID=AKIANOTAKEY AWS_SECRET_ACCESS_KEY=x aws sts get-caller-identity 2>err.txt; then echo "an unknown key should be refused"; exit 1; fi
grep -q InvalidClientTokenId err.txt && echo "  sts get-caller-identity with an unknown key: InvalidClientTokenId"
rm -f err.txt
