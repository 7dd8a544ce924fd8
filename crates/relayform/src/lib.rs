//! The `relayform` command line.
//!
//! Thin by design: it parses what the user typed ([`cli`]), reads spec files from disk ([`load`]) and
//! hands them to the pure crates, then renders their results. It is a library as well as a binary so
//! that tests drive exactly what users run, without spawning processes.
//!
//! Output conventions: a command's data goes to stdout, progress and logs to stderr; text is coloured
//! only on a terminal and never when `NO_COLOR` is set; `--json` output is one document on stdout,
//! versioned by a `format_version` field (a number in every document), and a command that fails
//! with `--json` prints an error document there instead of text (the `failure` module); the schemas are in
//! `docs/json/`.
//!
//! Exit codes: 0 success, 1 failure (an invalid spec, an error), 2 usage errors (from clap) and, with
//! `plan --detailed-exitcode`, changes to make; 3 from `apply`/`destroy` when nothing failed but some
//! steps were still waiting on Salesforce or AWS when `--wait-timeout` ended; 130 when interrupted
//! (Ctrl-C).

mod apply;
pub mod cli;
mod commands;
mod conformance;
mod demo;
mod engine;
mod failure;
pub mod load;
mod progress;
mod sim;
mod validate;

use anstream::AutoStream;
use anstream::adapter::StripBytes;
use clap::Parser;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

/// Runs the command line with the process's stdout and stderr.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // Not locked for the whole run: log lines from other threads (RELAYFORM_LOG) share stderr.
    let mut out = AutoStream::auto(std::io::stdout());
    // Messages and progress: if nobody reads them any more (a closed pipe), the command goes on,
    // rather than stopping half-way through an apply.
    let mut err = Unheard(AutoStream::auto(std::io::stderr()));
    let code = run_styled(args, &mut out, &mut err, progress::stderr_is_live());
    let _ = out.flush();
    let _ = err.flush();
    ExitCode::from(code)
}

/// A stream whose write errors are dropped: for stderr, where a lost reader must not stop a command.
struct Unheard<W>(W);

impl<W: Write> Write for Unheard<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

/// Parses `args` (the first is the program name) and runs them, writing plain text to `out` and
/// `err`; returns the exit code. Usage errors exit 2, as clap's do.
pub fn run_args<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_styled(args, &mut Plain::new(out), &mut Plain::new(err), false)
}

/// Like [`run_args`], but writes ANSI styles for the caller to keep or strip; with `live`, apply's
/// progress is a live view drawn on the process's stderr.
fn run_styled<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write, live: bool) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // Before parsing, for usage errors: whether JSON was asked for, and of which command.
    let wants_json = args.iter().skip(1).any(|a| a == "--json");
    let named = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .take_while(|a| !a.starts_with('-'))
        .take(2)
        .collect::<Vec<_>>();
    let named = match named.as_slice() {
        ["sim", "serve"] => "sim serve".to_owned(),
        [first, ..] => (*first).to_owned(),
        [] => String::new(),
    };
    let usage = |text: &str, out: &mut dyn Write, err: &mut dyn Write| {
        if wants_json {
            let doc = failure::document(&named, failure::Kind::Usage, text, &[]);
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            );
        } else {
            let _ = write!(err, "{text}");
        }
        2
    };
    // Terraform's single-dash flags (`-auto-approve`, `-out=plan`, `-target=...`): clap would read
    // them as bundles of short flags; say what relayform calls them instead.
    if let Some(flag) = args.iter().skip(1).filter_map(|a| a.to_str()).find(|a| {
        let word = a.strip_prefix('-').unwrap_or_default();
        let name = word.split('=').next().unwrap_or_default();
        !a.starts_with("--")
            && name.len() >= 3
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '-')
    }) {
        let (name, value) = flag[1..].split_once('=').unwrap_or((&flag[1..], ""));
        let fixed = if value.is_empty() {
            format!("--{name}")
        } else {
            format!("--{name} {value}")
        };
        let text = format!(
            "`{flag}` has one dash (Terraform's spelling); relayform's long flags have two\nhint: write `{fixed}`\n"
        );
        if wants_json {
            return usage(&text, out, err);
        }
        return usage(&format!("error: {text}"), out, err);
    }
    match cli::Cli::try_parse_from(&args) {
        Ok(mut cli) => {
            if let cli::Command::Apply(a) = &mut cli.command {
                a.execution.live = live;
            }
            if let cli::Command::Destroy(a) = &mut cli.command {
                a.execution.live = live;
            }
            run(cli, out, err)
        }
        Err(e) => {
            if e.use_stderr() {
                if wants_json {
                    usage(&failure::usage_text(&e.render().to_string()), out, err)
                } else {
                    usage(&e.render().ansi().to_string(), out, err)
                }
            } else {
                let text = e.render().ansi().to_string();
                let _ = write!(out, "{text}");
                0
            }
        }
    }
}

