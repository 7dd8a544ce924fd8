//! What the binary's integration tests share.
#![allow(dead_code, unreachable_pub)]

use relayform_simulator::config::{DEMO_ACCESS_KEY_ID, DEMO_SECRET_ACCESS_KEY};
use std::path::Path;
use std::process::Command;

/// Runs the binary with only the environment it is given: PATH, a HOME of `dir`, the simulator's
/// demo AWS keys (no instance metadata), no colour, and `env`. Returns (exit code, stdout, stderr).
pub fn relayform(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_ACCESS_KEY_ID", DEMO_ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", DEMO_SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .env(
            "RELAYFORM_LOG",
            std::env::var("RELAYFORM_LOG").unwrap_or_default(),
        )
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
