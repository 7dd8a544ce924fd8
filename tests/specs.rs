//! The example specs under `specs/` are valid, satisfy the JSON Schema that `relayform schema`
//! prints, and the schema file that editors read there is current.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> (u8, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = relayform::run_args(
        std::iter::once("relayform").chain(args.iter().copied()),
        &mut out,
        &mut err,
    );
    assert!(err.is_empty(), "stderr: {}", String::from_utf8_lossy(&err));
    (code, String::from_utf8(out).unwrap())
}

fn example_files() -> Vec<PathBuf> {
    relayform::load::find(&[root().join("specs"), root().join("specs/fleet")]).unwrap()
}

#[test]
fn every_example_validates_without_warnings() {
    let files = example_files();
    assert!(files.len() >= 4, "{files:?}");
    // Each file on its own where it stands alone, and each folder as one spec.
    let demo = root().join("specs/demo.relayform.yaml");
    let (code, out) = run(&["validate", demo.to_str().unwrap()]);
    assert_eq!(
        (code, out.as_str()),
        (0, "valid: 1 file, 1 org, 1 aws account, 2 relays\n")
    );
    let fleet = root().join("specs/fleet");
    let (code, out) = run(&["validate", fleet.to_str().unwrap()]);
    assert_eq!(
        (code, out.as_str()),
        (0, "valid: 3 files, 3 orgs, 3 aws accounts, 5 relays\n")
    );
    // A directory is the spec files directly in it: `specs/` is the demo alone.
    let all = root().join("specs");
    let (code, out) = run(&["validate", all.to_str().unwrap()]);
    assert_eq!(
        (code, out.as_str()),
        (0, "valid: 1 file, 1 org, 1 aws account, 2 relays\n")
    );
}

#[test]
fn every_example_satisfies_the_schema() {
    let (code, schema) = run(&["schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&schema).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for file in example_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not satisfy the schema: {errors:#?}",
            file.display()
        );
        assert!(
            text.lines()
                .next()
                .unwrap()
                .starts_with("# yaml-language-server: $schema="),
            "{} lacks the yaml-language-server modeline",
            file.display()
        );
    }
}

#[test]
fn the_schema_file_for_editors_is_current() {
    let (_, schema) = run(&["schema"]);
    let committed = std::fs::read_to_string(root().join("specs/relayform.schema.json")).unwrap();
    assert!(
        committed == schema,
        "specs/relayform.schema.json is stale: run `cargo run -q -- schema > specs/relayform.schema.json`"
    );
}
