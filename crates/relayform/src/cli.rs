//! What the user can type.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Declarative Salesforce Event Relays into Amazon EventBridge.
#[derive(Debug, Parser)]
#[command(
    name = "relayform",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("RELAYFORM_COMMIT"), ")"),
    about,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check spec files offline: no network, no credentials.
    Validate(ValidateArgs),
    /// Print the JSON Schema of the spec language (for editors: yaml-language-server).
    Schema,
    /// Show what apply would change: read the orgs and accounts (nothing is changed) and compare them
    /// with the spec.
    Plan(PlanArgs),
    /// Make the orgs and accounts match the spec (or a plan saved by `plan --out`).
    Apply(ApplyArgs),
    /// Remove everything the spec's relays are made of, in reverse order.
    Destroy(DestroyArgs),
    /// Print a plan saved by `plan --out`, as `plan` printed it (or its JSON).
    Show(ShowArgs),
    /// Print what each relay is made of in Salesforce and AWS, as it is now (partner event source
    /// and bus, forwarding rule, destination, role: names and ARNs), for other tools to reference.
    Output(OutputArgs),
    /// Print the resource graph of a spec: what depends on what, in creation order.
    Graph(GraphArgs),
    /// Ask a sandbox org and AWS account what the vendors' documentation leaves open (partial
    /// PATCHes, relay labels, partner-source timing, receiver policies, ...), with temporary objects
    /// it deletes again, and print the simulator settings that behave the same.
    Conformance(ConformanceArgs),
    /// The bundled simulator of the Salesforce and AWS APIs.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Print a shell completion script: `relayform completions bash > /etc/bash_completion.d/relayform`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `relayform man | man -l -`.
    Man,
}

impl Command {
    /// The command's name, as typed (`sim serve` for the simulator).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Validate(_) => "validate",
            Command::Schema => "schema",
            Command::Plan(_) => "plan",
            Command::Apply(_) => "apply",
            Command::Destroy(_) => "destroy",
            Command::Show(_) => "show",
            Command::Output(_) => "output",
            Command::Graph(_) => "graph",
            Command::Conformance(_) => "conformance",
            Command::Sim(SimCommand::Serve(_)) => "sim serve",
            Command::Completions { .. } => "completions",
            Command::Man => "man",
        }
    }

    /// Whether the output is JSON: `--json` (and `schema`, which only prints JSON). Errors are then
    /// a JSON document on stdout too.
    pub fn json(&self) -> bool {
        match self {
            Command::Validate(a) => a.json,
            Command::Plan(a) => a.json,
            Command::Apply(a) => a.execution.json,
            Command::Destroy(a) => a.execution.json,
            Command::Show(a) => a.json,
            Command::Output(a) => a.json,
            Command::Graph(a) => a.json,
            Command::Conformance(a) => a.json,
            Command::Sim(SimCommand::Serve(a)) => a.json,
            Command::Schema => true,
            Command::Completions { .. } | Command::Man => false,
        }
    }
}

#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// Spec files or directories, as for `validate`: they say how to reach the org and account.
    #[arg(default_value = ".", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The org to ask (its spec name). Use a sandbox: temporary objects are made there.
    #[arg(long, value_name = "NAME")]
    pub org: String,
    /// The AWS account to ask (its spec name).
    #[arg(long = "aws", value_name = "NAME")]
    pub aws: String,
    /// A high-volume platform event of the org for the temporary channel (default: the first one a
    /// relay of the org carries).
    #[arg(long, value_name = "EVENT")]
    pub event: Option<String>,
    /// Print the answers as a versioned JSON document.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for each thing Salesforce or AWS does in its own time.
    #[arg(long, default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub wait_timeout: std::time::Duration,
    /// Where the embedded simulator keeps its state (for `simulator: true` orgs and accounts).
    #[arg(long, value_name = "FILE", default_value = ".relayform/simulator.json")]
    pub simulator_state: PathBuf,
    /// The embedded simulator's settings (YAML), as for `plan`.
    #[arg(long, value_name = "FILE")]
    pub simulator_settings: Option<PathBuf>,
    /// How long one API call may go unanswered before it is retried or given up, as for `plan`
    /// [default: 60s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub call_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve the simulator until interrupted (Ctrl-C), saving its state on the way out.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:4599")]
    pub addr: std::net::SocketAddr,
    /// Listen on a non-loopback address (the simulator has no real security: demo credentials only).
    #[arg(long)]
    pub listen_beyond_loopback: bool,
    /// Keep the simulated world in this file between runs (written atomically).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// A YAML config of orgs and accounts (see simulator/README.md); the demo org and account otherwise.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the URLs and credentials as one JSON line, for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Spec files or directories, as for `validate`.
    #[arg(default_value = ".", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Exit 0 when there is nothing to change, 2 when there is, 1 on errors.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Print the plan as a versioned JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Save the plan to FILE, for `relayform apply FILE` to apply exactly.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub scope: Scope,
}

