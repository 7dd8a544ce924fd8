//! The `relayform` binary as a user runs it: exit codes, stdout and stderr.

use std::path::Path;
use std::process::{Command, Output};

fn relayform(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env("NO_COLOR", "1")
        .output()
        .expect("run relayform")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn validate_the_examples_exits_0() {
    let o = relayform(&["validate", "specs/"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout(&o).starts_with("valid: "), "{}", stdout(&o));
}

#[test]
fn three_problems_over_two_files_exit_1_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.relayform.yaml"),
        "version: 1\norgs:\n  acme:\n    simulator: true\n    lables: {}\naws_accounts:\n  events:\n    simulator: true\n    account_id: \"12345678901\"\n    region: eu-west-1\nrelays:\n  orders:\n    org: acme\n    aws_account: events\n    events: [Order_Placed__e]\n    error_recovery: earliest\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.relayform.yaml"),
        "version: 1\nrelays:\n  orders:\n    org: acme\n    aws_account: events\n    events: [Order_Placed__e]\n    error_recovery: latest\n",
    )
    .unwrap();
    let o = relayform(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let a = dir.path().join("a.relayform.yaml").display().to_string();
    let b = dir.path().join("b.relayform.yaml").display().to_string();
    let errors: Vec<&str> = out.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 3, "{out}");
    assert!(
        errors[0].starts_with(&format!("{a}:5:5: error: unknown key `lables`")),
        "{out}"
    );
    assert!(
        errors[1].starts_with(&format!("{a}:9:17: error: account id")),
        "{out}"
    );
    assert!(
        errors[2].starts_with(&format!("{b}:3:3: error: relay `orders` is declared twice")),
        "{out}"
    );
    assert!(out.contains("hint: did you mean `labels`?"), "{out}");
    // The source line, with a caret under the column.
    assert!(out.contains("5 |     lables: {}\n  |     ^\n"), "{out}");
    // A line that holds a credential is never shown, not even to point at it.
    let o = relayform(&[
        "validate",
        "crates/relayform-spec/tests/invalid/literal-secrets.yaml",
    ]);
    let shown = stdout(&o);
    assert!(
        !shown.contains(" | "),
        "every line of this file holds a credential: {shown}"
    );
    for secret in ["8D3F1A2B", "AKIAIOSFODNN7", "wJalrXUtnFEMI", "AQ8AQJ9XyZ"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }

    let o = relayform(&["validate", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["valid"], false);
    let codes: Vec<&str> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["unknown-key", "invalid-account-id", "duplicate-name"]
    );
    assert_eq!(doc["diagnostics"][1]["line"], 9);
    assert_eq!(doc["diagnostics"][1]["column"], 17);
}

#[test]
fn missing_paths_and_empty_directories_are_errors() {
    let o = relayform(&["validate", "no/such/dir"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot read spec path `no/such/dir`"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let o = relayform(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no spec files"));
}

