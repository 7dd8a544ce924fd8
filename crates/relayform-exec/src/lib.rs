//! relayform's executor, free of any vendor: it runs a plan's steps (`relayform_provider::act`:
//! each a semantic operation with the ids and values it needs) through the providers' traits, never
//! knowing a Salesforce or AWS call or wire format.
//!
//! - [`schedule`]: the order steps run in, a dependency walk with a ready queue, linear in steps and
//!   needs; teardown ordering and the build barrier per scope (an org, an account).
//! - [`run()`]: the run over the schedule with bounded parallelism (`--parallelism` slots, held while
//!   a step calls an API and given back while it waits), Ctrl-C (nothing new starts, running calls
//!   finish), and the [`Report`] with counts per change and per scope.
//! - `ops`: what each operation does, its waits (polling with backoff up to the wait timeout; one
//!   feedback read per org serves every relay waiting there) and the values it hands on.
//! - [`memory`]: an in-memory provider over the observed-state types, so the executor is tested in
//!   milliseconds without the simulator.
//!
//! Invariants (checked by `tests/architecture.rs`): this crate depends on no provider crate, SDK,
//! HTTP client or JSON library.

pub mod memory;
mod ops;
pub mod run;
pub mod schedule;

pub use run::{Counts, Failure, Options, Progress, Report, human, run};
pub use schedule::{Finish, Node, Phase, Schedule};