/// What part of the world a command reads and changes.
#[derive(Debug, Clone, Args, Default)]
pub struct Scope {
    /// Limit to this resource (an address such as `salesforce.relay[orders]`) and what it depends on.
    /// Repeatable.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
    /// Limit to the relays of this org (its spec name). Repeatable.
    #[arg(long = "org", value_name = "NAME")]
    pub orgs: Vec<String>,
    /// Where the embedded simulator keeps its state (for `simulator: true` orgs and accounts).
    #[arg(long, value_name = "FILE", default_value = ".relayform/simulator.json")]
    pub simulator_state: PathBuf,
    /// The embedded simulator's settings (YAML, the `settings:` of a simulator config: timing, vendor
    /// rules), applied to its world even when it comes from the state file.
    #[arg(long, value_name = "FILE")]
    pub simulator_settings: Option<PathBuf>,
    /// How long one API call may go unanswered (to connect, and each attempt) before it is retried
    /// or given up; the attempts of one call, throttled or failing, stop after three times this
    /// [default: 60s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub call_timeout: Option<std::time::Duration>,
}

impl Scope {
    /// The providers' timeouts and retry budget.
    pub fn patience(&self) -> relayform_provider::Patience {
        self.call_timeout
            .map(relayform_provider::Patience::per_attempt)
            .unwrap_or_default()
    }
}

/// How changes are made.
#[derive(Debug, Clone, Args)]
pub struct Execution {
    /// Make the changes without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// How many changes run at once, across independent resources, relays and orgs.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// How long to wait for Salesforce and AWS to catch up (a partner event source appearing, a relay
    /// starting; Salesforce documents minutes): `90s`, `20m`, `1h`. What is still waiting then is
    /// reported as pending (exit 3), and the next apply carries on with it.
    #[arg(long, default_value = "20m", value_parser = parse_duration, value_name = "DURATION")]
    pub wait_timeout: std::time::Duration,
    /// Print one JSON document at the end (the plan, every step's outcome, the counts) instead of
    /// text; progress stays on stderr. Needs `--auto-approve` or a saved plan: a JSON run cannot ask.
    #[arg(long)]
    pub json: bool,
    /// Whether progress is a live view (stderr is a terminal); set by the binary, not typed.
    #[arg(skip)]
    pub live: bool,
}

/// Parses `300`, `300s`, `5m`, `1h`, `250ms`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write for example 90s, 5m or 1h"))?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        _ => {
            return Err(format!(
                "`{s}` is not a duration: the units are ms, s, m and h"
            ));
        }
    };
    Ok(std::time::Duration::from_millis(ms))
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Spec files or directories, as for `validate`; or one plan file saved by `plan --out`.
    #[arg(default_value = ".", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub scope: Scope,
    #[command(flatten)]
    pub execution: Execution,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Spec files or directories, as for `validate`.
    #[arg(default_value = ".", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub scope: Scope,
    #[command(flatten)]
    pub execution: Execution,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Spec files or directories, as for `validate`.
    #[arg(default_value = ".", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A versioned JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub scope: Scope,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan file written by `relayform plan --out`.
    #[arg(value_name = "PLANFILE")]
    pub plan: PathBuf,
    /// The plan's JSON (the document `plan --json` prints) instead of its text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Spec files or directories, as for `validate`.
    #[arg(default_value = ".", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
    /// The graph as a versioned JSON document (resources in creation order, with what each needs).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT (`relayform graph | dot -Tsvg > graph.svg`).
    Dot,
    /// A Mermaid flowchart (for Markdown).
    Mermaid,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Spec files, or directories whose `*.relayform.yaml` files (not those of subdirectories) form one
    /// spec.
    #[arg(default_value = ".", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print the diagnostics as a JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}
