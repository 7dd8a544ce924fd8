//! The HTTP server: one handler in front of the admin API, the AWS endpoint and the Salesforce routes.
//!
//! Around every API call: settle the world to the current simulated time, work out the call's API,
//! operation, org or account, apply any faults, handle it, and record it in the journal.

use crate::aws;
use crate::clock::Clock;
use crate::config::Config;
use crate::faults::{Action, Call};
use crate::persist;
use crate::reply::{Reply, Request};
use crate::salesforce::{self, SfError};
use crate::store::Store;
use crate::world::{JournalEntry, World};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use compact_str::CompactString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The simulated world and its clock.
#[derive(Debug)]
pub struct Sim {
    pub world: World,
    pub clock: Clock,
}

#[derive(Debug)]
pub struct Shared {
    pub sim: Mutex<Sim>,
    pub base_url: String,
    pub config: Config,
    pub state_file: Option<PathBuf>,
    pub dirty: AtomicBool,
    /// What the admin API requires (see `admin`).
    pub admin_token: String,
    /// What the state file holds, held while a save runs: one save at a time, and the last one
    /// waits for one in flight.
    store: Mutex<Option<Store>>,
    /// The request-rate buckets of `aws_requests_per_second`, per account, region and service: (tokens,
    /// when last filled), in real time (a quota is about the wall clock, not simulated time).
    quota: Mutex<std::collections::HashMap<(String, String), (f64, std::time::Instant)>>,
    /// This process's claim on the state file, held while the simulator runs.
    _lock: Option<persist::StateLock>,
}

impl Shared {
    /// Takes a request from the bucket of an account's service in a region (`us-east-1/events`):
    /// whether it is over the quota (the reply then carries no retry hint: see `aws::over_rate`).
    fn over_quota(&self, rate: u32, account: &str, place: &str) -> bool {
        let rate = f64::from(rate);
        let now = std::time::Instant::now();
        let mut buckets = self.quota.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, at) = buckets
            .entry((account.to_owned(), place.to_owned()))
            .or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            false
        } else {
            true
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Sim> {
        // A panic while holding the lock must not take the server down with it.
        self.sim.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the state file now, if there is one.
    pub fn save(&self) -> std::io::Result<()> {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let Some(store) = store.as_mut() else {
            return Ok(());
        };
        // Under the world's lock only pointers and what the logs gained are taken; serializing and
        // writing happen after it is let go.
        let taken = {
            let mut sim = self.lock();
            self.dirty.store(false, Ordering::SeqCst);
            let clock = sim.clock.state();
            store.take(&mut sim.world, clock)
        };
        store.write(taken)
    }
}

enum Kind {
    Aws(aws::Parsed),
    Salesforce(salesforce::Route),
}

fn to_response(r: Reply) -> Response {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

pub async fn dispatch(State(shared): State<Arc<Shared>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let limit = shared.config.settings.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let reply = if path.starts_with("/services") || path.starts_with("/sf/") {
                SfError::new(
                    413,
                    "REQUEST_ENTITY_TOO_LARGE",
                    format!("The request body exceeds {limit} bytes."),
                )
                .reply()
            } else {
                let headers: Vec<(String, String)> = parts
                    .headers
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                    .collect();
                aws::too_large(&headers, limit)
            };
            return to_response(reply);
        }
    };
    let request = Request {
        method: parts.method.as_str().to_owned(),
        path: path.clone(),
        query: parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: bytes.to_vec(),
    };
    if path == "/_sim" || path.starts_with("/_sim/") {
        return to_response(crate::admin::handle(&shared, &request));
    }
    to_response(api(&shared, request).await)
}

