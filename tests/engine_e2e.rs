//! The engine end to end, through the `relayform` command line, against the embedded simulator (its
//! state in a temporary directory per test): plan → apply → plan is empty; drift reverted; replaces;
//! `ensure: absent`; destroy; saved plans (applied exactly, refused when stale); exit codes; a failure
//! injected mid-apply, then a second apply converging with nothing created twice.

use serde_json::{Value, json};
use std::path::Path;

mod support;
use support::*;

#[test]
fn apply_converges_twice_then_a_pause_by_hand_is_drift_and_reverted() {
    let d = Dir::new(DEMO);
    let (code, out, err) = d.apply();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("Plan: 12 to create, 2 to update, 0 to replace, 0 to delete."),
        "{out}"
    );
    assert!(out.contains("Apply complete: 14 changes made."), "{out}");
    assert!(
        out.contains(
            "it reached event bus `orders` (000000000000, us-east-1) through relay `orders`"
        ),
        "{out}"
    );
    assert!(
        err.contains("waiting for the partner event source of relay `orders` (Salesforce registers it, then AWS shows it)"),
        "{err}"
    );

    let before = d.with_sim(async |sim| journal_len(sim));
    let (code, out, err) = d.apply();
    assert_eq!(
        (code, out.as_str()),
        (0, "No changes: the orgs and accounts match the spec.\n"),
        "{err}"
    );
    assert_eq!(d.plan().0, 0);
    let made = d.with_sim(async |sim| mutations(sim, before));
    assert!(made.is_empty(), "a converged apply changed: {made:?}");

    // Paused through the Salesforce API: drift, reverted by apply.
    d.with_sim(async |sim| {
        let sf = salesforce(sim);
        let id = relay_id(&sf, "orders").await;
        let rec = sf.tooling_get("EventRelayConfig", &id).await.unwrap();
        let mut meta = rec["Metadata"].clone();
        meta["state"] = json!("PAUSE");
        sf.tooling_update(
            "EventRelayConfig",
            &id,
            &json!({"FullName": rec["FullName"], "Metadata": meta}),
        )
        .await
        .unwrap();
    });
    let (code, plan) = d.plan();
    assert_eq!(code, 2);
    assert_eq!(
        changes(&plan),
        ["~ salesforce.relay_state[orders]"],
        "{plan}"
    );
    assert!(
        plan.contains("# drift: changed outside relayform"),
        "{plan}"
    );
    assert!(plan.contains("(1 revert drift.)"), "{plan}");
    let (code, out, err) = d.apply();
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(d.plan().0, 0);
}

#[test]
fn drift_is_reverted_a_deleted_bus_an_edited_policy_a_removed_member() {
    let d = Dir::new(DEMO);
    assert_eq!(d.apply().0, 0);
    d.with_sim(async |sim| {
        let aws = aws(sim).await;
        let sf = salesforce(sim);
        // The orders relay's partner bus (its rule goes with it).
        let feedback = sf
            .query("SELECT EventRelayConfig.DeveloperName, RemoteResource FROM EventRelayFeedback")
            .await
            .unwrap();
        let src = feedback
            .iter()
            .find(|f| f["EventRelayConfig"]["DeveloperName"] == "orders")
            .unwrap()["RemoteResource"]
            .as_str()
            .unwrap()
            .to_owned();
        aws.events
            .remove_targets()
            .rule("relayform-forward")
            .event_bus_name(&src)
            .ids("destination")
            .send()
            .await
            .unwrap();
        aws.events
            .delete_rule()
            .name("relayform-forward")
            .event_bus_name(&src)
            .send()
            .await
            .unwrap();
        aws.events.delete_event_bus().name(&src).send().await.unwrap();
        aws.iam
            .put_role_policy()
            .role_name("relayform-us-east-1-orders")
            .policy_name("relayform-forward")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:*","Resource":"*"}]}"#)
            .send()
            .await
            .unwrap();
        let member = sf
            .tooling_query("SELECT Id FROM PlatformEventChannelMember WHERE DeveloperName = 'orders_chn_Order_Shipped_e'")
            .await
            .unwrap()[0]["Id"]
            .as_str()
            .unwrap()
            .to_owned();
        sf.tooling_delete("PlatformEventChannelMember", &member).await.unwrap();
    });
    let (code, plan) = d.plan();
    assert_eq!(code, 2);
    assert_eq!(
        changes(&plan),
        [
            "~ aws.role[demo/relayform-us-east-1-orders]",
            "+ salesforce.channel_member[orders/Order_Shipped__e]",
            "+ aws.association[orders]",
            "+ aws.forwarding[orders]",
        ],
        "{plan}"
    );
    assert_eq!(
        plan.matches("# drift: changed outside relayform").count(),
        4,
        "{plan}"
    );
    let (code, out, err) = d.apply();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("it reached event bus `orders`"), "{out}");
    assert_eq!(d.plan().0, 0);
}

