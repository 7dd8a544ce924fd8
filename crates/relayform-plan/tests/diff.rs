//! The planner: desired × observed → plan, checked against the observed state of a fully applied spec
//! and variations of it.

use relayform_plan::diff::{
    Observed, admin, channel_label, fingerprint, label_fingerprint, plan, recovery,
    unfinished_label,
};
use relayform_plan::plan::Action;
use relayform_provider::*;
use relayform_spec::names::{FORWARD_RULE, FORWARD_TARGET, ROLE_POLICY};
use relayform_spec::{Ensure, SourceFile, Spec, check, names};

const ORG_ID: &str = "00DSM0000000001AAA";

fn spec(text: &str) -> Spec {
    let c = check(&[SourceFile::new("t.yaml", text)]);
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    c.spec
}

const SPEC: &str = r#"
version: 1
orgs: {acme: {simulator: true}}
aws_accounts: {events: {simulator: true, account_id: "123456789012", region: eu-west-1}}
relays:
  orders:
    org: acme
    aws_account: events
    events: [Order_Placed__e, Order_Shipped__e]
    error_recovery: earliest
    destination_bus: orders
  accounts:
    org: acme
    aws_account: events
    events: [AccountChangeEvent]
    error_recovery: latest
    state: paused
"#;

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What the orgs and accounts look like once the spec has been applied.
/// What a spec looks like once relayform has applied it (labels carry the spec's fingerprints).
fn converged(spec: &Spec) -> Observed {
    let graph = relayform_plan::desired(spec);
    let mut obs = Observed::default();
    for (i, (spec_name, r)) in spec
        .relays
        .iter()
        .filter(|(_, r)| r.ensure == Ensure::Present)
        .enumerate()
    {
        let acct = &spec.aws_accounts[&r.aws_account.value];
        let o = obs
            .orgs
            .entry(r.org.value.clone())
            .or_insert_with(|| ObservedOrg {
                org_id: ORG_ID.into(),
                ..Default::default()
            });
        if !o
            .named_credentials
            .iter()
            .any(|n| n.name == r.names.named_credential)
        {
            o.named_credentials.push(ObservedNamedCredential {
                id: format!("0XA{i}"),
                name: r.names.named_credential.clone(),
                label: None,
                endpoint: Some(names::named_credential_endpoint(
                    &acct.account_id,
                    &acct.region,
                )),
            });
        }
        let channel_id = format!("0YLSM00000000{i:02}AAA");
        o.channels.push(ObservedChannel {
            id: channel_id.clone(),
            name: r.names.channel.clone(),
            label: Some(channel_label(spec_name, &fingerprint(&graph, spec_name))),
            channel_type: Some(r.channel_type.as_str().into()),
        });
        for e in &r.events {
            o.members.push(ObservedMember {
                id: format!("0v8{i}{}", e.value),
                name: names::channel_member(&r.names.channel, e),
                channel_id: Some(channel_id.clone()),
                event: Some(e.value.clone()),
            });
        }
        let source = format!("aws.partner/salesforce.com/{ORG_ID}/{channel_id}");
        o.relays.push(ObservedRelay {
            id: format!("7k2{i}"),
            name: r.names.relay.clone(),
            label: Some(unfinished_label(spec_name)),
            channel: Some(names::channel_full_name(&r.names.channel)),
            destination: Some(format!("callout:{}", r.names.named_credential)),
            relay_option: Some(recovery(r.error_recovery).relay_option().into()),
            state: Some(admin(r.state).as_str().into()),
            status: Some("RUNNING".into()),
            remote_resource: Some(source.clone()),
            ..Default::default()
        });
        let a = obs
            .accounts
            .entry(r.aws_account.value.clone())
            .or_insert_with(|| ObservedAccount {
                account_id: acct.account_id.value.clone(),
                region: acct.region.value.clone(),
                ..Default::default()
            });
        a.sources.push(ObservedSource {
            name: source.clone(),
            state: Some("ACTIVE".into()),
        });
        a.buses.push(ObservedBus {
            name: source.clone(),
            arn: None,
        });
        if let (Some(d), Some(role)) = (&r.destination, &r.names.role) {
            let role_arn = format!("arn:aws:iam::{}:role/{role}", acct.account_id.value);
            a.rules.push(ObservedRule {
                bus: source.clone(),
                name: FORWARD_RULE.into(),
                event_pattern: None,
                state: Some("ENABLED".into()),
                targets: vec![ObservedTarget {
                    id: FORWARD_TARGET.into(),
                    arn: d.value.arn(),
                    role_arn: Some(role_arn.clone()),
                }],
            });
            if !a.roles.iter().any(|x| &x.name == role) {
                let trust =
                    relayform_plan::policy::forwarding_trust("aws", &acct.region, &acct.account_id);
                let perm = relayform_plan::policy::forwarding_permission(&d.value.arn());
                a.roles.push(ObservedRole {
                    name: role.clone(),
                    arn: role_arn,
                    trust_policy: Some(encode(&trust.to_string())),
                    policy: Some((ROLE_POLICY.into(), encode(&perm.to_string()))),
                });
            }
        }
    }
    obs
}

