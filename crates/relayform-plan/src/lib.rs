//! relayform's plan model and pure planner.
//!
//! A relay is not one object but a small graph of them, across two systems, that must be created in
//! order: the IAM role that forwards events, the named credential, the channel and its members, the
//! relay itself, the association of the partner event source (which Salesforce creates only once the
//! relay exists), the forwarding rule on the partner bus, and last the relay's run state. This crate
//! turns a checked [`Spec`](relayform_spec::Spec) into that graph ([`desired()`]), with shared nodes
//! (one credential per org, account and region; one role per account and destination) deduplicated.
//!
//! # Design
//!
//! - **Pure.** No IO, no async, no clock: a value in, a value out. The planner's inputs (desired state
//!   and observed state) and output (the plan) are plain data, so it is tested with data alone.
//!   `tests/architecture.rs` enforces that this crate depends on no runtime, HTTP client or SDK.
//! - **Generic graph code knows nothing of the domain.** [`graph`] is a DAG keyed by address with
//!   ordering, cycle detection, dependency closure and DOT/Mermaid rendering; [`resource`] and
//!   [`mod@desired`] are the domain.
//! - **Addresses are the user's handle.** Every node has a stable, printable [`Address`] such as
//!   `salesforce.relay[orders]`; `--target` and plan output use the same strings.
//! - **The plan is the executor's whole contract.** [`lower()`] turns a plan into steps that carry
//!   every id, name and value they act with, so the executor (`relayform-exec`) needs neither the spec
//!   nor the observed state.

pub mod desired;
pub mod diff;
pub mod graph;
pub mod lower;
pub mod plan;
pub mod policy;
pub mod resource;

pub use desired::desired;
pub use graph::{Cycle, Graph};
pub use lower::lower;
pub use resource::{Address, Kind, Resource};