#[test]
fn a_changed_kind_of_events_replaces_channel_and_relay_and_cleans_the_old_partner_bus() {
    let d = Dir::new(DEMO);
    assert_eq!(d.apply().0, 0);
    let old = d.with_sim(async |sim| partner_buses(sim).await);
    assert_eq!(old.len(), 2);
    d.set_spec(
        &DEMO
            .replace("channel_type: data", "channel_type: event")
            .replace("- AccountChangeEvent", "- Order_Cancelled__e"),
    );
    let (code, plan) = d.plan();
    assert_eq!(code, 2);
    let got = changes(&plan);
    for want in [
        "-/+ salesforce.channel[account-changes]",
        "-/+ salesforce.relay[account-changes]",
        "+ salesforce.channel_member[account-changes/Order_Cancelled__e]",
        "+ aws.association[account-changes]",
        "~ salesforce.relay_state[account-changes]",
    ] {
        assert!(got.contains(&want.to_owned()), "{want} missing from {plan}");
    }
    assert!(
        !plan.contains("drift"),
        "a spec change is not drift: {plan}"
    );
    let (code, out, err) = d.apply();
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(d.plan().0, 0);
    let now = d.with_sim(async |sim| {
        let sf = salesforce(sim);
        let relays = sf
            .tooling_query("SELECT Id, DeveloperName FROM EventRelayConfig")
            .await
            .unwrap();
        assert_eq!(relays.len(), 2, "{relays:?}");
        partner_buses(sim).await
    });
    assert_eq!(now.len(), 2, "the old partner bus is deleted: {now:?}");
    assert_eq!(
        now.iter().filter(|b| old.contains(b)).count(),
        1,
        "one bus kept, one new: {old:?} → {now:?}"
    );
}

/// The demo without the `orders` relay (one relay, no destination bus).
fn account_changes_only() -> String {
    let start = DEMO.find("  # Platform events").unwrap();
    let end = DEMO.find("  # Change data capture").unwrap();
    format!("{}{}", &DEMO[..start], &DEMO[end..])
}

#[test]
fn moving_a_relay_to_another_region_replaces_it_and_deletes_its_old_partner_bus_there() {
    let spec = account_changes_only();
    let d = Dir::new(&spec);
    assert_eq!(d.apply().0, 0);
    d.set_spec(&spec.replace("region: us-east-1", "region: us-west-2"));
    let (code, plan) = d.plan();
    assert_eq!(code, 2);
    assert_eq!(
        changes(&plan),
        [
            "+ salesforce.named_credential[demo/Relayform_000000000000_us_west_2]",
            "~ salesforce.channel[account-changes]",
            "-/+ salesforce.relay[account-changes]",
            "+ aws.association[account-changes]",
            "~ salesforce.relay_state[account-changes]",
        ],
        "{plan}"
    );
    assert!(
        plan.contains("a relay's named credential cannot change"),
        "{plan}"
    );
    let (code, out, err) = d.apply();
    assert_eq!(
        code, 0,
        "{out}
{err}"
    );
    assert!(err.contains("in us-east-1 deleted"), "{err}");
    let (code, plan) = d.plan();
    assert_eq!(code, 0, "{plan}");
    // The old credential is relayform-named but no longer in the spec: reported, left alone.
    assert!(
        plan.contains("? salesforce named credential \"Relayform_000000000000_us_east_1\" in demo"),
        "{plan}"
    );
    d.with_sim(async |sim| {
        let east = partner_buses(sim).await;
        assert!(
            east.is_empty(),
            "the old bus is gone from us-east-1: {east:?}"
        );
        let west = sim.with_world(|w, _| {
            w.accounts["000000000000"].regions["us-west-2"]
                .buses
                .keys()
                .filter(|b| b.starts_with("aws.partner/"))
                .count()
        });
        assert_eq!(west, 1);
    });
}

#[test]
fn a_wait_that_times_out_is_pending_not_failed_and_the_next_apply_carries_on() {
    let d = Dir::new(DEMO);
    let (code, out, err) = d.run(
        &["apply", "--auto-approve", "--wait-timeout", "500ms"],
        true,
    );
    assert_eq!(
        code, 3,
        "{out}
{err}"
    );
    assert!(
        out.contains("pending: aws.association[orders] create: still waiting for the partner event source of relay `orders` (Salesforce registers it, then AWS shows it) after 500ms (--wait-timeout)"),
        "{out}"
    );
    assert!(
        out.contains("still pending at Salesforce or AWS") && !out.contains("failed:"),
        "{out}"
    );
    assert!(
        out.contains("skipped: salesforce.relay_state[orders] update (aws.association[orders] is still pending)"),
        "{out}"
    );
    assert!(
        out.contains("hint: nothing failed; Salesforce and AWS take minutes for some steps. Run apply again later"),
        "{out}"
    );
    let (code, out, err) = d.apply();
    assert_eq!(
        code, 0,
        "{out}
{err}"
    );
    assert!(
        !out.contains("+ salesforce.relay["),
        "relays are not created again: {out}"
    );
    assert_eq!(d.plan().0, 0);
}

