//! An offline simulator of the APIs behind Salesforce Event Relays: Salesforce (OAuth, REST data API,
//! Tooling API) and AWS (IAM, STS, EventBridge), in one process, on one port.
//!
//! It is a product of its own: the relayform engine tests against it, and so can anyone's tools
//! (the AWS SDKs and CLI, boto3, jsforce, the `sf` CLI). It therefore shares no code and no wire
//! types with the engine: it is written from the vendors' documentation (see `../shared/reference`),
//! so a field the engine misnames fails here as it would against the real APIs.
//!
//! # Design
//!
//! - **One world, one lock, no background work.** All state is plain data ([`world::World`]) behind
//!   a mutex. Delayed effects are scheduled in simulated time and applied when a request (or an admin
//!   clock advance) settles the world, so runs are deterministic and tests control time.
//! - **Handlers are functions of (world, request) → reply**, with the HTTP server only at the edge
//!   ([`server`]); the journal and fault injection wrap every API call in one place.
//! - **Many tenants.** Orgs are told apart by their instance URL (`/sf/<my domain>`) or by the access
//!   token; AWS accounts by the access key in the SigV4 credential scope, regions by its region.
//! - **Persistence is incremental** ([`store`]): a few times a second when something changed, and
//!   on shutdown, a save appends what changed (taken under the lock, serialized after it) to a pack
//!   and replaces a small manifest atomically (temp file, fsync, rename); a corrupt or inconsistent
//!   state is refused, never replaced. One simulator owns a state file at a time (a lock beside it), and its saves never
//!   overlap; the file exists before the first answer and a loaded world's ids skip ahead, so a
//!   simulator killed between saves never hands out an id twice.
//! - **Bounded against hostile input**: known regions only, bounded SOQL and filters, validated admin
//!   input, a header-read timeout ([`HEADER_READ_TIMEOUT`]); the admin API (`/_sim`) wants the
//!   per-process token ([`Running::admin_token`]), its own `Host`, no foreign `Origin`, and JSON.
//! - **As strict as the vendors' documentation.** Where the documentation reads two ways, the
//!   stricter is the default and a named setting ([`config::Settings`]) switches to the other.

pub mod admin;
pub mod aws;
pub mod clock;
pub mod config;
pub mod faults;
pub mod glob;
pub mod ids;
pub mod part;
pub mod persist;
pub mod reply;
pub mod salesforce;
pub mod server;
pub mod store;
pub mod world;

pub use config::Config;

use serde_json::json;
use server::Shared;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen; loopback on a free port unless told otherwise.
    pub addr: SocketAddr,
    pub config: Config,
    /// Where to keep the world between runs.
    pub state_file: Option<PathBuf>,
    /// A world loaded from the state file takes `config.settings` instead of its own.
    pub override_settings: bool,
    /// The token the admin API (`/_sim`) requires; a random one per process when not given.
    pub admin_token: Option<String>,
    /// The state file, read ahead ([`store::Preload`]): used if it is `state_file` and unchanged.
    pub preload: Option<Arc<store::Preload>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            config: Config::default(),
            state_file: None,
            override_settings: false,
            admin_token: None,
            preload: None,
        }
    }
}

/// Where everything is.
#[derive(Debug, Clone)]
pub struct Urls {
    pub base: String,
    /// My Domain name → instance URL.
    pub orgs: Vec<(String, String, String)>,
    pub aws_endpoint: String,
    pub admin: String,
    /// What `/_sim` requires in an `X-Sim-Admin-Token` header (or as a bearer token).
    pub admin_token: String,
}

impl Urls {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "base": self.base,
            "orgs": self.orgs.iter().map(|(d, id, u)| json!({"my_domain": d, "org_id": id, "instance_url": u})).collect::<Vec<_>>(),
            "aws_endpoint": self.aws_endpoint,
            "admin": self.admin,
            "admin_token": self.admin_token,
        })
    }
}

pub fn urls(base: &str, world: &world::World, admin_token: &str) -> Urls {
    Urls {
        base: base.to_owned(),
        orgs: world
            .orgs
            .values()
            .map(|o| {
                (
                    o.my_domain.clone(),
                    o.id.clone(),
                    format!("{base}/sf/{}", o.my_domain),
                )
            })
            .collect(),
        aws_endpoint: base.to_owned(),
        admin: format!("{base}/_sim"),
        admin_token: admin_token.to_owned(),
    }
}

