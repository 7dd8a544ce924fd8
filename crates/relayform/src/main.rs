//! The `relayform` binary: parses arguments, runs, and maps the outcome to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    relayform::main_with_args(std::env::args_os())
}