#[test]
fn usage_errors_exit_2() {
    let o = relayform(&["validate", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn schema_is_json() {
    let o = relayform(&["schema"]);
    assert_eq!(o.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

#[test]
fn graph_prints_dot_and_mermaid_and_refuses_invalid_specs() {
    let o = relayform(&["graph", "specs/demo.relayform.yaml"]);
    assert_eq!(o.status.code(), Some(0));
    let dot = stdout(&o);
    assert!(dot.starts_with("digraph relayform {"), "{dot}");
    assert!(
        dot.contains("\"aws.association[orders]\" -> \"salesforce.relay_state[orders]\";"),
        "{dot}"
    );

    let o = relayform(&["graph", "--format", "mermaid", "specs/demo.relayform.yaml"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("flowchart LR\n"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.relayform.yaml"),
        "version: 1\nrelays:\n  r:\n    org: nowhere\n",
    )
    .unwrap();
    let o = relayform(&["graph", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.relayform.yaml:3:3: error: relay `r` is missing `aws_account`"),
        "{err}"
    );
    assert!(err.contains("error: the spec has"), "{err}");
}

#[test]
fn sim_serve_refuses_non_loopback_and_busy_ports_with_hints() {
    let o = relayform(&["sim", "serve", "--addr", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0") && err.contains("hint: use 127.0.0.1"),
        "{err}"
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let o = relayform(&["sim", "serve", "--addr", &addr]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.contains("hint: another process"),
        "{err}"
    );
}

/// Only regular files are read: a named pipe called `*.yaml` used to hang `validate`, and a link to
/// `/dev/zero` was read until memory ran out. Both are refused at once, named.
#[test]
fn pipes_and_devices_named_yaml_are_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("pipe.relayform.yaml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::os::unix::fs::symlink("/dev/zero", d.join("zero.relayform.yaml")).unwrap();
    for (path, kind) in [
        (fifo.clone(), "named pipe"),
        (d.join("zero.relayform.yaml"), "device"),
    ] {
        let started = std::time::Instant::now();
        let o = relayform(&["validate", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("is not a regular file (it is a {kind})")),
            "{err}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
    // And as a saved plan: `apply /dev/zero` used to read until memory ran out.
    for args in [["apply", "/dev/zero"], ["show", "/dev/zero"]] {
        let o = relayform(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("not a regular file"), "{err}");
    }
    // Nor as simulator settings.
    let o = relayform(&[
        "plan",
        "--simulator-settings",
        "/dev/zero",
        "specs/demo.relayform.yaml",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("it is a device, not a regular file"));
    // The same inside a directory of specs.
    let o = relayform(&["validate", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a regular file"));
}

/// A directory used to mean every YAML file below it: `relayform validate .` in this repository read
/// test fixtures, and the default path merged the demo with the fleet example. Now only
/// `*.relayform.yaml` files directly in the directory are read, and an empty one says what it skipped.
#[test]
fn a_directory_is_its_relayform_files_not_every_yaml_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let demo = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/demo.relayform.yaml"),
    )
    .unwrap();
    std::fs::write(d.join("orders.relayform.yaml"), &demo).unwrap();
    // Unrelated YAML beside it, and another spec a level down: neither joins.
    std::fs::write(d.join("ci.yaml"), "on: push\njobs: {}\n").unwrap();
    std::fs::create_dir(d.join("other")).unwrap();
    std::fs::write(d.join("other/more.relayform.yml"), &demo).unwrap();
    let o = relayform(&["validate", d.to_str().unwrap()]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("valid: 1 file, 1 org"), "{out}");

    // With no spec file in it, the error names what was not read and where specs are.
    std::fs::remove_file(d.join("orders.relayform.yaml")).unwrap();
    let o = relayform(&["validate", d.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no spec files (`*.relayform.yaml`"), "{err}");
    assert!(err.contains("`ci.yaml` not read"), "{err}");
    assert!(err.contains("other`"), "{err}");
    // A file named on the command line is read whatever its name.
    std::fs::write(d.join("named.yaml"), &demo).unwrap();
    let o = relayform(&["validate", d.join("named.yaml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
}

/// A filter naming the signing crate at `trace` used to lift the cap that keeps signing internals
/// (canonical requests, signatures) and transport headers out of the log.
#[test]
fn no_log_filter_lifts_the_cap_on_signing_and_transport_internals() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/demo.relayform.yaml");
    let state = dir.path().join("sim.json");
    let o = Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args([
            "plan",
            "--simulator-state",
            state.to_str().unwrap(),
            spec.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env(
            "RELAYFORM_LOG",
            "aws_sigv4::http_request=trace,hyper_util=trace,reqwest=trace,trace",
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("aws call") && err.contains("salesforce call"),
        "logging is on: {err}"
    );
    // Both halves say what, where, which attempt, the status and the time; Salesforce its SOQL.
    let aws = err.lines().find(|l| l.contains("aws call")).unwrap();
    for field in [
        "operation=",
        "region=",
        "attempt=1",
        "status=200",
        "elapsed=",
    ] {
        assert!(aws.contains(field), "{field} in {aws}");
    }
    assert!(
        err.contains("soql=\"SELECT Id, NamespacePrefix FROM Organization\""),
        "{err}"
    );
    for leak in [
        "canonical",
        "authorization",
        "signature",
        "bearer",
        "x-amz-security-token",
    ] {
        assert!(
            !err.to_lowercase().contains(leak),
            "`{leak}` in the log:\n{err}"
        );
    }
}

/// Two relayforms on one embedded simulator state (two applies in one directory) used to lose one
/// side's work: the second is refused, clearly, and changes nothing.
#[test]
fn a_second_relayform_on_the_same_simulator_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/demo.relayform.yaml");
    let state = dir.path().join("sim.json");
    // The first: a simulator holding the state file, as a running apply does.
    let mut first = Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args([
            "sim",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--state",
            state.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(first.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains("listening"), "{line}");
    let before = std::fs::read_to_string(&state).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args([
            "apply",
            "--auto-approve",
            "--simulator-state",
            state.to_str().unwrap(),
            spec.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is in use by another simulator (process"),
        "{err}"
    );
    assert!(
        err.contains("put the `instance_url` and `endpoint_url` it printed"),
        "{err}"
    );
    let after = std::fs::read_to_string(&state).unwrap();
    assert_eq!(before.len(), after.len(), "the refused apply wrote nothing");
}

/// A saved plan made with relative paths used to be refused as stale, and held absolute paths: it
/// is applied from where it was made, and from a copy of the directory elsewhere; `show` prints it
/// as `plan` did.
#[test]
fn saved_plans_are_portable_and_shown() {
    let run = |dir: &Path, args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_relayform"))
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    std::fs::create_dir_all(a.join("specs")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/demo.relayform.yaml"),
        a.join("specs/demo.relayform.yaml"),
    )
    .unwrap();
    let state = ["--simulator-state", "state/sim.json"];
    let (code, printed, err) = run(
        &a,
        &[
            &["plan", "specs/demo.relayform.yaml", "--out", "release.plan"][..],
            &state,
        ]
        .concat(),
    );
    assert_eq!(code, Some(0), "{err}");
    let saved = std::fs::read_to_string(a.join("release.plan")).unwrap();
    assert!(
        !saved.contains(root.path().to_str().unwrap()),
        "no absolute path in the plan file"
    );
    let (code, shown, _) = run(&a, &["show", "release.plan"]);
    assert_eq!((code, shown.as_str()), (Some(0), printed.as_str()));
    let (code, json, _) = run(&a, &["show", "--json", "release.plan"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(!v["resource_changes"].as_array().unwrap().is_empty());

    // The whole directory elsewhere, applied from a third place.
    let b = root.path().join("b");
    let copy = Command::new("cp")
        .args(["-r"])
        .arg(&a)
        .arg(&b)
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::remove_dir_all(&a).unwrap();
    let (code, out, err) = run(root.path(), &["apply", "b/release.plan"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("Apply complete"), "{out}");
    assert!(
        b.join("state/sim.json").exists(),
        "the simulator state is the plan's, relative to it"
    );
}

/// Ctrl-C during an apply used to exit 1 with "fix what failed": it exits 130 and says to run
/// again.
#[test]
fn ctrl_c_stops_an_apply_with_exit_130() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/demo.relayform.yaml");
    // The documented delays (minutes) on a real-time clock: the apply will be waiting.
    std::fs::write(dir.path().join("slow.yaml"), "timing: documented\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args([
            "apply",
            "--auto-approve",
            "--simulator-settings",
            "slow.yaml",
            "--simulator-state",
            "sim.json",
        ])
        .arg(&spec)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in stderr.by_ref() {
        let line = line.unwrap();
        let waiting = line.contains("waiting for");
        seen.push(line);
        if waiting {
            break;
        }
    }
    // Keep reading, so that the apply's progress has somewhere to go.
    let drain = std::thread::spawn(move || stderr.count());
    assert!(seen.iter().any(|l| l.contains("waiting for")), "{seen:?}");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    drain.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        stdout.lines().rev().take(12).collect::<Vec<_>>().join("\n")
    );
    assert!(stdout.contains("interrupted (Ctrl-C)"), "{stdout}");
    assert!(!stdout.contains("fix what failed"), "{stdout}");
}

/// A reader of stderr that goes away (a closed pipe) used to stop an apply half-way and exit 0: the
/// apply finishes.
#[test]
fn an_apply_whose_stderr_is_closed_still_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/demo.relayform.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args(["apply", "--auto-approve", "--simulator-state", "sim.json"])
        .arg(&spec)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Apply complete"), "{stdout}");

    // Destroy says what it does: its deletes are `relayform destroy`'s, not `ensure: absent`.
    let o = Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args(["destroy", "--simulator-state", "sim.json"])
        .arg(&spec)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains("- salesforce.relay[orders]  # relayform destroy"),
        "{plan}"
    );
    assert!(!plan.contains("ensure: absent"), "{plan}");
}

/// Terraform's single-dash flags get the relayform spelling; misspelt `--org` and `--target` get a
/// "did you mean", before anything is started or read.
#[test]
fn terraform_flags_and_misspelt_scopes_get_hints() {
    for (flag, fixed) in [
        ("-auto-approve", "--auto-approve"),
        ("-out=release.plan", "--out release.plan"),
        (
            "-target=salesforce.relay[orders]",
            "--target salesforce.relay[orders]",
        ),
    ] {
        let o = relayform(&["apply", flag, "specs/demo.relayform.yaml"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("hint: write `{fixed}`")), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim.json");
    let o = relayform(&[
        "plan",
        "--org",
        "dmeo",
        "--simulator-state",
        state.to_str().unwrap(),
        "specs/demo.relayform.yaml",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("did you mean `--org demo`?"), "{err}");
    assert!(!state.exists(), "nothing was started");
    let o = relayform(&[
        "plan",
        "--target",
        "salesforce.relay[order]",
        "--simulator-state",
        state.to_str().unwrap(),
        "specs/demo.relayform.yaml",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("did you mean `--target salesforce.relay[orders]`?"),
        "{err}"
    );
    let fresh = dir.path().join("fresh.json");
    let o = relayform(&[
        "plan",
        "--target",
        "not an address",
        "--simulator-state",
        fresh.to_str().unwrap(),
        "specs/demo.relayform.yaml",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        !fresh.exists(),
        "nothing was started for a malformed address"
    );
}

/// `--version` names the commit; completions and the man page come from the same command line.
#[test]
fn version_completions_and_man_page() {
    let o = relayform(&["--version"]);
    let v = stdout(&o);
    assert!(
        v.starts_with(&format!("relayform {} (", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    assert!(!v.contains("(unknown)"), "built in a git checkout: {v}");
    for (shell, marker) in [
        ("bash", "_relayform()"),
        ("zsh", "#compdef relayform"),
        ("fish", "complete -c relayform"),
    ] {
        let o = relayform(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0));
        assert!(stdout(&o).contains(marker), "{shell}");
        assert!(
            stdout(&o).contains("apply"),
            "{shell} completes the subcommands"
        );
    }
    let o = relayform(&["man"]);
    assert!(stdout(&o).contains(".TH relayform 1"), "{}", stdout(&o));
}

/// What `sim serve` prints to paste works as printed: the exports for the AWS side, and a spec org
/// (`instance_url` and `auth`) that `validate` accepts and `plan` reaches.
#[test]
fn what_sim_serve_prints_to_paste_works() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut sim = Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args(["sim", "serve", "--addr", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(sim.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let last = line.trim_start().starts_with("auth: ");
        printed.push(line);
        if last {
            break;
        }
    }
    let env: Vec<(String, String)> = printed
        .iter()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .flat_map(|l| l.split(' '))
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let org: Vec<&str> = printed.iter().rev().take(2).map(String::as_str).collect();
    let spec = format!(
        "version: 1\norgs:\n  acme:\n  {}\n  {}\naws_accounts:\n  events:\n    account_id: \"000000000000\"\n    region: us-east-1\nrelays:\n  orders:\n    org: acme\n    aws_account: events\n    events: [Order_Placed__e]\n    error_recovery: earliest\n    destination_bus: orders\n",
        org[1], org[0]
    );
    std::fs::write(dir.path().join("spec.yaml"), &spec).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args(["plan", "--detailed-exitcode", "spec.yaml"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env)
        .output()
        .unwrap();
    let _ = sim.kill();
    let _ = sim.wait();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{spec}\n{out}\n{err}\n{printed:#?}"
    );
    assert!(out.contains("+ salesforce.relay[orders]"), "{out}");
}

/// `relayform output`: what each relay is made of, with ARNs for other tools; nulls before apply.
#[test]
fn output_names_what_each_relay_is_made_of() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/demo.relayform.yaml");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_relayform"))
            .args(args)
            .args(["--simulator-state", "sim.json"])
            .arg(&spec)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let before: serde_json::Value =
        serde_json::from_slice(&run(&["output", "--json"]).stdout).unwrap();
    let orders = |doc: &serde_json::Value| {
        doc["relays"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["relay"] == "orders")
            .cloned()
            .unwrap()
    };
    assert_eq!(before["format_version"], 1);
    assert!(orders(&before)["aws"]["partner_event_bus"].is_null());
    assert_eq!(run(&["apply", "--auto-approve"]).status.code(), Some(0));
    let after: serde_json::Value =
        serde_json::from_slice(&run(&["output", "--json"]).stdout).unwrap();
    let o = orders(&after);
    let bus = o["aws"]["partner_event_bus"]["arn"].as_str().unwrap();
    assert!(
        bus.starts_with(
            "arn:aws:events:us-east-1:000000000000:event-bus/aws.partner/salesforce.com/"
        ),
        "{o}"
    );
    assert!(
        o["aws"]["forwarding_rule"]["arn"]
            .as_str()
            .unwrap()
            .ends_with("/relayform-forward"),
        "{o}"
    );
    assert_eq!(
        o["aws"]["role_arn"],
        "arn:aws:iam::000000000000:role/relayform-us-east-1-orders"
    );
    assert_eq!(
        o["aws"]["destination_bus_arn"],
        "arn:aws:events:us-east-1:000000000000:event-bus/orders"
    );
    assert_eq!(o["salesforce"]["relay"]["state"], "RUN");
    let text = String::from_utf8_lossy(&run(&["output"]).stdout).into_owned();
    assert!(text.contains(bus), "{text}");
}