#[test]
fn ensure_absent_removes_a_relay_then_destroy_removes_the_rest() {
    let d = Dir::new(DEMO);
    assert_eq!(d.apply().0, 0);
    d.set_spec(&DEMO.replace(
        "    destination_bus: orders\n",
        "    destination_bus: orders\n    ensure: absent\n",
    ));
    let (code, plan) = d.plan();
    assert_eq!(code, 2);
    assert_eq!(
        changes(&plan),
        [
            "- aws.forwarding[orders]",
            "- aws.association[orders]",
            "- salesforce.relay[orders]",
            "- salesforce.channel[orders]",
            "- aws.role[demo/relayform-us-east-1-orders]",
        ],
        "the named credential stays: account-changes uses it. {plan}"
    );
    let (code, out, err) = d.apply();
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(d.plan().0, 0);

    let (code, out, err) = d.run(&["destroy", "--auto-approve"], true);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Destroy complete"), "{out}");
    let left = inventory(&d);
    assert!(left.iter().all(|(_, n)| *n == 0), "{left:?}");
    d.with_sim(async |sim| {
        let aws = aws(sim).await;
        let roles = aws.iam.list_roles().send().await.unwrap();
        assert!(roles.roles().is_empty(), "{roles:?}");
    });
    // Destroying nothing is no change.
    let (code, out, _) = d.run(&["destroy", "--auto-approve"], true);
    assert_eq!(
        (code, out.as_str()),
        (0, "No changes: the orgs and accounts match the spec.\n")
    );
}

#[test]
fn destroy_of_one_relay_keeps_what_the_others_need() {
    let d = Dir::new(DEMO);
    assert_eq!(d.apply().0, 0);
    let (code, _, err) = d.run(
        &[
            "destroy",
            "--auto-approve",
            "--target",
            "aws.role[demo/relayform-us-east-1-orders]",
        ],
        true,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("destroy takes the address of a relay's resource"),
        "{err}"
    );
    // A change the spec asks of `orders` (stop it) is apply's to make, not destroy's: destroy
    // used to plan the whole spec and so stopped `orders` while removing `account-changes`.
    d.set_spec(&DEMO.replacen("state: running", "state: stopped", 1));
    let (code, out, err) = d.run(
        &[
            "destroy",
            "--auto-approve",
            "--target",
            "salesforce.relay[account-changes]",
        ],
        true,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        changes(&out),
        [
            "- aws.association[account-changes]",
            "- salesforce.relay[account-changes]",
            "- salesforce.channel[account-changes]",
        ],
        "the named credential stays for `orders`: {out}"
    );
    let (code, plan) = d.plan();
    assert_eq!(code, 2);
    assert!(
        plan.contains("~ salesforce.relay_state[orders]"),
        "orders is untouched, still running, its stop left for apply: {plan}"
    );
}

#[test]
fn a_saved_plan_applies_exactly_and_a_stale_one_is_refused() {
    let d = Dir::new(DEMO);
    let plan_file = d.root.join("demo.plan");
    let pf = plan_file.display().to_string();
    let (code, out, err) = d.run(&["plan", "--out", &pf], true);
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("Plan: 12 to create, 2 to update, 0 to replace, 0 to delete.\n"));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["plan"]["format_version"], 2);
    assert_eq!(
        saved["plan"]["resource_changes"].as_array().unwrap().len(),
        14
    );

    // The world moves on (one relay's resources applied): the saved plan no longer holds.
    let (code, _, err) = d.run(
        &[
            "apply",
            "--auto-approve",
            "--target",
            "salesforce.channel[orders]",
        ],
        true,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.run(&["apply", &pf], false);
    assert_eq!(code, 1);
    assert!(err.contains("the saved plan is stale"), "{err}");

    // A fresh plan is applied as saved, without a question (it was reviewed when saved).
    let (code, _, err) = d.run(&["plan", "--out", &pf], true);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = d.run(&["apply", &pf], false);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Apply complete: 13 changes made."), "{out}");
    assert_eq!(d.plan().0, 0);

    // A spec edited after the plan was saved: refused too.
    let (code, _, _) = d.run(&["plan", "--out", &pf], true);
    assert_eq!(code, 0);
    d.set_spec(&DEMO.replace("error_recovery: latest", "error_recovery: earliest"));
    let (code, _, err) = d.run(&["apply", &pf], false);
    assert_eq!(code, 1);
    assert!(
        err.contains("the spec files changed since it was made"),
        "{err}"
    );
}

