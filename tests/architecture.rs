//! Architecture rules that matter, as tests over `cargo metadata`.
//!
//! - The spec crate, the planner and the provider contract are pure: no async runtime, no HTTP client,
//!   no cloud SDK, however indirectly.
//! - The executor (`relayform-exec`) knows no vendor: no provider crate, SDK, HTTP client or JSON; and
//!   neither the spec nor the planner (its steps carry what they act with).
//! - The simulator shares no code with the engine: it depends on none of the engine's crates, and
//!   only the CLI (which embeds it) depends on it.

use cargo_metadata::{DependencyKind, Metadata, MetadataCommand, PackageId};
use std::collections::{BTreeSet, HashMap};

fn metadata() -> Metadata {
    MetadataCommand::new()
        .manifest_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .exec()
        .expect("cargo metadata")
}

/// The names of every package `name` depends on to build (normal and build dependencies,
/// transitively; dev-dependencies do not ship).
fn shipped_dependencies(meta: &Metadata, name: &str) -> BTreeSet<String> {
    let resolve = meta.resolve.as_ref().expect("resolved");
    let nodes: HashMap<&PackageId, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let names: HashMap<&PackageId, &str> = meta
        .packages
        .iter()
        .map(|p| (&p.id, p.name.as_str()))
        .collect();
    let root = meta
        .workspace_packages()
        .into_iter()
        .find(|p| p.name.as_str() == name)
        .unwrap_or_else(|| panic!("no workspace package `{name}`"));
    let mut seen = BTreeSet::new();
    let mut stack = vec![&root.id];
    while let Some(id) = stack.pop() {
        for dep in &nodes[id].deps {
            let ships = dep
                .dep_kinds
                .iter()
                .any(|k| k.kind != DependencyKind::Development);
            if ships && seen.insert(names[&dep.pkg].to_owned()) {
                stack.push(&dep.pkg);
            }
        }
    }
    seen
}

fn forbidden(deps: &BTreeSet<String>, prefixes: &[&str]) -> Vec<String> {
    deps.iter()
        .filter(|d| prefixes.iter().any(|p| d.starts_with(p)))
        .cloned()
        .collect()
}

const IO_CRATES: &[&str] = &["tokio", "reqwest", "hyper", "aws-", "axum", "mio"];

#[test]
fn spec_crate_does_no_io() {
    let meta = metadata();
    let bad = forbidden(&shipped_dependencies(&meta, "relayform-spec"), IO_CRATES);
    assert!(
        bad.is_empty(),
        "relayform-spec must stay pure, but depends on {bad:?}"
    );
}

#[test]
fn provider_contract_does_no_io() {
    let meta = metadata();
    let bad = forbidden(
        &shipped_dependencies(&meta, "relayform-provider"),
        IO_CRATES,
    );
    assert!(
        bad.is_empty(),
        "relayform-provider must stay plain data, but depends on {bad:?}"
    );
}

#[test]
fn planner_does_no_io() {
    let meta = metadata();
    let bad = forbidden(&shipped_dependencies(&meta, "relayform-plan"), IO_CRATES);
    assert!(
        bad.is_empty(),
        "relayform-plan must stay pure, but depends on {bad:?}"
    );
}

/// The executor knows steps, needs and scopes, never a vendor: no provider crate, SDK or HTTP client
/// (and so no vendor wire format) reaches it. Nor the spec or the planner: a step carries everything
/// it acts with, so the executor needs neither the spec nor the observed state.
#[test]
fn the_executor_knows_no_vendor() {
    let meta = metadata();
    let bad = forbidden(
        &shipped_dependencies(&meta, "relayform-exec"),
        &[
            "relayform-aws",
            "relayform-salesforce",
            "relayform-simulator",
            "relayform-spec",
            "relayform-plan",
            "aws-",
            "reqwest",
            "hyper",
            "axum",
            "serde_json",
        ],
    );
    assert!(
        bad.is_empty(),
        "relayform-exec must know no vendor, but depends on {bad:?}"
    );
}

#[test]
fn the_simulator_shares_no_code_with_the_engine() {
    let meta = metadata();
    let deps = shipped_dependencies(&meta, "relayform-simulator");
    let engine: Vec<&String> = deps.iter().filter(|d| d.starts_with("relayform")).collect();
    assert!(
        engine.is_empty(),
        "the simulator must not depend on engine crates, but depends on {engine:?}"
    );
    // And no engine crate but the CLI (which embeds it) depends on the simulator.
    for p in meta.workspace_packages() {
        let name = p.name.as_str();
        if name != "relayform" && name != "relayform-simulator" && name != "relayform-tests" {
            assert!(
                !shipped_dependencies(&meta, name).contains("relayform-simulator"),
                "{name} must not depend on the simulator"
            );
        }
    }
}

#[test]
fn the_rules_see_real_dependencies() {
    // Guards the guard: the CLI does depend on the spec crate, so the walk must find it.
    let meta = metadata();
    assert!(shipped_dependencies(&meta, "relayform").contains("relayform-spec"));
}
