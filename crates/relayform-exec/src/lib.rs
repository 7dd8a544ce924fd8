//! relayform's executor, free of any vendor: it knows steps, what each needs, and the scope (an org,
//! an account) each acts in, never a Salesforce or AWS call or wire format. The CLI's `apply` turns
//! a plan into [`schedule::Node`]s and runs what the [`schedule::Schedule`] hands it.
//!
//! Invariants (checked by `tests/architecture.rs`): this crate depends on no provider crate, SDK or
//! HTTP client.

pub mod schedule;

pub use schedule::{Finish, Node, Phase, Schedule};
