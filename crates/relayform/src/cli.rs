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
    /// Print the resource graph of a spec: what depends on what, in creation order.
    Graph(GraphArgs),
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