#[test]
fn plan_json_targets_orgs_and_exit_codes() {
    let d = Dir::new(DEMO);
    let (code, out, err) = d.run(&["plan", "--json"], true);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["format_version"], 2);
    assert_eq!(doc["summary"]["create"], 12);
    assert_eq!(doc["pending_externals"].as_array().unwrap().len(), 3);
    let relay = doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "salesforce.relay[orders]")
        .unwrap();
    assert_eq!(relay["actions"], json!(["create"]));
    assert_eq!(relay["before"], Value::Null);
    assert_eq!(relay["after"]["channel"], "orders__chn");

    // --target keeps the resource and what it depends on.
    let (code, out, err) = d.run(
        &[
            "plan",
            "--detailed-exitcode",
            "--target",
            "aws.association[orders]",
        ],
        true,
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        changes(&out),
        [
            "+ salesforce.named_credential[demo/Relayform_000000000000_us_east_1]",
            "+ salesforce.channel[orders]",
            "+ salesforce.channel_member[orders/Order_Placed__e]",
            "+ salesforce.channel_member[orders/Order_Shipped__e]",
            "+ salesforce.relay[orders]",
            "+ aws.association[orders]",
        ]
    );
    let (code, _, err) = d.run(&["plan", "--target", "salesforce.relay[nope]"], true);
    assert_eq!(code, 1);
    assert!(err.contains("the spec has no such resource"), "{err}");
    let (code, _, err) = d.run(&["plan", "--org", "nope"], true);
    assert_eq!(code, 1);
    assert!(
        err.contains("the spec has no such org (it has: demo)"),
        "{err}"
    );
    let (code, out, _) = d.run(&["plan", "--org", "demo"], true);
    assert_eq!(code, 0);
    assert_eq!(changes(&out).len(), 14);
    // Errors exit 1, with --detailed-exitcode too.
    let (code, _, err) = d.run(
        &["plan", "--detailed-exitcode", "/nonexistent/spec.yaml"],
        false,
    );
    assert_eq!(code, 1);
    assert!(err.contains("cannot read spec path"), "{err}");
}

#[test]
fn apply_without_a_terminal_asks_for_auto_approve() {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        // Run interactively, the question would be asked; CI has no terminal on stdin.
        return;
    }
    let d = Dir::new(DEMO);
    let (code, out, err) = d.run(&["apply"], true);
    assert_eq!(code, 1);
    assert!(
        out.contains("Plan: 12 to create"),
        "the plan is shown first: {out}"
    );
    assert!(err.contains("stdin is not a terminal"), "{err}");
    assert!(err.contains("--auto-approve"), "{err}");
    let made = d.with_sim(async |sim| mutations(sim, 0));
    assert!(made.is_empty(), "nothing changed: {made:?}");
}

#[test]
fn a_failure_mid_apply_skips_dependants_and_a_second_apply_converges_without_duplicates() {
    let d = Dir::new(DEMO);
    // Create the world, then break things: every relay create loses its response once (the relay is
    // created; apply must find and adopt it), and PutRule is refused.
    assert_eq!(d.run(&["plan"], true).0, 0);
    d.with_sim(async |sim| {
        sim.with_world(|w, _| {
            w.faults.add(serde_json::from_value(json!({"api": "salesforce", "operation": "tooling.create:EventRelayConfig", "action": {"type": "lose_response"}, "when": {"type": "next", "n": 2}})).unwrap());
            w.faults.add(serde_json::from_value(json!({"api": "aws", "operation": "PutRule", "action": {"type": "error", "status": 400, "code": "ValidationException", "message": "injected failure"}})).unwrap());
        });
    });
    let (code, out, err) = d.apply();
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(
            "Apply incomplete: of 14 changes, 11 done, 1 failed, 2 not done because of them."
        ),
        "{out}"
    );
    assert!(out.contains("failed:  aws.forwarding[orders] create: AWS events:PutRule: ValidationException: injected failure"), "{out}");
    assert!(out.contains("skipped: salesforce.relay_state[orders] update (aws.forwarding[orders] did not succeed)"), "{out}");
    assert!(
        out.contains("skipped: salesforce.channel[orders] record fingerprint"),
        "{out}"
    );
    assert!(err.contains("adopted"), "lost responses are adopted: {err}");

    d.with_sim(async |sim| sim.with_world(|w, _| w.faults.clear()));
    let (code, plan) = d.plan();
    assert_eq!(code, 2);
    // What is left is not drift: the half-applied relay has no fingerprint yet.
    assert_eq!(
        changes(&plan),
        [
            "~ salesforce.channel[orders]",
            "+ aws.forwarding[orders]",
            "~ salesforce.relay_state[orders]"
        ]
    );
    assert!(!plan.contains("drift"), "{plan}");
    let (code, out, err) = d.apply();
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(d.plan().0, 0);
    d.with_sim(async |sim| {
        let sf = salesforce(sim);
        for (object, n) in [
            ("EventRelayConfig", 2),
            ("PlatformEventChannel", 2),
            ("PlatformEventChannelMember", 3),
            ("NamedCredential", 1),
        ] {
            let rows = sf
                .tooling_query(&format!("SELECT Id FROM {object}"))
                .await
                .unwrap();
            assert_eq!(rows.len(), n, "{object}: {rows:?}");
        }
        assert_eq!(partner_buses(sim).await.len(), 2);
    });
}

