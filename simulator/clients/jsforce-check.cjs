// jsforce (from npm) against the simulator's OAuth, Tooling API and data API: the whole Salesforce
// side of a relay, as an admin script would do it.
const assert = require("node:assert/strict");
const jsforce = require("jsforce");

async function main() {
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: process.env.SIM_INSTANCE, clientId: process.env.SIM_CLIENT_ID, clientSecret: process.env.SIM_CLIENT_SECRET },
    version: "59.0",
  });
  const info = await conn.login(process.env.SIM_USERNAME, process.env.SIM_PASSWORD);
  assert.equal(info.organizationId, process.env.SIM_ORG_ID);
  assert.equal(conn.instanceUrl, process.env.SIM_INSTANCE);

  const nc = await conn.tooling.sobject("NamedCredential").create({
    FullName: "JsforceCredential",
    Metadata: { label: "JsforceCredential", endpoint: "arn:aws:US-EAST-1:000000000000", principalType: "NamedUser", protocol: "NoAuthentication" },
  });
  assert.ok(nc.success && nc.id.startsWith("0XA"), JSON.stringify(nc));
  await conn.tooling.sobject("PlatformEventChannel").create({ FullName: "Jsforce__chn", Metadata: { channelType: "event", label: "Jsforce" } });
  await conn.tooling.sobject("PlatformEventChannelMember").create({
    FullName: "Jsforce_chn_Order_Placed_e",
    Metadata: { eventChannel: "Jsforce__chn", selectedEntity: "Order_Placed__e" },
  });
  const relay = await conn.tooling.sobject("EventRelayConfig").create({
    FullName: "Jsforce_Relay",
    Metadata: { destinationResourceName: "callout:JsforceCredential", eventChannel: "Jsforce__chn", relayOption: '{"ReplayRecovery":"EARLIEST"}', state: "STOP" },
  });
  assert.ok(relay.id.startsWith("7k2"));

  const found = await conn.tooling.query("SELECT Id, DeveloperName, State FROM EventRelayConfig WHERE DeveloperName = 'Jsforce_Relay'");
  assert.equal(found.totalSize, 1);
  assert.equal(found.records[0].State, "STOP");
  const full = await conn.tooling.sobject("EventRelayConfig").retrieve(relay.id);
  assert.equal(full.Metadata.eventChannel, "Jsforce__chn");

  // A Tooling PATCH carries the whole definition; a partial one is refused.
  await assert.rejects(conn.tooling.sobject("EventRelayConfig").update({ Id: relay.id, Metadata: { state: "RUN" } }),
    (e) => e.errorCode === "REQUIRED_FIELD_MISSING" || e.name === "REQUIRED_FIELD_MISSING");
  await conn.tooling.sobject("EventRelayConfig").update({ Id: relay.id, FullName: full.FullName, Metadata: { ...full.Metadata, state: "RUN" } });
  const after = await conn.tooling.sobject("EventRelayConfig").retrieve(relay.id);
  assert.equal(after.State, "RUN");

  const feedback = await conn.query("SELECT EventRelayConfig.DeveloperName, Status FROM EventRelayFeedback");
  assert.equal(feedback.records[0].EventRelayConfig.DeveloperName, "Jsforce_Relay");

  const published = await conn.sobject("Order_Placed__e").create({ Order_Id__c: "jsforce-1" });
  assert.ok(published.success, JSON.stringify(published));

  await assert.rejects(conn.tooling.sobject("EventRelayConfig").create({
    FullName: "Jsforce_Relay",
    Metadata: { destinationResourceName: "callout:JsforceCredential", eventChannel: "Jsforce__chn" },
  }), (e) => e.errorCode === "FIELD_INTEGRITY_EXCEPTION" || e.name === "FIELD_INTEGRITY_EXCEPTION");
  await assert.rejects(conn.query("SELECT Nope FROM EventRelayFeedback"), (e) => e.errorCode === "INVALID_FIELD" || e.name === "INVALID_FIELD");
  console.log("jsforce: login, tooling create/query/retrieve/update, query, publish and errors behave");
}

main().catch((e) => { console.error(e); process.exit(1); });
