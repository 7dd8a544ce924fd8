//! Property tests of the spec loader: for any bytes, and for YAML-shaped text built from the spec's
//! own keys, `check` returns diagnostics (never panics), each located inside the file.
//! `PROPTEST_CASES=100000` for a long run.

use proptest::prelude::*;
use relayform_spec::{SourceFile, check};

const PIECES: &[&str] = &[
    "version: 1",
    "orgs:",
    "aws_accounts:",
    "relays:",
    "  acme:",
    "    simulator: true",
    "    instance_url: https://acme.my.salesforce.com",
    "    auth: {sf_cli: {alias: a}}",
    "    account_id: \"123456789012\"",
    "    region: eu-west-1",
    "  orders:",
    "    org: acme",
    "    aws_account: events",
    "    events: [Order_Placed__e]",
    "    error_recovery: earliest",
    "    destination_bus: orders",
    "    names: {relay: X, channel: Y}",
    "    labels: {a: b}",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "&a",
    "*a",
    "<<: *a",
    "? ",
    "---",
    "...",
    "!!str",
    "'",
    "\"",
    "#",
    "\t",
    "  ",
    "AKIAIOSFODNN7EXAMPLE",
    "{env: X}",
    "ensure: absent",
];

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(PIECES).prop_map(str::to_owned),
            1 => "[ -~]{0,12}",
        ],
        0..40,
    )
    .prop_map(|lines| lines.join("\n"))
}

/// `lines`: how many lines the file has (its text may be empty when its bytes are not UTF-8).
fn checked(file: SourceFile, lines: usize) -> Result<(), TestCaseError> {
    let c = check(&[file]);
    for d in &c.diagnostics {
        prop_assert!(d.location.line >= 1 && d.location.line <= lines + 1, "{d}");
        prop_assert!(!d.message.is_empty());
    }
    Ok(())
}

proptest! {
    #[test]
    fn any_bytes_get_diagnostics_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let lines = bytes.iter().filter(|b| **b == b'\n').count() + 1;
        checked(SourceFile::from_bytes("f.yaml", bytes), lines)?;
    }

    #[test]
    fn yaml_shaped_text_gets_diagnostics_not_a_panic(text in yamlish()) {
        let lines = text.lines().count().max(1);
        checked(SourceFile::new("f.yaml", text), lines)?;
    }
}
