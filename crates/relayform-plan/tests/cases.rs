//! Data-driven planner cases: each directory under `tests/cases/` holds a `spec.yaml` (the desired
//! state) and, unless the world is empty, an `observed.yaml` (what refresh would return, in the shape
//! of `diff::Observed`). The plan's text and its drift list are snapshotted per case
//! (`snapshots/cases__<case>.snap`); review changes with `cargo insta review`.
//!
//! Values that depend on the spec are written as placeholders, in single quotes, so that cases stay
//! true when derivations change: `'@fingerprint(RELAY)'` is the label relayform gives the spec relay
//! RELAY's channel (with its current fingerprint), `'@trust(ACCOUNT)'` the forwarding role's trust policy for a
//! spec account, `'@permission(RELAY)'` the role's permission policy for a relay's destination.

use relayform_plan::diff::{Observed, channel_label, fingerprint, plan};
use relayform_spec::{SourceFile, Spec, check};
use std::path::Path;

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases");

/// Replaces every `@name(arg)` in `text` with `f(arg)`.
fn expand(text: &str, name: &str, f: impl Fn(&str) -> String) -> String {
    let open = format!("@{name}(");
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(&open) {
        out.push_str(&rest[..i]);
        let after = &rest[i + open.len()..];
        let end = after.find(')').unwrap_or_else(|| panic!("unclosed {open}"));
        out.push_str(&f(&after[..end]));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn observed(spec: &Spec, text: &str) -> Observed {
    let graph = relayform_plan::desired(spec);
    let text = expand(text, "fingerprint", |r| {
        channel_label(r, &fingerprint(&graph, r))
    });
    let text = expand(&text, "trust", |a| {
        let acct = &spec.aws_accounts[a];
        relayform_plan::policy::forwarding_trust("aws", &acct.region, &acct.account_id).to_string()
    });
    let text = expand(&text, "permission", |r| {
        let dest = spec.relays[r].destination.as_ref().expect("a destination");
        relayform_plan::policy::forwarding_permission(&dest.value.arn()).to_string()
    });
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("observed.yaml: {e}"))
}

fn run(dir: &Path) -> String {
    let spec_text = std::fs::read_to_string(dir.join("spec.yaml")).unwrap();
    let checked = check(&[SourceFile::new("spec.yaml", spec_text)]);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let spec = checked.spec;
    let seen = match std::fs::read_to_string(dir.join("observed.yaml")) {
        Ok(text) => observed(&spec, &text),
        Err(_) => Observed::default(),
    };
    let p = plan(&spec, &seen);
    let drift: Vec<String> = p
        .changes
        .iter()
        .filter(|c| c.drift)
        .map(|c| c.address.to_string())
        .collect();
    format!("{p}drift: {drift:?}\n")
}

#[test]
fn planner_cases() {
    let mut dirs: Vec<_> = std::fs::read_dir(CASES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 9, "the cases are missing");
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let out = run(&dir);
        insta::with_settings!({ description => format!("tests/cases/{name}"), omit_expression => true }, {
            insta::assert_snapshot!(name, out);
        });
    }
}