async fn api(shared: &Shared, req: Request) -> Reply {
    // Classify and decide faults under the lock, then let go of it while sleeping.
    let (kind, actions, over_quota) = {
        let mut sim = shared.lock();
        let now = sim.clock.now();
        sim.world.settle(now);
        let kind = if req.method == "POST" && req.path.trim_end_matches('/').is_empty() {
            Kind::Aws(aws::parse(&req))
        } else {
            Kind::Salesforce(salesforce::route(&sim.world, &req))
        };
        let mut over_quota = false;
        let actions = match &kind {
            Kind::Aws(p) => {
                let account = p
                    .access_key
                    .as_deref()
                    .and_then(|k| sim.world.account_for_key(k));
                if let (Some(rate), Some(account), Some(region)) = (
                    sim.world.settings.aws_requests_per_second,
                    account.as_deref(),
                    p.region.as_deref(),
                ) {
                    let place = format!("{region}/{}", p.service.name());
                    over_quota = shared.over_quota(rate, account, &place);
                }
                let call = Call {
                    api: "aws",
                    operation: &p.operation,
                    with_object: None,
                    org: None,
                    account: account.as_deref(),
                };
                sim.world.faults.check(&call)
            }
            Kind::Salesforce(r) => {
                let org = r
                    .org
                    .as_ref()
                    .and_then(|id| sim.world.orgs.get(id))
                    .map(|o| (o.id.clone(), o.my_domain.clone()));
                let with_object = r.object.as_ref().map(|o| format!("{}:{o}", r.operation));
                sim.world.faults.check(&Call {
                    api: "salesforce",
                    operation: &r.operation,
                    with_object: with_object.as_deref(),
                    org: org.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
                    account: None,
                })
            }
        };
        (kind, actions, over_quota)
    };
    for a in &actions {
        if let Action::Latency { ms } = a {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
        }
    }
    let quota = match &kind {
        Kind::Aws(p) if over_quota => {
            Some(("quota".to_owned(), aws::over_rate(p.service, "quota")))
        }
        _ => None,
    };
    let refusal = quota.or_else(|| {
        actions.iter().find_map(|a| match a {
            Action::Error {
                status,
                code,
                message,
            } => Some((
                format!("error {code}"),
                fault_error(&kind, *status, code, message),
            )),
            Action::Throttle { retry_after_ms } => Some((
                "throttle".to_owned(),
                fault_throttle(&kind, *retry_after_ms),
            )),
            _ => None,
        })
    });
    let lose = actions.iter().any(|a| matches!(a, Action::LoseResponse));
    let mut sim = shared.lock();
    let now = sim.clock.now();
    let (reply, fault) = match refusal {
        Some((name, reply)) => (reply, Some(name)),
        None => {
            sim.world.settle(now);
            let reply = match &kind {
                Kind::Aws(p) => aws::handle(&mut sim.world, &req, p, now),
                Kind::Salesforce(r) => {
                    salesforce::handle(&mut sim.world, &req, r, now, &shared.base_url)
                }
            };
            (reply, lose.then(|| "lose_response".to_owned()))
        }
    };
    let short = |s: &Option<String>| s.as_deref().map(CompactString::from);
    let entry = match &kind {
        Kind::Aws(p) => JournalEntry {
            seq: 0,
            time: now,
            api: "aws".into(),
            service: p.service.name().into(),
            operation: p.operation.as_str().into(),
            object: None,
            org: None,
            account: short(
                &p.access_key
                    .as_deref()
                    .and_then(|k| sim.world.account_for_key(k)),
            ),
            region: short(&p.region),
            status: reply.status,
            fault: short(&fault),
        },
        Kind::Salesforce(r) => JournalEntry {
            seq: 0,
            time: now,
            api: "salesforce".into(),
            service: r.service.into(),
            operation: r.operation.as_str().into(),
            object: short(&r.object),
            org: short(&r.org),
            account: None,
            region: None,
            status: reply.status,
            fault: short(&fault),
        },
    };
    sim.world.record(entry);
    drop(sim);
    shared.dirty.store(true, Ordering::SeqCst);
    if lose {
        return Reply::new(504, "text/plain", "upstream request timeout");
    }
    reply
}

fn fault_error(kind: &Kind, status: u16, code: &str, message: &str) -> Reply {
    match kind {
        Kind::Aws(p) => aws::error_reply(
            p.service,
            &aws::AwsError::new(status, code, message),
            "fault",
        ),
        Kind::Salesforce(r) if r.service == "oauth" => Reply::json(
            status,
            &serde_json::json!({"error": code, "error_description": message}),
        ),
        Kind::Salesforce(_) => SfError::new(status, code, message).reply(),
    }
}

fn fault_throttle(kind: &Kind, retry_after_ms: u64) -> Reply {
    let retry_after = retry_after_ms.div_ceil(1000).max(1).to_string();
    match kind {
        Kind::Aws(p) => aws::throttled(p.service, retry_after_ms, "fault"),
        // The token endpoint answers in OAuth's shape: RFC 6749's `temporarily_unavailable`, on a
        // 429 (Salesforce documents no throttling answer of its token endpoint; this is the
        // simulator's reading, the one a standard OAuth client understands).
        Kind::Salesforce(r) if r.service == "oauth" => Reply::json(
            429,
            &serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": "Login rate exceeded; try again later.",
            }),
        )
        .header("Retry-After", retry_after),
        Kind::Salesforce(_) => SfError::new(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded.",
        )
        .reply()
        .header("Retry-After", retry_after),
    }
}

/// Builds the shared state: from the state file when it exists, else from the config. A loaded world
/// keeps the settings it was made with unless `override_settings` says to take the config's.
pub fn shared(
    config: Config,
    state_file: Option<PathBuf>,
    addr: SocketAddr,
    override_settings: bool,
    admin_token: Option<String>,
    preload: Option<&crate::store::Preload>,
) -> Result<Shared, String> {
    let base_url = format!("http://{addr}");
    let lock = state_file
        .as_deref()
        .map(persist::StateLock::acquire)
        .transpose()?;
    // With the lock held: what was read ahead, if the file is still what it read.
    let ahead = state_file
        .as_deref()
        .zip(preload)
        .and_then(|(path, p)| p.take(path));
    let loaded = match ahead {
        Some(loaded) => Some(loaded),
        None => state_file
            .as_deref()
            .map(crate::store::load)
            .transpose()?
            .flatten(),
    };
    let mut store = state_file.as_deref().map(Store::new);
    let sim = match loaded {
        Some(snap) => {
            store = Some(snap.store);
            let mut world = snap.world;
            if override_settings {
                world.settings = config.settings.clone();
            }
            // The file is at most a save interval behind what was answered: a simulator killed in
            // between had handed out ids the file does not know. Skipping ahead means none of them
            // is ever handed out again for another object.
            world.seq = world.seq.saturating_add(persist::SEQ_GAP_ON_LOAD);
            world.reseed();
            let s = &world.settings;
            let clock = Clock::starting_at(s.clock, snap.clock.now).with_speed(s.clock_speed);
            Sim { world, clock }
        }
        None => Sim {
            world: World::new(&config)?,
            clock: Clock::new(config.settings.clock).with_speed(config.settings.clock_speed),
        },
    };
    Ok(Shared {
        quota: Mutex::default(),
        sim: Mutex::new(sim),
        base_url,
        config,
        state_file,
        dirty: AtomicBool::new(true),
        admin_token: admin_token.unwrap_or_else(|| {
            use rand::Rng;
            let mut rng = rand::rng();
            (0..32)
                .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
                .collect()
        }),
        store: Mutex::new(store.inspect(Store::remove_strays)),
        _lock: lock,
    })
}
