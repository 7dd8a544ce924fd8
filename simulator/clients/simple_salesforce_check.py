"""simple-salesforce against the simulator's Salesforce: its logins (session id, client credentials,
password, JWT bearer) and the Tooling and data calls an Event Relay script makes.

simple-salesforce speaks https only, to `<domain>.salesforce.com` for logins and to the instance it
is given or told; a requests adapter sends those calls to the plain-http simulator instead, and
changes nothing else about them.
"""
import json
import os
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError

BASE = urlsplit(os.environ["SIM_BASE"])


class ToSimulator(requests.adapters.HTTPAdapter):
    """https://<anything>.salesforce.com/... and https://<simulator>/... → http://<simulator>/..."""

    def send(self, request, **kwargs):
        url = urlsplit(request.url)
        if url.hostname and url.hostname.endswith(".salesforce.com"):
            url = url._replace(netloc=BASE.netloc)
        request.url = urlunsplit(url._replace(scheme="http"))
        return super().send(request, **kwargs)


def session():
    s = requests.Session()
    s.mount("https://", ToSimulator())
    return s


client_id, client_secret = os.environ["SIM_CLIENT_ID"], os.environ["SIM_CLIENT_SECRET"]
username, password = os.environ["SIM_USERNAME"], os.environ["SIM_PASSWORD"]
logins = {
    # Client credentials: simple-salesforce posts to https://<domain>.salesforce.com.
    "client credentials": lambda: Salesforce(
        consumer_key=client_id, consumer_secret=client_secret, domain="demo.my", session=session()
    ),
    # The OAuth username-password flow (with a connected app).
    "password": lambda: Salesforce(
        username=username,
        password=password,
        consumer_key=client_id,
        consumer_secret=client_secret,
        session=session(),
    ),
    # JWT bearer, signed with the test-only key whose public half the JWT app holds.
    "jwt": lambda: Salesforce(
        username=username,
        consumer_key=os.environ["SIM_JWT_CLIENT_ID"],
        privatekey_file=os.environ["SIM_JWT_KEY"],
        domain="login",
        session=session(),
    ),
}
for name, login in logins.items():
    sf = login()
    assert sf.session_id, name
    assert sf.query("SELECT Id FROM Organization")["records"][0]["Id"] == os.environ["SIM_ORG_ID"], name

# A session id with the instance URL, as scripts that get their token elsewhere use it.
sf = Salesforce(instance_url=os.environ["SIM_INSTANCE"], session_id=sf.session_id, session=session())
assert sf.query("SELECT Id FROM Organization")["totalSize"] == 1

# Refused credentials are the vendor's OAuth error.
try:
    Salesforce(username=username, password="wrong", consumer_key=client_id, consumer_secret=client_secret, session=session())
    raise SystemExit("a wrong password was accepted")
except SalesforceAuthenticationFailed as e:
    assert e.code == "invalid_grant", e.code


def tooling(path, method="GET", data=None):
    return sf.toolingexecute(path, method=method, data=data)


nc = tooling("sobjects/NamedCredential", "POST", {
    "FullName": "SimpleSalesforce",
    "Metadata": {"label": "SimpleSalesforce", "endpoint": "arn:aws:US-EAST-1:000000000000",
                 "principalType": "NamedUser", "protocol": "NoAuthentication"},
})
assert nc["success"] and nc["id"].startswith("0XA"), nc
tooling("sobjects/PlatformEventChannel", "POST", {"FullName": "SimpleSf__chn", "Metadata": {"channelType": "event", "label": "SimpleSf"}})
tooling("sobjects/PlatformEventChannelMember", "POST", {
    "FullName": "SimpleSf_chn_Order_Placed_e",
    "Metadata": {"eventChannel": "SimpleSf__chn", "selectedEntity": "Order_Placed__e"},
})
relay = tooling("sobjects/EventRelayConfig", "POST", {
    "FullName": "SimpleSf_Relay",
    "Metadata": {"label": "SimpleSf Relay", "destinationResourceName": "callout:SimpleSalesforce",
                 "eventChannel": "SimpleSf__chn", "relayOption": '{"ReplayRecovery":"EARLIEST"}', "state": "STOP"},
})["id"]
found = tooling("query/?q=" + quote("SELECT Id, State FROM EventRelayConfig WHERE DeveloperName = 'SimpleSf_Relay'"))
assert found["records"][0]["State"] == "STOP", found

# A Tooling PATCH is the whole definition: a partial one is refused, the full one taken.
record = tooling(f"sobjects/EventRelayConfig/{relay}")
try:
    tooling(f"sobjects/EventRelayConfig/{relay}", "PATCH", {"Metadata": {"state": "RUN"}})
    raise SystemExit("a partial PATCH was accepted")
except SalesforceError as e:
    assert e.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING", e.content
tooling(f"sobjects/EventRelayConfig/{relay}", "PATCH", {"FullName": record["FullName"], "Metadata": {**record["Metadata"], "state": "RUN"}})
assert tooling(f"sobjects/EventRelayConfig/{relay}")["State"] == "RUN"

feedback = sf.query("SELECT EventRelayConfig.DeveloperName, Status FROM EventRelayFeedback")
assert "SimpleSf_Relay" in [r["EventRelayConfig"]["DeveloperName"] for r in feedback["records"]], feedback
published = sf.restful("sobjects/Order_Placed__e", method="POST", data=json.dumps({"Order_Id__c": "simple-1"}))
assert published["success"], published
print("simple-salesforce: client credentials, password, JWT and session logins; tooling create/query/get/patch; query; publish")