#[test]
fn the_embedded_world_is_the_one_sim_serve_shows() {
    let d = Dir::new(DEMO);
    assert_eq!(d.apply().0, 0);
    // The same state file, opened the way `relayform sim serve --state` opens it.
    let names = d.with_sim(async |sim| {
        let sf = salesforce(sim);
        sf.tooling_query("SELECT DeveloperName, State FROM EventRelayConfig")
            .await
            .unwrap()
    });
    let mut got: Vec<(String, String)> = names
        .iter()
        .map(|r| {
            (
                r["DeveloperName"].as_str().unwrap().to_owned(),
                r["State"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("account_changes".to_owned(), "RUN".to_owned()),
            ("orders".to_owned(), "RUN".to_owned())
        ]
    );
    let _ = Path::new(&d.spec());
}

/// Every mutating call of a first apply, in turn, fails (refused, or made with its response lost). A
/// refused call fails that apply; a lost response does not (the call is repeated or its object found
/// and adopted). Either way the next apply converges to exactly the demo, and the one after changes
/// nothing. Runs on a world with no delays, several cases at once.
#[test]
fn a_failure_at_any_mutating_call_is_recovered_by_the_next_apply() {
    // The calls of a clean run.
    let clean = Dir::new(DEMO);
    instant_world(&clean);
    let (code, out, err) = clean.apply();
    assert_eq!(code, 0, "{out}\n{err}");
    let expected = inventory(&clean);
    let calls: Vec<String> = clean.with_sim(async |sim| {
        sim.with_world(|w, _| {
            w.journal
                .entries
                .iter()
                // The engine's calls; the demo's test event is not one of them.
                .filter(|e| e.is_mutating() && e.operation != "event.publish")
                .map(|e| e.operation.to_string())
                .collect()
        })
    });
    assert!(calls.len() >= 15, "{calls:?}");
    // (operation, which occurrence of it, fault action)
    let mut cases = Vec::new();
    let mut seen = std::collections::BTreeMap::<&str, u64>::new();
    for op in &calls {
        let n = seen.entry(op).or_default();
        *n += 1;
        let refused = if op.starts_with("tooling") {
            json!({"type": "error", "status": 400, "code": "FIELD_INTEGRITY_EXCEPTION", "message": "injected failure"})
        } else {
            json!({"type": "error", "status": 400, "code": "ValidationException", "message": "injected failure"})
        };
        for action in [refused, json!({"type": "lose_response"})] {
            cases.push((op.clone(), *n, action));
        }
    }
    let cases = std::sync::Mutex::new(cases);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let Some((op, k, action)) = cases.lock().unwrap().pop() else {
                        return;
                    };
                    let d = Dir::new(DEMO);
                    instant_world(&d);
                    let fault = json!({"operation": op, "action": action, "when": {"type": "call", "k": k}});
                    d.with_sim(async |sim| {
                        sim.with_world(|w, _| {
                            w.faults.add(serde_json::from_value(fault.clone()).unwrap())
                        });
                    });
                    let first = d.apply();
                    d.with_sim(async |sim| sim.with_world(|w, _| w.faults.clear()));
                    let second = d.apply();
                    let third = d.apply();
                    let got = inventory(&d);
                    // A refused call fails the apply; a lost response never does (the call is
                    // repeated or its object found and adopted).
                    let first_ok = if action["type"] == "lose_response" { 0 } else { 1 };
                    if first.0 != first_ok
                        || second.0 != 0
                        || third.1 != "No changes: the orgs and accounts match the spec.\n"
                        || got != expected
                    {
                        failures.lock().unwrap().push(format!(
                            "{fault}: first exit {}, second exit {} ({}), third: {}, inventory {got:?}",
                            first.0, second.0, second.1, third.1
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn relays_fingerprinted_by_an_older_relayform_are_migrated_without_a_replace() {
    let d = Dir::new(DEMO);
    assert_eq!(d.apply().0, 0);
    // Older versions kept the fingerprint in the relay's label and labelled channels with the relay
    // name; rewrite the world that way.
    d.with_sim(async |sim| {
        sim.with_world(|w, _| {
            let org = w.orgs.values_mut().next().unwrap();
            let mut moved = Vec::new();
            for ch in org
                .tooling
                .get_mut("PlatformEventChannel")
                .unwrap()
                .values_mut()
            {
                let mut rec = ch.record();
                let label = rec["MasterLabel"].as_str().unwrap().to_owned();
                let relay = label.split(" (relayform").next().unwrap().to_owned();
                rec.insert("MasterLabel".into(), json!(relay));
                rec["Metadata"]["label"] = json!(relay);
                *ch = relayform_simulator::world::Stored::new(&rec);
                moved.push((rec["FullName"].as_str().unwrap().to_owned(), label));
            }
            for r in org
                .tooling
                .get_mut("EventRelayConfig")
                .unwrap()
                .values_mut()
            {
                let mut rec = r.record();
                let channel = rec["EventChannel"].as_str().unwrap().to_owned();
                let (_, label) = moved.iter().find(|(c, _)| *c == channel).unwrap();
                rec.insert("MasterLabel".into(), json!(label));
                rec["Metadata"]["label"] = json!(label);
                *r = relayform_simulator::world::Stored::new(&rec);
            }
        })
    });
    let (code, plan) = d.plan();
    assert_eq!(code, 2, "{plan}");
    assert_eq!(
        changes(&plan),
        [
            "~ salesforce.channel[account-changes]",
            "~ salesforce.channel[orders]"
        ],
        "only the labels move: {plan}"
    );
    assert!(!plan.contains("drift"), "{plan}");
    let (code, out, err) = d.apply();
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(d.plan().0, 0, "converged after the migration");
}

#[test]
fn destroy_removes_a_shared_named_credential_with_its_last_relays_in_one_run() {
    let d = Dir::new(DEMO);
    assert_eq!(d.apply().0, 0);
    // Both demo relays use one named credential: it goes in the same run as they do.
    let (code, out, err) = d.run(&["destroy", "--auto-approve"], true);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("- salesforce.named_credential[demo/Relayform_000000000000_us_east_1]"),
        "{out}"
    );
    let left = d.with_sim(async |sim| {
        sim.with_world(|w, _| {
            w.orgs
                .values()
                .flat_map(|o| o.tooling.values().map(|m| m.len()))
                .sum::<usize>()
        })
    });
    assert_eq!(left, 0, "nothing of the spec is left in the org");
    let (code, out, _) = d.run(&["destroy", "--auto-approve"], true);
    assert_eq!(
        (code, out.as_str()),
        (0, "No changes: the orgs and accounts match the spec.\n")
    );
}

#[test]
fn channels_returned_as_ids_and_events_in_another_case_are_not_changes() {
    // A world whose relay queries return the channel's 0YL id (the other reading of the reference).
    let d = Dir::new(DEMO);
    let settings = d.root.join("simulator-settings.yaml");
    let mut text = std::fs::read_to_string(&settings).unwrap_or_default();
    text.push_str("relay_event_channel: id\n");
    std::fs::write(&settings, text).unwrap();
    let (code, out, err) = d.apply();
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, plan) = d.plan();
    assert_eq!(code, 0, "no replace: {plan}");
    // The spec now types an event in another case: Salesforce names are case-insensitive.
    // The spec text changed, so the fingerprint does: its label is the only change (no member is
    // removed and added again).
    d.set_spec(&DEMO.replace("Order_Shipped__e", "order_shipped__e"));
    let (code, plan) = d.plan();
    assert_eq!(code, 2);
    assert_eq!(changes(&plan), ["~ salesforce.channel[orders]"], "{plan}");
    assert_eq!(d.apply().0, 0);
    let (code, out, err) = d.apply();
    assert_eq!(
        (code, out.as_str()),
        (0, "No changes: the orgs and accounts match the spec.\n"),
        "{err}"
    );
}

/// The demo forwarding to a bus of another account, in another region.
fn cross_account(with_central: bool) -> String {
    let mut spec = DEMO.replace(
        "    destination_bus: orders\n",
        "    destination_bus: arn:aws:events:eu-west-1:111111111111:event-bus/central-orders\n",
    );
    if with_central {
        spec = spec.replace(
            "    region: us-east-1\n",
            "    region: us-east-1\n  central:\n    simulator: true\n    account_id: \"111111111111\"\n    region: eu-west-1\n",
        );
    }
    spec
}

#[test]
fn a_destination_in_another_account_gets_its_bus_policy_statement() {
    let d = Dir::new(&cross_account(true));
    let (code, plan) = d.plan();
    assert_eq!(code, 2);
    assert!(
        changes(&plan).contains(
            &"+ aws.bus_policy[central/eu-west-1/central-orders/000000000000]".to_owned()
        ),
        "{plan}"
    );
    let (code, out, err) = d.apply();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("it reached event bus `central-orders` (111111111111, eu-west-1)"),
        "{out}"
    );
    assert_eq!(d.plan().0, 0, "converged");
    // The statement removed by hand is drift, and put back.
    d.with_sim(async |sim| {
        sim.with_world(|w, _| {
            w.accounts
                .get_mut("111111111111")
                .unwrap()
                .regions
                .get_mut("eu-west-1")
                .unwrap()
                .buses
                .get_mut("central-orders")
                .unwrap()
                .policy = None;
        })
    });
    let (code, plan) = d.plan();
    assert_eq!(code, 2);
    assert!(
        plan.contains("+ aws.bus_policy[central/eu-west-1/central-orders/000000000000]  # drift"),
        "{plan}"
    );
    assert_eq!(d.apply().0, 0);
    // Destroy takes the statement away with the relay.
    let (code, out, err) = d.run(&["destroy", "--auto-approve"], true);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("- aws.bus_policy[central/eu-west-1/central-orders/000000000000]"),
        "{out}"
    );
    let policy = d.with_sim(async |sim| {
        sim.with_world(|w, _| {
            w.accounts["111111111111"].regions["eu-west-1"].buses["central-orders"]
                .policy
                .clone()
        })
    });
    assert_eq!(policy, None);
}

#[test]
fn a_destination_in_an_account_without_credentials_gets_the_statement_to_add() {
    let d = Dir::new(&cross_account(false));
    let (code, plan) = d.plan();
    assert_eq!(code, 2);
    assert!(
        plan.contains("! the resource policy of arn:aws:events:eu-west-1:111111111111:event-bus/central-orders needs this statement, for orders; the spec has no credentials for account 111111111111"),
        "{plan}"
    );
    assert!(
        plan.contains("aws events put-permission --region eu-west-1 --event-bus-name central-orders --action events:PutEvents --principal 000000000000 --statement-id relayform-000000000000"),
        "{plan}"
    );
    let (code, out, _) = d.run(&["plan", "--json"], true);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["manual"][0]["statement"]["Principal"]["AWS"],
        "arn:aws:iam::000000000000:root"
    );
    // Until it is added, EventBridge refuses the target, and apply says why.
    let (code, out, err) = d.apply();
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("must allow account 000000000000 to put events on it"),
        "{out}"
    );
}