/// The changes that are marked as drift.
fn drift(p: &relayform_plan::plan::Plan) -> Vec<String> {
    p.changes
        .iter()
        .filter(|c| c.drift)
        .map(|c| c.address.to_string())
        .collect()
}

fn actions(p: &relayform_plan::plan::Plan) -> Vec<String> {
    p.changes
        .iter()
        .map(|c| format!("{} {}", c.action.symbol(), c.address))
        .collect()
}

#[test]
fn a_converged_world_needs_no_changes() {
    let s = spec(SPEC);
    let p = plan(&s, &converged(&s));
    assert!(p.is_empty(), "{p}");
    assert_eq!(
        p.to_string(),
        "No changes: the orgs and accounts match the spec.\n"
    );
}

#[test]
fn an_empty_world_gets_everything_in_order_with_pending_externals() {
    let s = spec(SPEC);
    let p = plan(&s, &Observed::default());
    insta::assert_snapshot!(p.to_string());
    let pending: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.waits_for.is_some())
        .map(|c| c.address.to_string())
        .collect();
    assert_eq!(
        pending,
        [
            "aws.association[accounts]",
            "aws.association[orders]",
            "aws.forwarding[orders]"
        ]
    );
}

#[test]
fn a_relay_paused_by_hand_is_started_again() {
    let s = spec(SPEC);
    let mut obs = converged(&s);
    obs.orgs
        .get_mut("acme")
        .unwrap()
        .relays
        .iter_mut()
        .find(|r| r.name == "orders")
        .unwrap()
        .state = Some("PAUSE".into());
    let p = plan(&s, &obs);
    assert_eq!(actions(&p), ["~ salesforce.relay_state[orders]"]);
    assert_eq!(drift(&p), ["salesforce.relay_state[orders]"]);
    assert!(p.to_string().contains("state: \"PAUSE\" → \"RUN\""), "{p}");
    assert!(
        p.to_string().contains("# drift: changed outside relayform"),
        "{p}"
    );
}

#[test]
fn a_spec_change_is_not_drift_and_records_the_new_fingerprint() {
    let s = spec(SPEC);
    let obs = converged(&s);
    let changed = spec(&SPEC.replace("error_recovery: earliest", "error_recovery: latest"));
    let p = plan(&changed, &obs);
    assert_eq!(
        actions(&p),
        ["~ salesforce.channel[orders]", "~ salesforce.relay[orders]"]
    );
    assert!(drift(&p).is_empty(), "{p}");
    let fields: Vec<_> = p.changes[1].fields.iter().map(|f| f.field).collect();
    assert_eq!(fields, ["error_recovery"]);
    let graph = relayform_plan::desired(&changed);
    assert_eq!(
        p.changes[0].fields[0].after.as_deref(),
        Some(channel_label("orders", &fingerprint(&graph, "orders")).as_str()),
        "the new fingerprint goes on the channel's label"
    );
    // Relays applied without a fingerprint (by hand, or by an older relayform) are not drift either.
    let mut bare = converged(&s);
    let o = bare.orgs.get_mut("acme").unwrap();
    for c in &mut o.channels {
        c.label = None;
    }
    for r in &mut o.relays {
        r.label = None;
        r.state = Some("STOP".into());
    }
    let p = plan(&s, &bare);
    assert!(drift(&p).is_empty(), "{p}");
}

#[test]
fn labels_stay_within_salesforce_s_80_characters() {
    let long = "r".repeat(64);
    let fp = "0123456789ab";
    let label = channel_label(&long, fp);
    assert_eq!(label.chars().count(), 80, "{label}");
    assert_eq!(label_fingerprint(&label).as_deref(), Some(fp));
    assert!(unfinished_label(&long).chars().count() <= 80);
    assert_eq!(
        channel_label("orders", fp),
        "orders (relayform 0123456789ab)"
    );
}

