"""boto3 against the simulator's STS, IAM and EventBridge."""
import json
import os

import boto3
import botocore.exceptions

session = boto3.session.Session(region_name="us-east-1")
kw = {"endpoint_url": os.environ["SIM_BASE"]}
events, iam, sts = session.client("events", **kw), session.client("iam", **kw), session.client("sts", **kw)

assert sts.get_caller_identity()["Account"] == "000000000000"
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
iam.create_role(RoleName="boto3-role", Path="/relayform/", AssumeRolePolicyDocument=json.dumps(trust), Tags=[{"Key": "app", "Value": "relayform"}])
role = iam.get_role(RoleName="boto3-role")["Role"]
assert role["AssumeRolePolicyDocument"] == trust, role
assert role["Arn"] == "arn:aws:iam::000000000000:role/relayform/boto3-role"
assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="boto3")
assert assumed["Credentials"]["AccessKeyId"].startswith("ASIA")
try:
    iam.create_role(RoleName="BOTO3-ROLE", AssumeRolePolicyDocument=json.dumps(trust))
    raise SystemExit("duplicate role accepted")
except iam.exceptions.EntityAlreadyExistsException:
    pass

events.create_event_bus(Name="boto3-bus", Tags=[{"Key": "k", "Value": "v"}])
names = [b["Name"] for b in events.list_event_buses(NamePrefix="boto3")["EventBuses"]]
assert names == ["boto3-bus"], names
assert "default" in [b["Name"] for b in events.list_event_buses()["EventBuses"]]
arn = events.put_rule(Name="r", EventBusName="boto3-bus", EventPattern=json.dumps({"source": ["app"]}))["RuleArn"]
events.put_targets(Rule="r", EventBusName="boto3-bus", Targets=[{"Id": "t", "Arn": "arn:aws:sqs:us-east-1:000000000000:q"}])
out = events.put_events(Entries=[{"Source": "app", "DetailType": "T", "Detail": "{}", "EventBusName": "boto3-bus"}])
assert out["FailedEntryCount"] == 0
assert events.describe_rule(Name="r", EventBusName="boto3-bus")["Arn"] == arn
try:
    events.describe_event_source(Name="aws.partner/salesforce.com/x/y")
    raise SystemExit("a missing source was found")
except events.exceptions.ResourceNotFoundException:
    pass
try:
    events.put_rule(Name="bad", EventBusName="boto3-bus", EventPattern="{\"source\": \"app\"}")
    raise SystemExit("a bad pattern was accepted")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidEventPatternException", e.response
print("boto3: sts, iam and events behave")
