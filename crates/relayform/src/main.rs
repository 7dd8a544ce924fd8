//! The `relayform` binary: sets up logging, parses arguments, runs, and maps the outcome to an exit
//! code.
//!
//! `RELAYFORM_LOG` turns on diagnostic logs on stderr, with `tracing` filter syntax: `debug` shows every
//! Salesforce and AWS call (operation, path, attempt, status; never a credential), `info` less. The
//! HTTP, TLS and SDK crates underneath are held at `info` whatever the filter says: their debug and
//! trace output can carry request headers, and so tokens.

use std::io::Write;
use std::process::ExitCode;

/// mimalloc rather than the system allocator: a fleet's apply allocates and frees millions of small
/// values (requests, JSON, the embedded simulator's records) from many threads, where glibc's
/// per-thread arenas hold on to freed memory (about a third more resident at 10,000 relays) and
/// spend a quarter of the run in `malloc` and `free`. (The feature `system-allocator` keeps the
/// system's, for heap profilers that intercept `malloc`, such as heaptrack.)
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's options, by their place in `mi_option_e` of the `mimalloc.h` that `libmimalloc-sys`
/// builds (which does not name them; a test checks their documented defaults).
const MI_ARENA_EAGER_COMMIT: i32 = 4;
const MI_PURGE_DELAY: i32 = 15;
const MI_ALLOW_THP: i32 = 43;

/// Memory freed goes back to the system at once (`purge_delay` 0, from 1 s), and arenas are
/// committed as they are used, not whole up front (`arena_eager_commit` 0). And no transparent huge
/// pages: mimalloc asks for them (`madvise`) on the arena it maps before `main`, and a 2 MiB page is
/// resident whole and purged only whole. Its `allow_thp` option is read before `main` can set it,
/// so the process turns them off itself (`prctl(PR_SET_THP_DISABLE)`, which the kernel checks at
/// each page fault), as mimalloc does with `MIMALLOC_ALLOW_THP=0`. Together, at 10,000 relays,
/// about a third less resident, at no measurable cost in time. The `MIMALLOC_*` environment
/// variables still decide where they are set.
#[cfg(not(feature = "system-allocator"))]
fn tune_allocator() {
    #[allow(unsafe_code)]
    // SAFETY: plain setters of mimalloc's global options, called before any other thread exists
    // (they are not thread safe); any value is valid for either.
    unsafe {
        libmimalloc_sys::mi_option_set_default(MI_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set_default(MI_PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set_default(MI_ALLOW_THP, 0);
    }
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // Best effort: a kernel without the call keeps its huge pages.
        let _ = rustix::thread::disable_transparent_huge_pages(true);
    }
}

#[cfg(feature = "system-allocator")]
fn tune_allocator() {}

/// Crates whose debug and trace output can carry request headers, and so credentials: never logged
/// below `info`, whatever the filter says (`aws_sigv4::http_request=trace` included).
const QUIET: &[&str] = &[
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "tower",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_sigv4",
    "aws_config",
    "aws_runtime",
    "aws_credential_types",
    "aws_sdk_sts",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
];

/// Whether an event or span of `target` at `level` may be logged at all.
fn allowed(target: &str, level: &tracing::Level) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    *level <= tracing::Level::INFO || !QUIET.contains(&krate)
}

fn main() -> ExitCode {
    tune_allocator();
    if let Ok(filter) = std::env::var("RELAYFORM_LOG") {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        use tracing_subscriber::{EnvFilter, Layer, filter::filter_fn};
        let user = EnvFilter::try_new(&filter).unwrap_or_else(|e| {
            let _ = writeln!(
                std::io::stderr(),
                "warning: RELAYFORM_LOG={filter:?} is not a log filter ({e}); logging at debug"
            );
            EnvFilter::new("debug")
        });
        // The cap is a filter of its own, after the user's: no directive of theirs can lift it.
        let cap = filter_fn(|meta| allowed(meta.target(), meta.level()));
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(user)
            .with_filter(cap);
        tracing_subscriber::registry().with(layer).init();
    }
    relayform::main_with_args(std::env::args_os())
}

#[cfg(test)]
mod tests {
    use super::allowed;
    use tracing::Level;

    /// The option numbers are the ones meant: untuned (the harness runs no `main`), each holds its
    /// documented default. (Tuning itself is not called here: it must run before other threads.)
    #[cfg(not(feature = "system-allocator"))]
    #[test]
    fn the_allocator_options_are_the_ones_meant() {
        use super::{MI_ALLOW_THP, MI_ARENA_EAGER_COMMIT, MI_PURGE_DELAY};
        if std::env::vars().any(|(k, _)| k.starts_with("MIMALLOC_")) {
            return; // The environment decides; the defaults cannot be seen.
        }
        #[allow(unsafe_code)]
        // SAFETY: reads of mimalloc's global options; no other test touches them.
        let (commit, delay, thp) = unsafe {
            (
                libmimalloc_sys::mi_option_get(MI_ARENA_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(MI_PURGE_DELAY),
                libmimalloc_sys::mi_option_get(MI_ALLOW_THP),
            )
        };
        assert_eq!(
            (commit, delay, thp),
            (2, 1000, 1),
            "arena_eager_commit, purge_delay and allow_thp defaults"
        );
    }

    #[test]
    fn signing_and_transport_crates_are_capped_at_info() {
        assert!(!allowed("aws_sigv4::http_request", &Level::TRACE));
        assert!(!allowed("hyper_util::client", &Level::DEBUG));
        assert!(allowed("aws_sigv4", &Level::INFO));
        assert!(allowed("relayform_salesforce::client", &Level::TRACE));
    }
}