#[test]
fn destroy_leaves_a_user_s_rule_on_a_partner_bus_alone_and_says_so() {
    let d = Dir::new(DEMO);
    assert_eq!(d.apply().0, 0);
    // Someone adds a rule of their own to the orders relay's partner bus.
    let bus = d.with_sim(async |sim| {
        let buses = partner_buses(sim).await;
        let aws = aws(sim).await;
        let mut on = None;
        for b in buses {
            let rules = aws
                .events
                .list_rules()
                .event_bus_name(&b)
                .send()
                .await
                .unwrap();
            if !rules.rules().is_empty() {
                aws.events
                    .put_rule()
                    .name("mine")
                    .event_bus_name(&b)
                    .event_pattern(r#"{"source":[{"prefix":"aws.partner/"}]}"#)
                    .send()
                    .await
                    .unwrap();
                on = Some(b);
            }
        }
        on.unwrap()
    });
    let (code, out, err) = d.run(&["destroy", "--auto-approve"], true);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "the partner bus {bus} has rules that relayform did not make"
        )),
        "{out}"
    );
    let rules = d.with_sim(async |sim| {
        let aws = aws(sim).await;
        let r = aws
            .events
            .list_rules()
            .event_bus_name(&bus)
            .send()
            .await
            .unwrap();
        r.rules()
            .iter()
            .map(|x| x.name().unwrap().to_owned())
            .collect::<Vec<_>>()
    });
    assert_eq!(
        rules,
        ["mine"],
        "the user's rule is still there, relayform's is gone"
    );
}