#[test]
fn a_removed_member_is_added_and_an_extra_one_removed_by_the_channel_diff() {
    let s = spec(SPEC);
    let mut obs = converged(&s);
    obs.orgs
        .get_mut("acme")
        .unwrap()
        .members
        .retain(|m| m.event.as_deref() != Some("Order_Shipped__e"));
    let p = plan(&s, &obs);
    assert_eq!(
        actions(&p),
        ["+ salesforce.channel_member[orders/Order_Shipped__e]"]
    );
    assert_eq!(
        drift(&p),
        ["salesforce.channel_member[orders/Order_Shipped__e]"]
    );
    // A member added by hand is removed.
    let mut obs = converged(&s);
    let o = obs.orgs.get_mut("acme").unwrap();
    let channel = o
        .members
        .iter()
        .find(|m| m.event.as_deref() == Some("Order_Placed__e"))
        .unwrap()
        .channel_id
        .clone();
    o.members.push(ObservedMember {
        id: "0v8x".into(),
        name: "orders_chn_Extra_e".into(),
        channel_id: channel,
        event: Some("Extra__e".into()),
    });
    let p = plan(&s, &obs);
    assert_eq!(
        actions(&p),
        ["- salesforce.channel_member[orders/Extra__e]"]
    );
    assert_eq!(drift(&p), ["salesforce.channel_member[orders/Extra__e]"]);
}

#[test]
fn a_deleted_bus_is_associated_again_and_its_forwarding_recreated() {
    let s = spec(SPEC);
    let mut obs = converged(&s);
    let a = obs.accounts.get_mut("events").unwrap();
    let src = a.rules[0].bus.clone();
    a.buses.retain(|b| b.name != src);
    a.rules.clear();
    let p = plan(&s, &obs);
    assert_eq!(
        actions(&p),
        ["+ aws.association[orders]", "+ aws.forwarding[orders]"]
    );
    assert_eq!(
        drift(&p),
        ["aws.association[orders]", "aws.forwarding[orders]"]
    );
}

#[test]
fn an_equivalent_policy_is_no_change_and_an_edited_one_is_reverted() {
    let s = spec(SPEC);
    let mut obs = converged(&s);
    let role = &mut obs.accounts.get_mut("events").unwrap().roles[0];
    role.policy = Some((ROLE_POLICY.into(), r#"{"Version":"2012-10-17","Statement":{"Sid":"x","Effect":"Allow","Action":["events:PutEvents"],"Resource":["arn:aws:events:eu-west-1:123456789012:event-bus/orders"]}}"#.into()));
    assert!(plan(&s, &obs).is_empty());
    let role = &mut obs.accounts.get_mut("events").unwrap().roles[0];
    role.policy = Some((
        ROLE_POLICY.into(),
        r#"{"Statement":{"Effect":"Allow","Action":"events:*","Resource":"*"}}"#.into(),
    ));
    let p = plan(&s, &obs);
    assert_eq!(
        actions(&p),
        ["~ aws.role[events/relayform-eu-west-1-orders]"]
    );
    // Shown as a line diff of the documents in canonical form: only what differs is marked.
    let text = p.to_string();
    assert!(text.contains("      permission_policy:\n"), "{p}");
    let line = |sign: &str, what: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with(sign) && l.contains(what))
    };
    assert!(line("- ", "\"events:*\""), "{p}");
    assert!(line("+ ", "\"events:PutEvents\""), "{p}");
    assert!(
        line("\"Effect\"", "Allow"),
        "unchanged lines are context: {p}"
    );
    assert!(!line("- ", "Effect"), "{p}");
    assert_eq!(drift(&p), ["aws.role[events/relayform-eu-west-1-orders]"]);
}

#[test]
fn changing_the_account_replaces_credential_and_relays() {
    let s = spec(SPEC);
    let obs = converged(&s);
    let moved = spec(&SPEC.replace("region: eu-west-1", "region: us-east-1"));
    let p = plan(&moved, &obs);
    insta::assert_snapshot!(p.to_string());
    assert!(p.changes.iter().any(
        |c| c.action == Action::Replace && c.address.to_string() == "salesforce.relay[orders]"
    ));
}

