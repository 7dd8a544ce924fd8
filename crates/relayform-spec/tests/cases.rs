//! Data-driven spec tests.
//!
//! `invalid/` holds one case per file, or per directory for problems that span files. Each case is
//! checked as one spec; its rendered diagnostics are compared with `snapshots/cases__<case>.snap`
//! (`cargo insta review` after an intended change). `valid/` holds specs that must pass cleanly.
//!
//! Beyond the snapshots, the harness checks that every rule has a case, that the JSON Schema rejects
//! every case whose problem is one of shape, and that no diagnostic ever echoes a secret.

use relayform_spec::{SourceFile, check, schema};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// The cases under `dir`: (name, files), in name order.
fn cases(dir: &Path) -> Vec<(String, Vec<SourceFile>)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let mut files = if path.is_dir() {
                std::fs::read_dir(&path)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect()
            } else {
                vec![path.clone()]
            };
            files.sort();
            let files = files
                .iter()
                .map(|f| {
                    // Diagnostics name files relative to the case folder, so snapshots are portable.
                    let shown = f.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                    SourceFile::from_bytes(shown, std::fs::read(f).unwrap())
                })
                .collect();
            (name, files)
        })
        .collect()
}

fn render(files: &[SourceFile]) -> (String, Vec<&'static str>) {
    let checked = check(files);
    let text = checked
        .diagnostics
        .iter()
        .map(|d| format!("{d}\n"))
        .collect();
    (text, checked.diagnostics.iter().map(|d| d.code).collect())
}

/// Codes whose problem is the document's shape: the JSON Schema must reject those cases too.
const SHAPE_CODES: &[&str] = &[
    "unknown-key",
    "wrong-type",
    "missing-field",
    "unsupported-version",
    "invalid-account-id",
    "invalid-region",
    "conflicting-fields",
    "invalid-name",
];

/// Every rule of the spec language, by diagnostic code: each must be exercised by some invalid case.
const ALL_CODES: &[&str] = &[
    "yaml-syntax",
    "unknown-key",
    "wrong-type",
    "missing-field",
    "unsupported-version",
    "invalid-value",
    "invalid-name",
    "duplicate-name",
    "dangling-reference",
    "invalid-api-name",
    "invalid-event-name",
    "wrong-channel-type",
    "mixed-event-kinds",
    "duplicate-event",
    "shared-channel",
    "shared-credential",
    "shared-role",
    "name-too-long",
    "invalid-account-id",
    "invalid-region",
    "invalid-role-name",
    "invalid-bus",
    "invalid-org-id",
    "duplicate-org",
    "invalid-url",
    "generic-login-url",
    "conflicting-fields",
    "mixed-simulator",
    "literal-secret",
    "too-deep",
    "not-utf8",
];

fn schema_validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema::json_schema()).expect("the schema is a valid JSON Schema")
}

fn as_json(text: &str) -> Option<serde_json::Value> {
    serde_yaml::from_str(text).ok()
}

#[test]
fn invalid_cases() {
    let validator = schema_validator();
    let cases = cases(&dir("invalid"));
    assert!(cases.len() >= 25, "only {} invalid cases", cases.len());
    let mut seen = BTreeSet::new();
    for (name, files) in &cases {
        let (text, codes) = render(files);
        assert!(!codes.is_empty(), "case `{name}` produced no diagnostic");
        seen.extend(codes.iter().copied());
        insta::assert_snapshot!(name.as_str(), text);
        if codes.iter().any(|c| SHAPE_CODES.contains(c)) {
            let rejected = files.iter().any(|f| match as_json(&f.text) {
                Some(doc) => !validator.is_valid(&doc),
                None => true,
            });
            assert!(
                rejected,
                "case `{name}` has a shape error that the JSON Schema accepts"
            );
        }
    }
    let missing: Vec<_> = ALL_CODES.iter().filter(|c| !seen.contains(*c)).collect();
    assert!(missing.is_empty(), "no invalid case exercises {missing:?}");
    let unknown: Vec<_> = seen.iter().filter(|c| !ALL_CODES.contains(c)).collect();
    assert!(
        unknown.is_empty(),
        "codes {unknown:?} are not listed in ALL_CODES"
    );
}

#[test]
fn valid_cases() {
    let validator = schema_validator();
    for (name, files) in cases(&dir("valid")) {
        let (text, _) = render(&files);
        assert_eq!(text, "", "case `{name}` should be valid");
        for f in &files {
            let doc = as_json(&f.text).unwrap();
            let errors: Vec<_> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "schema rejects {}: {errors:?}", f.path);
        }
    }
}

#[test]
fn secrets_never_reach_output() {
    let files = &cases(&dir("invalid"))
        .into_iter()
        .find(|(n, _)| n == "literal-secrets")
        .unwrap()
        .1;
    let (text, codes) = render(files);
    assert!(
        codes.iter().filter(|c| **c == "literal-secret").count() >= 4,
        "{text}"
    );
    let (more, _) = render(
        &cases(&dir("invalid"))
            .into_iter()
            .find(|(n, _)| n == "secrets-everywhere")
            .unwrap()
            .1,
    );
    let text = text + &more;
    for secret in [
        "8D3F1A2B",
        "AKIAIOSFODNN7",
        "wJalrXUtnFEMI",
        "AQ8AQJ9XyZ",
        "ASIAJEXAMPLE",
        "AKIAI44QH8",
        "AKIAJ7EXAMPLE",
    ] {
        assert!(
            !text.contains(secret),
            "a secret reached the output:\n{text}"
        );
    }
}
