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

/// The CI example in `docs/ci.md` is `docs/examples/github-actions.yml`, a workflow file, and every
/// relayform command in it is one the command line takes (a renamed flag would break users' CI).
#[test]
fn the_ci_example_is_a_workflow_whose_relayform_commands_parse() {
    let file = std::fs::read_to_string(root().join("docs/examples/github-actions.yml")).unwrap();
    let doc = std::fs::read_to_string(root().join("docs/ci.md")).unwrap();
    assert!(
        doc.contains(&format!("```yaml\n{file}```")),
        "docs/ci.md no longer shows docs/examples/github-actions.yml as it is"
    );
    let workflow: serde_yaml::Value = serde_yaml::from_str(&file).unwrap();
    let jobs = workflow["jobs"].as_mapping().expect("jobs");
    let mut commands = Vec::new();
    for (_, job) in jobs {
        for step in job["steps"].as_sequence().expect("steps") {
            let Some(run) = step["run"].as_str() else {
                continue;
            };
            for part in run.lines().flat_map(|l| l.split("&&")) {
                let words: Vec<&str> = part.split_whitespace().collect();
                if words.first() == Some(&"relayform") {
                    let end = words.iter().position(|w| *w == ">").unwrap_or(words.len());
                    commands.push(words[..end].to_vec());
                }
            }
        }
    }
    assert!(commands.len() >= 3, "{commands:?}");
    for c in &commands {
        if let Err(e) = <relayform::cli::Cli as clap::Parser>::try_parse_from(c) {
            panic!("{c:?} does not parse: {e}");
        }
    }
}