/// Runs a parsed command, writing to `out` and `err`; returns the exit code. Styles written here are
/// ANSI sequences: callers wrap the streams so that they are stripped where colour is not wanted.
fn run(cli: cli::Cli, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let (name, json) = (cli.command.name(), cli.command.json());
    let result = match cli.command {
        cli::Command::Validate(args) => validate::run(&args, out, err),
        cli::Command::Plan(args) => commands::plan(&args, out, err),
        cli::Command::Apply(args) => commands::apply(&args, out, err),
        cli::Command::Destroy(args) => commands::destroy(&args, out, err),
        cli::Command::Show(args) => commands::show(&args, out),
        cli::Command::Output(args) => commands::output(&args, out, err),
        cli::Command::Completions { shell } => {
            let mut cmd = <cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "relayform", out);
            Ok(0)
        }
        cli::Command::Man => clap_mangen::Man::new(<cli::Cli as clap::CommandFactory>::command())
            .render(out)
            .map(|()| 0)
            .map_err(anyhow::Error::from),
        cli::Command::Graph(args) => graph(&args, out, err),
        cli::Command::Conformance(args) => conformance::run(&args, out, err),
        cli::Command::Sim(cli::SimCommand::Serve(args)) => sim::serve(&args, out, err),
        cli::Command::Schema => {
            let schema = relayform_spec::schema::json_schema();
            serde_json::to_writer_pretty(&mut *out, &schema)
                .map_err(anyhow::Error::from)
                .and_then(|()| writeln!(out).map_err(anyhow::Error::from))
                .map(|()| 0)
        }
    };
    match result {
        Ok(code) => code,
        // A reader that stops early (`| head`) is not an error worth a message.
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let invalid = e.chain().find_map(|c| c.downcast_ref::<failure::Invalid>());
            if json {
                let diagnostics = invalid.map(|i| i.diagnostics.as_slice()).unwrap_or(&[]);
                let doc =
                    failure::document(name, failure::Kind::Error, &format!("{e:#}"), diagnostics);
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&doc).unwrap_or_default()
                );
            } else {
                if let Some(i) = invalid {
                    let _ = err.write_all(i.text.as_bytes());
                }
                let style = anstyle::Style::new()
                    .bold()
                    .fg_color(Some(anstyle::AnsiColor::Red.into()));
                let _ = writeln!(err, "{style}error{style:#}: {e:#}");
            }
            1
        }
    }
}

/// Loads and checks a spec (see [`check_spec`]).
fn load_spec(
    paths: &[std::path::PathBuf],
    err: &mut dyn Write,
) -> anyhow::Result<relayform_spec::Spec> {
    check_spec(&load::read(&load::find(paths)?)?, err)
}

/// Checks spec files; prints warnings to `err`; fails with [`failure::Invalid`] on errors (their
/// text is printed where the error is).
fn check_spec(
    files: &[relayform_spec::SourceFile],
    err: &mut dyn Write,
) -> anyhow::Result<relayform_spec::Spec> {
    match relayform_spec::check(files).into_result() {
        Ok((spec, warnings)) => {
            for d in &warnings {
                validate::render(d, files, err)?;
            }
            Ok(spec)
        }
        Err(diagnostics) => {
            let mut text = Vec::new();
            for d in &diagnostics {
                validate::render(d, files, &mut text)?;
            }
            Err(failure::Invalid {
                diagnostics,
                text: String::from_utf8_lossy(&text).into_owned(),
            }
            .into())
        }
    }
}

/// The version of the `graph --json` document.
const GRAPH_FORMAT_VERSION: u32 = 1;

fn graph(args: &cli::GraphArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let spec = load_spec(&args.paths, err)?;
    let g = relayform_plan::desired(&spec);
    let order = g.order()?;
    if args.json {
        let resources: Vec<_> = order
            .iter()
            .map(|r| {
                serde_json::json!({
                    "address": r.address.to_string(),
                    "kind": r.address.kind.as_str(),
                    "key": r.address.key,
                    "name": relayform_plan::Resource::label(r)
                        .split_once('\n')
                        .map_or(String::new(), |(_, name)| name.to_owned()),
                    "needs": g
                        .dependencies(&r.address)
                        .iter()
                        .map(|d| d.address.to_string())
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "format_version": GRAPH_FORMAT_VERSION,
            "resources": resources,
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(0);
    }
    let text = match args.format {
        cli::GraphFormat::Dot => g.to_dot(relayform_plan::Resource::label),
        cli::GraphFormat::Mermaid => g.to_mermaid(relayform_plan::Resource::label),
    };
    out.write_all(text.as_bytes())?;
    Ok(0)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let io = c.downcast_ref::<std::io::Error>().map(std::io::Error::kind);
        let json = c
            .downcast_ref::<serde_json::Error>()
            .and_then(|j| j.io_error_kind());
        io.or(json) == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// A writer that drops ANSI escape sequences on the way through to `inner`.
struct Plain<'a> {
    inner: &'a mut dyn Write,
    state: StripBytes,
}

impl<'a> Plain<'a> {
    fn new(inner: &'a mut dyn Write) -> Self {
        Plain {
            inner,
            state: StripBytes::new(),
        }
    }
}

impl Write for Plain<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for printable in self.state.strip_next(buf) {
            self.inner.write_all(printable)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
