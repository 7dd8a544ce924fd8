//! The `relayform` binary: sets up logging, parses arguments, runs, and maps the outcome to an exit
//! code.
//!
//! `RELAYFORM_LOG` turns on diagnostic logs on stderr, with `tracing` filter syntax: `debug` shows every
//! Salesforce and AWS call (operation, path, attempt, status; never a credential), `info` less. The
//! HTTP, TLS and SDK crates underneath are held at `info` whatever the filter says: their debug and
//! trace output can carry request headers, and so tokens.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    if let Ok(filter) = std::env::var("RELAYFORM_LOG") {
        // Target-specific directives win over the user's general ones.
        const QUIET: &str = "hyper=info,hyper_util=info,h2=info,reqwest=info,rustls=info,tower=info,aws_smithy_runtime=info,aws_smithy_runtime_api=info,aws_smithy_http=info,aws_smithy_http_client=info,aws_sigv4=info,aws_config=info,aws_runtime=info";
        let filter = tracing_subscriber::EnvFilter::try_new(format!("{filter},{QUIET}"))
            .unwrap_or_else(|e| {
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: RELAYFORM_LOG={filter:?} is not a log filter ({e}); logging at debug"
                );
                tracing_subscriber::EnvFilter::new(format!("debug,{QUIET}"))
            });
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    relayform::main_with_args(std::env::args_os())
}
