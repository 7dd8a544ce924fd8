//! What the user can type.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Declarative Salesforce Event Relays into Amazon EventBridge.
#[derive(Debug, Parser)]
#[command(name = "relayform", version, about, propagate_version = true)]
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
    /// Print the resource graph of a spec: what depends on what, in creation order.
    Graph(GraphArgs),
    /// The bundled simulator of the Salesforce and AWS APIs.
    #[command(subcommand)]
    Sim(SimCommand),
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
    #[arg(default_value = "specs", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Exit 0 when there is nothing to change, 2 when there is, 1 on errors.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Where the embedded simulator keeps its state (for `simulator: true` orgs and accounts).
    #[arg(long, value_name = "FILE", default_value = ".relayform/simulator.json")]
    pub simulator_state: PathBuf,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Spec files or directories, as for `validate`.
    #[arg(default_value = "specs", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
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
    /// Spec files, or directories whose `*.yaml` and `*.yml` files (recursively) form one spec.
    #[arg(default_value = "specs", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print the diagnostics as a JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}
