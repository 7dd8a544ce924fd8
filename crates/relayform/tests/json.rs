//! Every `--json` document, success and failure, satisfies its published schema in `docs/json/`,
//! and a failing command run with `--json` prints a JSON error on stdout (never text) with the exit
//! code it has without `--json`.

mod common;

use common::relayform;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/json")
}

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/demo.relayform.yaml")
}

/// Resolves the schemas' relative `$ref`s (`diagnostic.schema.json`) to the files beside them.
struct Files;

impl jsonschema::Retrieve for Files {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.path().as_str().rsplit('/').next().unwrap_or_default();
        let text = std::fs::read_to_string(docs().join(name))?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// The schemas a test run checked documents against (every one must be).
static USED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn check(schema: &str, doc: &Value) {
    USED.lock().unwrap().insert(schema.to_owned());
    let path = docs().join(format!("{schema}.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    let schema_doc: Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::options()
        .with_base_uri(format!("file://{}", path.display()))
        .with_retriever(Files)
        .build(&schema_doc)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{schema}: {errors:#?}\n{doc:#}");
}

/// Runs relayform in `dir`; stdout must be exactly one JSON document.
fn run_json(dir: &Path, args: &[&str]) -> (i32, Value) {
    let (code, out, err) = relayform(dir, args, &[]);
    let doc = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!("{args:?}: stdout is not one JSON document ({e}):\n{out}\n{err}")
    });
    (code, doc)
}

#[test]
fn every_json_document_satisfies_its_published_schema() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(demo(), d.join("demo.relayform.yaml")).unwrap();
    let spec = "demo.relayform.yaml";

    let (code, doc) = run_json(d, &["validate", "--json", spec]);
    assert_eq!((code, &doc["valid"]), (0, &Value::Bool(true)));
    check("validate", &doc);

    let (code, doc) = run_json(d, &["graph", "--json", spec]);
    assert_eq!(code, 0);
    assert!(doc["resources"].as_array().unwrap().len() >= 10, "{doc:#}");
    check("graph", &doc);

    let (code, doc) = run_json(d, &["plan", "--json", "--out", "release.plan", spec]);
    assert_eq!(code, 0);
    assert!(doc["summary"]["create"].as_u64().unwrap() > 0);
    check("plan", &doc);
    let (code, shown) = run_json(d, &["show", "--json", "release.plan"]);
    assert_eq!((code, &shown), (0, &doc));

    // A saved plan is applied without asking, so JSON needs no --auto-approve for it.
    let (code, doc) = run_json(d, &["apply", "--json", "release.plan"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["status"], "complete");
    assert!(
        doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["outcome"] == "done")
    );
    assert_eq!(doc["test_events"][0]["arrived"], true);
    check("apply", &doc);

    let (code, doc) = run_json(d, &["apply", "--json", "--auto-approve", spec]);
    assert_eq!((code, &doc["status"]), (0, &Value::from("no_changes")));
    check("apply", &doc);

    let (code, doc) = run_json(d, &["output", "--json", spec]);
    assert_eq!(code, 0);
    assert!(doc["relays"][0]["aws"]["partner_event_bus"]["arn"].is_string());
    check("output", &doc);

    let (code, doc) = run_json(
        d,
        &[
            "conformance",
            "--json",
            "--org",
            "demo",
            "--aws",
            "demo",
            "--simulator-state",
            "conformance.json",
            spec,
        ],
    );
    assert_eq!((code, &doc["complete"]), (0, &Value::Bool(true)), "{doc:#}");
    check("conformance", &doc);

    let (code, doc) = run_json(d, &["destroy", "--json", "--auto-approve", spec]);
    assert_eq!((code, &doc["command"]), (0, &Value::from("destroy")));
    assert!(doc["changes"]["done"].as_u64().unwrap() > 0);
    check("apply", &doc);

    // `sim serve --json`: its first line.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args(["sim", "serve", "--addr", "127.0.0.1:0", "--json"])
        .current_dir(d)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    check("sim-serve", &serde_json::from_str(&line).unwrap());

    errors_are_json_documents_with_the_text_exit_codes(d);
    an_org_that_cannot_be_read_is_part_of_the_plan_document(d);

    let published: BTreeSet<String> = std::fs::read_dir(docs())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".schema.json").map(str::to_owned)
        })
        .filter(|n| n != "diagnostic")
        .collect();
    assert_eq!(
        *USED.lock().unwrap(),
        published,
        "a published schema no test checks"
    );
}