/// Everything apply creates in AWS carries `managed-by = relayform` and what it serves, so that a
/// console search or a cost report can tell relayform's resources from the rest.
#[test]
fn everything_relayform_creates_in_aws_is_tagged_as_its_own() {
    let d = Dir::new(DEMO);
    assert_eq!(d.apply().0, 0);
    let (role_tags, buses) = d.with_sim(async |sim| {
        let aws = aws(sim).await;
        let role = aws
            .iam
            .list_role_tags()
            .role_name("relayform-us-east-1-orders")
            .send()
            .await
            .unwrap();
        let role_tags: Vec<(String, String)> = role
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        let mut buses = Vec::new();
        for bus in partner_buses(sim).await {
            let arn = format!("arn:aws:events:us-east-1:000000000000:event-bus/{bus}");
            let tags = |arn: String| {
                let events = aws.events.clone();
                async move {
                    let out = events
                        .list_tags_for_resource()
                        .resource_arn(arn)
                        .send()
                        .await
                        .unwrap();
                    out.tags()
                        .iter()
                        .map(|t| (t.key().to_owned(), t.value().to_owned()))
                        .collect::<Vec<_>>()
                }
            };
            let rules = aws
                .events
                .list_rules()
                .event_bus_name(&bus)
                .send()
                .await
                .unwrap();
            let mut rule_tags = Vec::new();
            for r in rules.rules() {
                rule_tags.push(tags(r.arn().unwrap().to_owned()).await);
            }
            buses.push((tags(arn).await, rule_tags));
        }
        (role_tags, buses)
    });
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert!(
        role_tags.contains(&pair("managed-by", "relayform")),
        "{role_tags:?}"
    );
    assert!(
        role_tags.contains(&pair(
            "relayform:destination",
            "arn:aws:events:us-east-1:000000000000:event-bus/orders"
        )),
        "{role_tags:?}"
    );
    assert_eq!(buses.len(), 2, "{buses:?}");
    let mut relays = Vec::new();
    for (bus_tags, rule_tags) in &buses {
        assert!(
            bus_tags.contains(&pair("managed-by", "relayform")),
            "{bus_tags:?}"
        );
        assert!(
            bus_tags.contains(&pair("relayform:org", "demo")),
            "{bus_tags:?}"
        );
        let relay = bus_tags
            .iter()
            .find(|(k, _)| k == "relayform:relay")
            .map(|(_, v)| v.clone())
            .expect("a relay tag");
        // The forwarding rule (only `orders` forwards) says the same.
        for t in rule_tags {
            assert!(t.contains(&pair("relayform:relay", &relay)), "{t:?}");
            assert!(t.contains(&pair("managed-by", "relayform")), "{t:?}");
        }
        relays.push((relay, rule_tags.len()));
    }
    relays.sort();
    assert_eq!(
        relays,
        [("account-changes".to_owned(), 0), ("orders".to_owned(), 1)]
    );
}

