//! relayform's executor, free of any vendor: it runs a plan's steps (`relayform_provider::act`:
//! each a semantic operation with the ids and values it needs) through the providers' traits, never
//! knowing a Salesforce or AWS call or wire format.
//!
//! - [`schedule`]: the order steps run in, a dependency walk with a ready queue, linear in steps and
//!   needs; teardown ordering and the build barrier per scope (an org, an account).
//! - [`run()`]: the run over the schedule with bounded parallelism (`--parallelism` slots, held while
//!   a step calls an API and given back while it waits; a ready step becomes a task only once it
//!   holds a slot) and Ctrl-C (nothing new starts, running calls finish, waits end).
//! - `ops`: what each operation does, and the values it hands on to later steps.
//! - `wait`: slots, polling with backoff up to the wait timeout, and one feedback read per org that
//!   serves every relay waiting there.
//! - [`report`]: each step's outcome, and the changes counted whole, overall and per scope.
//! - [`memory`]: an in-memory provider over the observed-state types, so the executor is tested in
//!   milliseconds without the simulator.
//!
//! Invariants (checked by `tests/architecture.rs`): this crate depends on no provider crate, SDK,
//! HTTP client or JSON library.

pub mod memory;
mod ops;
pub mod report;
pub mod run;
pub mod schedule;
mod wait;

pub use report::{Counts, Report};
pub use run::{Failure, Options, Progress, run};
pub use schedule::{Finish, Node, Phase, Schedule};
pub use wait::human;
