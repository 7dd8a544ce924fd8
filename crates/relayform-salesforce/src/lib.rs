//! relayform's Salesforce client: authentication, the REST data and Tooling APIs, and the behaviour
//! around every call that an engine needs to be safe against real orgs.
//!
//! # Design
//!
//! - **Authentication behind its own seam.** A [`TokenSource`] hands out sessions (access token and
//!   instance URL) and renews one the API refused; the OAuth flows ([`OAuth`]) and a fixed token
//!   ([`StaticToken`]) implement it, and org pinning or other credential stores can later.
//! - **Errors are classified** ([`ErrorKind`]): not found, conflict, rejected (with the vendor's code and
//!   message), throttled, transient, unauthorized. Transient and throttled calls are retried with
//!   jittered exponential backoff, honouring `Retry-After`, for as long as the client's [`Patience`]
//!   allows (bounded in time, not in count); a POST that failed in transit is not repeated (the
//!   caller looks the object up). A 401 renews the session once and retries. Nothing else is retried.
//! - **Nothing waits for ever**: connect, per-attempt and total timeouts on every call, the token
//!   requests (which are retried too: they create nothing) and the `sf` CLI included; a failure in
//!   transit names the endpoint (scheme, host and port; never a path or query).
//! - **Every call is observable and countable**: an [`Observer`] sees each attempt (operation, method,
//!   path, status, attempt number, time taken), and each attempt is a `tracing` event.
//! - **Secrets never leave**: tokens and client secrets are [`Secret`]s, whose `Debug` prints `***` and
//!   which have no `Display`; error messages carry the vendor's code and message, never a credential.
//! - No reqwest type appears in this crate's public signatures, so the engine's provider contract does
//!   not depend on the HTTP client.
//! - **Reading and changing** are [`observe`] (six queries per org) and [`ops`] (one Tooling object at
//!   a time; a create answered "duplicate" adopts the existing object when it matches the spec).

mod auth;
mod client;
mod error;
pub mod observe;
pub mod ops;

pub use auth::{BoxFuture, Grant, OAuth, Session, SfCli, StaticToken, TokenSource};
pub use client::{Call, Client, Observer, RetryPolicy};
pub use observe::observe_org;
pub use relayform_provider::{Error, ErrorKind, Patience, Secret};

/// The API version relayform speaks (Event Relay objects need 56.0 or later).
pub const API_VERSION: &str = "59.0";