#[test]
fn changing_the_kind_of_events_replaces_channel_and_relay() {
    let s = spec(SPEC);
    let obs = converged(&s);
    let changed = spec(&SPEC.replace("events: [AccountChangeEvent]", "events: [Invoice_Paid__e]"));
    let p = plan(&changed, &obs);
    let got = actions(&p);
    assert!(
        got.contains(&"-/+ salesforce.channel[accounts]".to_owned()),
        "{p}"
    );
    assert!(
        got.contains(&"-/+ salesforce.relay[accounts]".to_owned()),
        "{p}"
    );
    assert!(
        got.contains(&"+ salesforce.channel_member[accounts/Invoice_Paid__e]".to_owned()),
        "{p}"
    );
    assert!(
        got.contains(&"+ aws.association[accounts]".to_owned()),
        "the new relay's source has to be associated: {p}"
    );
}

#[test]
fn absent_relays_are_removed_with_what_only_they_use_and_strangers_are_left_alone() {
    let s = spec(SPEC);
    let mut obs = converged(&s);
    obs.orgs
        .get_mut("acme")
        .unwrap()
        .relays
        .push(ObservedRelay {
            id: "7k2x".into(),
            name: "Hand_Made".into(),
            ..Default::default()
        });
    let events = obs.accounts.get_mut("events").unwrap();
    let stranger = "aws.partner/salesforce.com/00DSM0000000009AAA/0YLSM0000000099AAA";
    events.buses.push(ObservedBus {
        name: stranger.into(),
        arn: None,
    });
    events.sources.push(ObservedSource {
        name: stranger.into(),
        state: Some("ACTIVE".into()),
    });
    let gone = spec(&SPEC.replace(
        "    destination_bus: orders\n",
        "    destination_bus: orders\n    ensure: absent\n",
    ));
    let p = plan(&gone, &obs);
    insta::assert_snapshot!(p.to_string());
    assert!(p.unmanaged.iter().any(|u| u.name == "Hand_Made"));
    let aws: Vec<_> = p
        .unmanaged
        .iter()
        .filter(|u| u.system == "aws")
        .map(|u| (u.kind, u.name.as_str()))
        .collect();
    assert_eq!(
        aws,
        [("partner event bus", stranger)],
        "the stranger once; the absent relay's own bus is not a stranger"
    );
    // The named credential is still used by the other relay: kept.
    assert!(
        !p.changes
            .iter()
            .any(|c| c.address.kind == relayform_plan::Kind::NamedCredential)
    );
}

#[test]
fn a_relay_s_channel_in_another_form_is_the_same_channel() {
    use relayform_plan::diff::same_channel;
    let id = Some("0YLSM0000000001AAA");
    assert!(same_channel(Some("orders__chn"), "orders__chn", id));
    assert!(same_channel(Some("Orders__CHN"), "orders__chn", id));
    assert!(same_channel(Some("acme__orders__chn"), "orders__chn", id));
    assert!(same_channel(Some("0YLSM0000000001AAA"), "orders__chn", id));
    assert!(same_channel(Some("0YLSM0000000001"), "orders__chn", id));
    assert!(!same_channel(Some("0YLSM0000000002AAA"), "orders__chn", id));
    assert!(!same_channel(Some("returns__chn"), "orders__chn", id));
    assert!(!same_channel(None, "orders__chn", id));

    // So a relay whose query gave the channel's id is not replaced.
    let s = spec(SPEC);
    let mut obs = converged(&s);
    let o = obs.orgs.get_mut("acme").unwrap();
    let ids: Vec<(String, String)> = o
        .channels
        .iter()
        .map(|c| (names::channel_full_name(&c.name), c.id.clone()))
        .collect();
    for r in &mut o.relays {
        let full = r.channel.clone().unwrap();
        r.channel = ids
            .iter()
            .find(|(n, _)| *n == full)
            .map(|(_, id)| id.clone());
    }
    assert!(plan(&s, &obs).is_empty(), "{}", plan(&s, &obs));
}

#[test]
fn events_compare_case_insensitively() {
    let s = spec(SPEC);
    let mut obs = converged(&s);
    for m in &mut obs.orgs.get_mut("acme").unwrap().members {
        m.event = m.event.as_ref().map(|e| e.to_uppercase());
    }
    assert!(plan(&s, &obs).is_empty(), "{}", plan(&s, &obs));
}

#[test]
fn removing_every_relay_of_a_credential_removes_the_credential_in_the_same_plan() {
    let s = spec(SPEC);
    let obs = converged(&s);
    let gone = spec(&SPEC.replace("    events:", "    ensure: absent\n    events:"));
    assert!(gone.relays.values().all(|r| r.ensure == Ensure::Absent));
    let p = plan(&gone, &obs);
    assert!(
        actions(&p)
            .iter()
            .any(|a| a.starts_with("- salesforce.named_credential[")),
        "{p}"
    );
}
