//! Records the commit the binary is built from, for `relayform --version`: `git describe` of the
//! checkout (with `-dirty` for uncommitted changes), or `unknown` outside a git checkout (a crate
//! tarball).

use std::process::Command;

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let commit = Command::new("git")
        .args(["-C", root, "describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=RELAYFORM_COMMIT={commit}");
    // A new commit or checkout changes HEAD or the ref it names.
    for path in [".git/HEAD", ".git/refs/heads"] {
        println!("cargo:rerun-if-changed={root}/{path}");
    }
}
