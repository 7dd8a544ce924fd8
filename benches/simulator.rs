//! Simulator throughput and footprint. Prints its figures; asserts only that the work was done.
//!
//! `cargo bench -p relayform-benches --bench simulator` (add `-- --quick` for a smaller run).
//!
//! 1. Builds 100 orgs of 100 relays each over HTTP (named credential, channel, member, relay per
//!    relay; partner sources associated; a forwarding rule per partner bus), then reports resident
//!    memory.
//! 2. Requests per second for a mix of simple calls (EventBridge DescribeEventBus, IAM GetRole,
//!    Tooling GET by id, a SOQL query), from concurrent keep-alive clients in the same process.
//! 3. Events per second relayed end to end (publish → relay → partner bus → rule → role check →
//!    destination bus), published through the library, and through the REST API.
#![allow(clippy::print_stdout, unreachable_pub)]

use relayform_simulator::config::{ClockMode, Config, DEMO_CLIENT_SECRET};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "100000000001";

/// Counts live heap bytes, to tell the simulator's data from what the allocator keeps in reserve;
/// over mimalloc, the allocator of the `relayform` binary that serves the simulator.
struct Counting;

static LIVE: AtomicU64 = AtomicU64::new(0);

#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { std::alloc::GlobalAlloc::alloc(&mimalloc::MiMalloc, layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        unsafe { std::alloc::GlobalAlloc::dealloc(&mimalloc::MiMalloc, ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_mb() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn aws(&self, service: &str, target: Option<&str>, body: String) -> (u16, String) {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={ACCOUNT}/20261128/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let mut req = self
            .http
            .post(format!("{}/", self.base))
            .header("authorization", auth)
            .body(body);
        req = match target {
            Some(t) => req
                .header("x-amz-target", format!("AWSEvents.{t}"))
                .header("content-type", "application/x-amz-json-1.1"),
            None => req.header("content-type", "application/x-www-form-urlencoded"),
        };
        let r = req.send().await.expect("request");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    async fn sf(
        &self,
        method: reqwest::Method,
        instance: &str,
        token: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{instance}{path}"))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.expect("request");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

struct Org {
    instance: String,
    token: String,
    relay_ids: Vec<String>,
}

async fn build_org(c: Arc<Client>, n: usize, relays: usize) -> Org {
    let instance = format!("{}/sf/org{n}", c.base);
    let tok: Value = c
        .http
        .post(format!("{instance}/services/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &format!("relayform-org{n}-client")),
            ("client_secret", DEMO_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tok["access_token"].as_str().expect("token").to_owned();
    let post = |t: &str, body: Value| {
        let c = c.clone();
        let (instance, token, t) = (instance.clone(), token.clone(), t.to_owned());
        async move {
            let (s, r) = c
                .sf(
                    reqwest::Method::POST,
                    &instance,
                    &token,
                    &format!("/services/data/v59.0/tooling/sobjects/{t}"),
                    Some(&body),
                )
                .await;
            assert_eq!(s, 201, "{t}: {r}");
            r["id"].as_str().unwrap().to_owned()
        }
    };
    post("NamedCredential", json!({"FullName": "Bench", "Metadata": {"endpoint": format!("arn:aws:US-EAST-1:{ACCOUNT}")}})).await;
    let mut relay_ids = Vec::new();
    for i in 0..relays {
        post(
            "PlatformEventChannel",
            json!({"FullName": format!("C{i}__chn"), "Metadata": {"channelType": "event"}}),
        )
        .await;
        post("PlatformEventChannelMember", json!({"FullName": format!("C{i}_chn_E{i}_e"), "Metadata": {"eventChannel": format!("C{i}__chn"), "selectedEntity": format!("E{i}__e")}})).await;
        relay_ids.push(post("EventRelayConfig", json!({"FullName": format!("R{i}"), "Metadata": {"destinationResourceName": "callout:Bench", "eventChannel": format!("C{i}__chn"), "relayOption": "{\"ReplayRecovery\":\"EARLIEST\"}"}})).await);
    }
    Org {
        instance,
        token,
        relay_ids,
    }
}

/// Runs `tasks` concurrent loops of `op` for `secs`; returns operations per second.
async fn rate<F, Fut>(tasks: usize, secs: f64, op: F) -> (f64, u64)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (op, count) = (op.clone(), count.clone());
            tokio::spawn(async move {
                let mut i = t as u64;
                while Instant::now() < deadline {
                    op(i).await;
                    count.fetch_add(1, Ordering::Relaxed);
                    i += tasks as u64;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let n = count.load(Ordering::Relaxed);
    (n as f64 / start.elapsed().as_secs_f64(), n)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (mut orgs, mut relays, secs) = if quick {
        (10, 10, 1.0)
    } else {
        (100, 100, 5.0)
    };
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    orgs = env("BENCH_ORGS").unwrap_or(orgs);
    relays = env("BENCH_RELAYS").unwrap_or(relays);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(orgs, relays, secs));
}

async fn run(orgs: usize, relays: usize, secs: f64) {
    let mut config = Config::many(orgs, 1);
    config.settings.clock = ClockMode::Frozen;
    config.settings.partner_source_delay_seconds = 0;
    config.settings.source_visibility_lag_seconds = 0;
    config.settings.state_change_delay_seconds = 0;
    for o in &mut config.orgs {
        o.platform_events = (0..relays)
            .map(|i| (format!("E{i}__e"), vec!["Id__c".to_owned()]))
            .collect();
        // An org with the add-on allocations: one channel and one distinct event per relay.
        o.allocations.event_channels = relays;
        o.allocations.platform_events_in_channels = relays;
    }
    let sim = relayform_simulator::start(relayform_simulator::Options {
        config,
        ..Default::default()
    })
    .await
    .unwrap();
    let rss_empty = rss_mb();
    let c = Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap(),
        base: sim.base_url().to_owned(),
    });

    // 1. Build the fleet.
    let t = Instant::now();
    let mut built = Vec::new();
    for chunk in (1..=orgs).collect::<Vec<_>>().chunks(16) {
        let hs: Vec<_> = chunk
            .iter()
            .map(|&n| tokio::spawn(build_org(c.clone(), n, relays)))
            .collect();
        for h in hs {
            built.push(h.await.unwrap());
        }
    }
    let creates = orgs * (1 + 3 * relays);
    let rss_tooling = rss_mb();
    println!(
        "setup: {orgs} orgs x {relays} relays: {creates} Tooling creates in {:.1}s ({:.0}/s)",
        t.elapsed().as_secs_f64(),
        creates as f64 / t.elapsed().as_secs_f64()
    );
    sim.advance(1);
    let sources: Vec<String> = sim.with_world(|w, _| {
        w.accounts[ACCOUNT].regions["us-east-1"]
            .sources
            .keys()
            .cloned()
            .collect()
    });
    assert_eq!(
        sources.len(),
        orgs * relays,
        "every relay registered its partner source"
    );

    let t = Instant::now();
    c.aws(
        "iam",
        None,
        format!(
            "Action=CreateRole&Version=2010-05-08&RoleName=fwd&AssumeRolePolicyDocument={}",
            form(TRUST)
        ),
    )
    .await;
    let policy = json!({"Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": format!("arn:aws:events:us-east-1:{ACCOUNT}:event-bus/destination")}]}).to_string();
    c.aws(
        "iam",
        None,
        format!(
            "Action=PutRolePolicy&Version=2010-05-08&RoleName=fwd&PolicyName=p&PolicyDocument={}",
            form(&policy)
        ),
    )
    .await;
    c.aws(
        "events",
        Some("CreateEventBus"),
        json!({"Name": "destination"}).to_string(),
    )
    .await;
    let pattern = json!({"source": [{"prefix": "aws.partner/salesforce.com"}]}).to_string();
    let chunks: Vec<Vec<String>> = sources
        .chunks(sources.len().div_ceil(32))
        .map(|c| c.to_vec())
        .collect();
    let hs: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (c, pattern) = (c.clone(), pattern.clone());
            tokio::spawn(async move {
                for src in chunk {
                    assert_eq!(c.aws("events", Some("CreateEventBus"), json!({"Name": src, "EventSourceName": src}).to_string()).await.0, 200);
                    assert_eq!(c.aws("events", Some("PutRule"), json!({"Name": "fwd", "EventBusName": src, "EventPattern": pattern}).to_string()).await.0, 200);
                    let target = json!({"Id": "dest", "Arn": format!("arn:aws:events:us-east-1:{ACCOUNT}:event-bus/destination"), "RoleArn": format!("arn:aws:iam::{ACCOUNT}:role/fwd")});
                    assert_eq!(c.aws("events", Some("PutTargets"), json!({"Rule": "fwd", "EventBusName": src, "Targets": [target]}).to_string()).await.0, 200);
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    let hs: Vec<_> = built
        .iter()
        .map(|o| {
            let (c, instance, token, ids) = (
                c.clone(),
                o.instance.clone(),
                o.token.clone(),
                o.relay_ids.clone(),
            );
            tokio::spawn(async move {
                for (i, id) in ids.iter().enumerate() {
                    // A Tooling PATCH replaces the whole Metadata (the simulator's strict default):
                    // the relay as created, with its state.
                    let metadata = json!({"Metadata": {
                        "label": format!("R{i}"),
                        "destinationResourceName": "callout:Bench",
                        "eventChannel": format!("C{i}__chn"),
                        "relayOption": "{\"ReplayRecovery\":\"EARLIEST\"}",
                        "state": "RUN",
                    }});
                    let (s, body) = c
                        .sf(
                            reqwest::Method::PATCH,
                            &instance,
                            &token,
                            &format!("/services/data/v59.0/tooling/sobjects/EventRelayConfig/{id}"),
                            Some(&metadata),
                        )
                        .await;
                    assert_eq!(s, 204, "{body}");
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    sim.advance(1);
    let running = sim.with_world(|w, _| {
        w.orgs
            .values()
            .flat_map(|o| o.relays.values())
            .filter(|r| r.status == "RUNNING")
            .count()
    });
    assert_eq!(running, orgs * relays, "every relay running");
    let n = orgs * relays;
    println!(
        "setup: {n} associations, {n} rules with targets, {n} state changes in {:.1}s ({:.0} req/s)",
        t.elapsed().as_secs_f64(),
        (4 * n) as f64 / t.elapsed().as_secs_f64()
    );
    let journal = sim.with_world(|w, _| w.journal.entries.len());
    println!(
        "memory: resident {:.0} MB (live heap {:.0} MB) with {orgs} orgs x {relays} relays ready to run (empty simulator: {rss_empty:.0} MB, after the Salesforce side: {rss_tooling:.0} MB; journal: {journal} entries); target < 200 MB",
        rss_mb(),
        live_mb()
    );

    // 2. A mix of simple calls.
    let first = Arc::new((
        built[0].instance.clone(),
        built[0].token.clone(),
        built[0].relay_ids.clone(),
    ));
    let c2 = c.clone();
    let (rps, total) = rate(32, secs, move |i| {
        let (c, first) = (c2.clone(), first.clone());
        async move {
            let (instance, token, ids) = (&first.0, &first.1, &first.2);
            let status = match i % 4 {
                0 => c.aws("events", Some("DescribeEventBus"), json!({"Name": "destination"}).to_string()).await.0,
                1 => c.aws("iam", None, "Action=GetRole&Version=2010-05-08&RoleName=fwd".into()).await.0,
                2 => c.sf(reqwest::Method::GET, instance, token, &format!("/services/data/v59.0/tooling/sobjects/EventRelayConfig/{}", ids[i as usize % ids.len()]), None).await.0,
                _ => c.sf(reqwest::Method::GET, instance, token, "/services/data/v59.0/tooling/query?q=SELECT+Id,State+FROM+EventRelayConfig+WHERE+DeveloperName='R1'", None).await.0,
            };
            assert_eq!(status, 200);
        }
    })
    .await;
    println!(
        "requests: {rps:.0} req/s over {total} calls (DescribeEventBus, GetRole, Tooling GET, SOQL query; 32 keep-alive clients in-process); target >= 5000"
    );

    // 3. Events end to end.
    let delivered = |sim: &relayform_simulator::Running| {
        sim.with_world(|w, _| {
            w.accounts[ACCOUNT].regions["us-east-1"].buses["destination"].received
        })
    };
    let before = delivered(&sim);
    let org_ids: Vec<String> = sim.with_world(|w, _| w.orgs.keys().cloned().collect());
    let events = if orgs * relays >= 10_000 {
        200_000
    } else {
        20_000
    };
    let t = Instant::now();
    for i in 0..events {
        let org = &org_ids[i % org_ids.len()];
        let name = format!("E{}__e", (i / org_ids.len()) % relays);
        sim.with_world(|w, now| {
            w.publish(org, &name, json!({"Id__c": i}), now);
        });
    }
    let eps = events as f64 / t.elapsed().as_secs_f64();
    assert_eq!(
        delivered(&sim) - before,
        events as u64,
        "every event reached the destination bus"
    );
    println!(
        "events: {eps:.0} events/s relayed end to end ({events} events published through the library, each through relay, partner bus, rule, role check and destination bus); target >= 20000"
    );

    let before = delivered(&sim);
    let c3 = c.clone();
    let orgs_http: Arc<Vec<(String, String)>> = Arc::new(
        built
            .iter()
            .map(|o| (o.instance.clone(), o.token.clone()))
            .collect(),
    );
    let (eps_http, n) = rate(32, secs, move |i| {
        let (c, orgs_http) = (c3.clone(), orgs_http.clone());
        async move {
            let (instance, token) = &orgs_http[i as usize % orgs_http.len()];
            let event = format!("E{}__e", (i as usize / orgs_http.len()) % relays);
            let (s, _) = c
                .sf(
                    reqwest::Method::POST,
                    instance,
                    token,
                    &format!("/services/data/v59.0/sobjects/{event}"),
                    Some(&json!({"Id__c": i})),
                )
                .await;
            assert_eq!(s, 201);
        }
    })
    .await;
    assert_eq!(
        delivered(&sim) - before,
        n,
        "every event published over REST reached the destination bus"
    );
    println!(
        "events: {eps_http:.0} events/s relayed end to end when each is published over REST ({n} events, 32 clients)"
    );
    println!("memory: resident {:.0} MB at the end", rss_mb());
}

fn form(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