/// Each mistake below printed text on stderr and nothing on stdout, even with --json.
fn errors_are_json_documents_with_the_text_exit_codes(d: &Path) {
    std::fs::write(
        d.join("misspelt.yaml"),
        std::fs::read_to_string(demo())
            .unwrap()
            .replacen("error_recovery:", "erorr_recovery:", 1),
    )
    .unwrap();
    std::fs::create_dir(d.join("empty")).unwrap();
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["plan", "--json", "misspelt.yaml"],
            1,
            "the spec has 1 error",
        ),
        (
            &["apply", "--json", "--auto-approve", "misspelt.yaml"],
            1,
            "the spec has 1 error",
        ),
        (
            &["plan", "--json", "--org", "dmeo", "demo.relayform.yaml"],
            1,
            "no such org",
        ),
        (
            &["validate", "--json", "nowhere"],
            1,
            "cannot read spec path `nowhere`",
        ),
        (&["validate", "--json", "empty"], 1, "no spec files"),
        (
            &["graph", "--json", "misspelt.yaml"],
            1,
            "the spec has 1 error",
        ),
        (
            &["show", "--json", "demo.relayform.yaml"],
            1,
            "not a saved plan",
        ),
        (
            &["output", "--json", "--org", "x", "demo.relayform.yaml"],
            1,
            "no such org",
        ),
        (
            &["apply", "--json", "demo.relayform.yaml"],
            1,
            "cannot ask for confirmation",
        ),
        (
            &["plan", "--json", "--frobnicate"],
            2,
            "unexpected argument",
        ),
        (&["apply", "--json", "-auto-approve"], 2, "one dash"),
        (
            &["plan", "--json", "--call-timeout", "soon"],
            2,
            "not a duration",
        ),
    ];
    for (args, want, says) in cases {
        let (code, doc) = run_json(d, args);
        assert_eq!(code, *want, "{args:?}: {doc:#}");
        assert_eq!(doc["ok"], false);
        let message = doc["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{args:?}: {doc:#}");
        check("error", &doc);
    }
    // The spec's diagnostics are in the document, the misspelling with its suggestion.
    let (_, doc) = run_json(d, &["plan", "--json", "misspelt.yaml"]);
    let diags = doc["error"]["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 1, "{doc:#}");
    assert_eq!(diags[0]["code"], "unknown-key");
    assert!(
        diags[0]["hint"]
            .as_str()
            .unwrap()
            .starts_with("did you mean `error_recovery`?")
    );
    // Hints are fields of their own.
    let (_, doc) = run_json(
        d,
        &["plan", "--json", "--org", "dmeo", "demo.relayform.yaml"],
    );
    assert_eq!(doc["error"]["hints"][0], "did you mean `--org demo`?");
}

/// An org whose secret is missing is the plan's `unread` part; the demo org is planned all the same;
/// stdout is still the one plan document, and the exit code 1.
fn an_org_that_cannot_be_read_is_part_of_the_plan_document(d: &Path) {
    let demo = std::fs::read_to_string(demo()).unwrap();
    let spec = demo.replacen(
        "orgs:\n",
        "orgs:\n  ghost:\n    instance_url: https://ghost.my.salesforce.com\n    auth: {client_credentials: {client_id: x, client_secret: {env: RELAYFORM_TEST_NEVER_SET}}}\n",
        1,
    )
    .replacen(
        "aws_accounts:\n",
        "aws_accounts:\n  far:\n    account_id: \"123456789012\"\n    region: us-east-1\n    endpoint_url: http://127.0.0.1:9\n    credentials: {profile: relayform-test-no-such-profile}\n",
        1,
    ) + "  haunted:\n    org: ghost\n    aws_account: far\n    events: [Order_Placed__e]\n    error_recovery: earliest\n";
    std::fs::write(d.join("two.relayform.yaml"), spec).unwrap();
    let (code, doc) = run_json(
        d,
        &[
            "plan",
            "--json",
            "--call-timeout",
            "2s",
            "two.relayform.yaml",
        ],
    );
    assert_eq!(code, 1, "{doc:#}");
    check("plan", &doc);
    assert_eq!(doc["unread"][0]["scope"], "ghost", "{doc:#}");
    assert_eq!(doc["unread"][0]["relays"], serde_json::json!(["haunted"]));
    assert!(
        doc["unread"][0]["error"]
            .as_str()
            .unwrap()
            .contains("RELAYFORM_TEST_NEVER_SET is not set"),
        "{doc:#}"
    );
    let planned: Vec<&str> = doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert!(planned.contains(&"salesforce.relay[orders]"), "{planned:?}");
    assert!(
        !planned
            .iter()
            .any(|a| a.contains("haunted") || a.contains("ghost/")),
        "{planned:?}"
    );
    // conformance on that org: its error, not a panic (it used to index the missing connection).
    let (code, doc) = run_json(
        d,
        &[
            "conformance",
            "--json",
            "--org",
            "ghost",
            "--aws",
            "far",
            "two.relayform.yaml",
        ],
    );
    assert_eq!(code, 1, "{doc:#}");
    check("error", &doc);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("RELAYFORM_TEST_NEVER_SET is not set"),
        "{doc:#}"
    );
}