/// A running simulator. Dropping it stops the server; [`Running::shutdown`] also saves the state.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub urls: Urls,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    saver: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn base_url(&self) -> &str {
        &self.urls.base
    }

    /// The token the admin API requires (`X-Sim-Admin-Token`).
    pub fn admin_token(&self) -> &str {
        &self.urls.admin_token
    }

    /// The instance URL of the org with this My Domain name.
    pub fn instance_url(&self, my_domain: &str) -> Option<String> {
        self.urls
            .orgs
            .iter()
            .find(|(d, ..)| d == my_domain)
            .map(|(_, _, u)| u.clone())
    }

    /// Reads or changes the world directly (for tests and embedding).
    pub fn with_world<T>(&self, f: impl FnOnce(&mut world::World, clock::Millis) -> T) -> T {
        let mut sim = self.shared.lock();
        let now = sim.clock.now();
        sim.world.settle(now);
        f(&mut sim.world, now)
    }

    /// Moves simulated time forward and applies what became due.
    pub fn advance(&self, ms: i64) {
        let mut sim = self.shared.lock();
        sim.clock.advance(ms);
        let now = sim.clock.now();
        sim.world.settle(now);
    }

    /// Stops serving and writes the state file.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.stop_tasks().await;
        self.shared.save()
    }

    async fn stop_tasks(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(s) = self.saver.take() {
            s.abort();
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(s) = self.saver.take() {
            s.abort();
        }
        if self.shared.state_file.is_some() && self.shared.dirty.load(Ordering::SeqCst) {
            let _ = self.shared.save();
        }
    }
}

/// How often the state file is saved while the world changes, at most...
pub const SAVE_INTERVAL: Duration = Duration::from_millis(250);
/// ...and at least (saves that take long are spaced out to four times their length, up to this).
pub const MAX_SAVE_INTERVAL: Duration = Duration::from_secs(5);

/// How long a client may take to send a request's headers: a connection that opens and sends half a
/// request is closed after this, instead of being held open for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP/1.1 connections until `stopped`, then lets the connections in flight finish their
/// requests (at most ten seconds more).
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let conn = http.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
}

/// Starts the simulator on a Tokio runtime.
pub async fn start(options: Options) -> Result<Running, Error> {
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|source| Error::Bind {
            addr: options.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: options.addr,
        source,
    })?;
    let shared = Arc::new(
        server::shared(
            options.config,
            options.state_file,
            addr,
            options.override_settings,
            options.admin_token,
            options.preload.as_deref(),
        )
        .map_err(Error::Setup)?,
    );
    // The state file exists before the first answer: a simulator killed at any later moment
    // leaves a file to load (whose id sequence then skips past what it handed out).
    shared.save().map_err(|e| {
        Error::Setup(format!(
            "cannot write the simulator state file {}: {e}",
            shared
                .state_file
                .as_deref()
                .unwrap_or(std::path::Path::new("?"))
                .display()
        ))
    })?;
    let urls = {
        let sim = shared.lock();
        urls(&shared.base_url, &sim.world, &shared.admin_token)
    };
    let app = axum::Router::new()
        .fallback(server::dispatch)
        .with_state(shared.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, stopped));
    let saver = shared.state_file.is_some().then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            // A save every quarter of a second when something changed, or less often when saves
            // take long (a large world changing everywhere): saving takes at most a fifth of the time.
            let mut interval = SAVE_INTERVAL;
            loop {
                tokio::time::sleep(interval).await;
                if shared.dirty.load(Ordering::SeqCst) {
                    let s = shared.clone();
                    let started = std::time::Instant::now();
                    let _ = tokio::task::spawn_blocking(move || s.save()).await;
                    interval = SAVE_INTERVAL
                        .max(started.elapsed() * 4)
                        .min(MAX_SAVE_INTERVAL);
                }
            }
        })
    });
    Ok(Running {
        addr,
        urls,
        shared,
        stop: Some(stop),
        server: Some(server),
        saver,
    })
}