/// Teardown ordering is per scope: a relay delete refused in org `alpha` skips what in `alpha` needs
/// it (its channel, its members, alpha's named credential), and nothing of org `beta`. Before, a
/// shared credential's delete waited for every relay delete of every org, so `beta`'s credential was
/// skipped because of `alpha`.
#[test]
fn a_failed_teardown_in_one_org_skips_nothing_in_another() {
    let spec = r#"version: 1
orgs:
  alpha: {simulator: true}
  beta: {simulator: true}
aws_accounts:
  events: {simulator: true, account_id: "100000000001", region: us-east-1}
relays:
  a: {org: alpha, aws_account: events, events: [Order_Placed__e], error_recovery: earliest, destination_bus: orders}
  b: {org: beta, aws_account: events, events: [Order_Placed__e], error_recovery: earliest, destination_bus: orders}
"#;
    let d = Dir::new(spec);
    let (code, out, err) = d.apply();
    assert_eq!(code, 0, "{out}\n{err}");
    d.with_sim(async |sim| {
        sim.with_world(|w, _| {
            w.faults.add(serde_json::from_value(json!({"api": "salesforce", "org": "alpha", "operation": "tooling.delete:EventRelayConfig", "action": {"type": "error", "status": 400, "code": "DELETE_FAILED", "message": "injected failure"}})).unwrap());
        });
    });
    let (code, out, err) = d.run(&["destroy", "--auto-approve", "--json"], true);
    assert_eq!(code, 1, "{out}\n{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let steps = doc["steps"].as_array().unwrap();
    let with = |outcome: &str| -> Vec<&serde_json::Value> {
        steps.iter().filter(|s| s["outcome"] == outcome).collect()
    };
    let failed = with("failed");
    assert_eq!(failed.len(), 1, "{doc:#}");
    assert_eq!(failed[0]["step"], "salesforce.relay[a] delete");
    // The provider's error kind is kept to the report.
    assert_eq!(failed[0]["error_kind"], "rejected", "{doc:#}");
    let skipped: Vec<&str> = with("skipped")
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert!(
        skipped
            .iter()
            .any(|s| s.starts_with("salesforce.named_credential[alpha/")),
        "alpha's credential waits for alpha's relay: {skipped:?}"
    );
    assert!(
        !skipped
            .iter()
            .any(|s| s.contains("[b]") || s.contains("[b/") || s.contains("[beta/")),
        "nothing of beta is skipped: {skipped:?}"
    );
    // Counted per org and account: the trouble is in alpha alone.
    let scope = |name: &str| {
        doc["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scope"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no scope {name}: {doc:#}"))
    };
    assert_eq!(scope("alpha")["failed"], 1, "{doc:#}");
    assert!(scope("alpha")["not_done"].as_u64().unwrap() > 0, "{doc:#}");
    assert_eq!(
        (&scope("beta")["failed"], &scope("beta")["not_done"]),
        (&json!(0), &json!(0)),
        "{doc:#}"
    );
    assert!(scope("beta")["done"].as_u64().unwrap() >= 3, "{doc:#}");
    // beta is gone entirely (a plan would make it again); alpha keeps its relay and credential.
    d.with_sim(async |sim| sim.with_world(|w, _| w.faults.clear()));
    let (code, plan) = d.plan();
    assert_eq!(code, 2, "{plan}");
    let made = changes(&plan);
    assert!(made.contains(&"+ salesforce.relay[b]".to_owned()), "{plan}");
    assert!(
        made.iter()
            .any(|c| c.starts_with("+ salesforce.named_credential[beta/")),
        "{plan}"
    );
    assert!(
        !made.contains(&"+ salesforce.relay[a]".to_owned()),
        "{plan}"
    );
    assert!(
        !made
            .iter()
            .any(|c| c.starts_with("+ salesforce.named_credential[alpha/")),
        "{plan}"
    );
}

/// A failure behind the executor's helpers (here the relay PATCH that starts it) keeps the
/// provider's error kind to the report; it used to be flattened to text on the way.
#[test]
fn a_refused_relay_update_is_reported_with_its_error_kind_code_and_operation() {
    let d = Dir::new(DEMO);
    assert_eq!(d.run(&["plan"], true).0, 0);
    d.with_sim(async |sim| {
        sim.with_world(|w, _| {
            w.faults.add(serde_json::from_value(json!({"api": "salesforce", "operation": "tooling.update:EventRelayConfig", "action": {"type": "error", "status": 403, "code": "INSUFFICIENT_ACCESS", "message": "injected refusal"}})).unwrap());
        });
    });
    let (code, out, err) = d.run(&["apply", "--auto-approve", "--json"], true);
    assert_eq!(code, 1, "{out}\n{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let failed: Vec<&serde_json::Value> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["outcome"] == "failed")
        .collect();
    assert!(!failed.is_empty(), "{doc:#}");
    for f in &failed {
        assert!(
            f["step"]
                .as_str()
                .unwrap()
                .starts_with("salesforce.relay_state["),
            "{f}"
        );
        assert!(
            f["detail"].as_str().unwrap().contains("injected refusal"),
            "{f}"
        );
        assert!(
            matches!(f["error_kind"].as_str(), Some("rejected" | "unauthorized")),
            "the provider's kind is kept: {f}"
        );
        // And the vendor's code and the call that failed, typed.
        assert_eq!(f["error_code"], "INSUFFICIENT_ACCESS", "{f}");
        assert_eq!(f["operation"], "tooling.update EventRelayConfig", "{f}");
    }
}
