//! The admin API, under `/_sim`: reset, state, clock, faults, journal, deliveries, direct publishing.
//! Documented in `simulator/README.md`. It is not journalled and not subject to faults.

use crate::faults::Fault;
use crate::reply::{Reply, Request};
use crate::server::Shared;
use crate::world::World;
use serde_json::{Value, json};

fn bad(message: impl Into<String>) -> Reply {
    Reply::json(400, &json!({"error": message.into()}))
}

fn body(req: &Request) -> Result<Value, Reply> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body).map_err(|e| bad(format!("the body is not JSON: {e}")))
}

/// An org by id (15 or 18 characters) or My Domain name.
fn org_id(world: &World, key: &str) -> Option<String> {
    world
        .orgs
        .values()
        .find(|o| o.id == key || o.my_domain == key || (key.len() == 15 && o.id.starts_with(key)))
        .map(|o| o.id.clone())
}

/// Who may use the admin API: a request naming this server in `Host` (so a DNS name rebound to
/// 127.0.0.1 cannot), from no web page of another origin, carrying the process's admin token, and
/// sending JSON (a browser's form or `text/plain` post, which needs no preflight, is refused).
fn admitted(shared: &Shared, req: &Request) -> Result<(), Reply> {
    let refuse = |status: u16, why: &str| {
        Reply::json(status, &json!({"error": why, "see": "simulator/README.md"}))
    };
    let base = shared.base_url.trim_start_matches("http://");
    let port = base.rsplit_once(':').map_or("", |(_, p)| p);
    let host_ok = req.header("host").is_some_and(|h| {
        h == base
            || [
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
            ]
            .iter()
            .any(|x| x == h)
    });
    if !host_ok {
        return Err(refuse(
            403,
            "the admin API answers only requests addressed to this simulator (Host header)",
        ));
    }
    if let Some(origin) = req.header("origin")
        && origin != shared.base_url
        && origin != format!("http://localhost:{port}")
    {
        return Err(refuse(
            403,
            "the admin API does not answer web pages of other origins",
        ));
    }
    let token = req.header("x-sim-admin-token").or_else(|| {
        req.header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
    });
    if token != Some(shared.admin_token.as_str()) {
        return Err(refuse(
            401,
            "the admin API needs the X-Sim-Admin-Token header: the token `relayform sim serve` prints (or `Running::admin_token`)",
        ));
    }
    let json = req.header("content-type").is_some_and(|c| {
        c.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if req.method == "POST" && !json {
        return Err(refuse(
            415,
            "admin API posts are JSON: send Content-Type: application/json",
        ));
    }
    Ok(())
}

/// The world as JSON with its credentials (client secrets, passwords, access and refresh tokens,
/// secret access keys) replaced by `"(redacted)"`.
fn redacted(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    let lower = k.to_ascii_lowercase();
                    if ["secret", "password", "private_key"]
                        .iter()
                        .any(|s| lower.contains(s))
                        && child.is_string()
                    {
                        *child = json!("(redacted)");
                    } else if (lower == "tokens" || lower == "refresh_tokens") && child.is_object()
                    {
                        // Keyed by the token itself.
                        let n = child.as_object().map_or(0, |m| m.len());
                        *child = json!(format!("({n} redacted)"));
                    } else {
                        walk(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

pub fn handle(shared: &Shared, req: &Request) -> Reply {
    if let Err(refused) = admitted(shared, req) {
        return refused;
    }
    let path = req.path.trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).skip(1).collect();
    let result = route(shared, req, &segs);
    match result {
        Ok(r) => r,
        Err(r) => r,
    }
}

fn route(shared: &Shared, req: &Request, segs: &[&str]) -> Result<Reply, Reply> {
    let method = req.method.as_str();
    let mut sim = shared.lock();
    let now = sim.clock.now();
    sim.world.settle(now);
    let reply = match (method, segs) {
        ("GET", []) => Reply::json(
            200,
            &crate::urls(&shared.base_url, &sim.world, &shared.admin_token).to_json(),
        ),
        ("POST", ["reset"]) => {
            sim.world = World::new(&shared.config).map_err(bad)?;
            Reply::json(200, &json!({"reset": true}))
        }
        ("GET", ["state"]) => {
            let mut world = serde_json::to_value(&sim.world).map_err(|e| bad(e.to_string()))?;
            if req.query("secrets") != Some("true") {
                world = redacted(world);
            }
            Reply::json(
                200,
                &json!({"now": now, "time": crate::clock::iso(now), "world": world}),
            )
        }
        ("GET", ["clock"]) => {
            Reply::json(200, &json!({"now": now, "time": crate::clock::iso(now)}))
        }
        ("POST", ["clock", "advance"]) => {
            let b = body(req)?;
            let max = crate::clock::MAX_ADVANCE_MS;
            let ms = match (b.get("ms"), b.get("seconds")) {
                (Some(ms), None) => ms.as_i64(),
                (None, Some(s)) => s
                    .as_f64()
                    .filter(|s| s.is_finite() && *s * 1000.0 <= max as f64)
                    .map(|s| (s * 1000.0) as i64),
                _ => None,
            };
            let Some(ms) = ms.filter(|m| (0..=max).contains(m)) else {
                return Err(bad(format!(
                    "give one of `seconds` or `ms`: a number from 0 to {max} ms (a century)"
                )));
            };
            if sim.clock.now().saturating_add(ms) > crate::clock::LATEST {
                return Err(bad("the simulated clock cannot go past the year 9999"));
            }
            sim.clock.advance(ms);
            let now = sim.clock.now();
            sim.world.settle(now);
            Reply::json(200, &json!({"now": now, "time": crate::clock::iso(now)}))
        }
        ("GET", ["faults"]) => Reply::json(200, &json!({"faults": sim.world.faults.rules})),
        ("POST", ["faults"]) => {
            let f: Fault =
                serde_json::from_value(body(req)?).map_err(|e| bad(format!("not a fault: {e}")))?;
            f.validate().map_err(|e| bad(format!("not a fault: {e}")))?;
            let id = sim.world.faults.add(f);
            Reply::json(201, &json!({"id": id}))
        }
        ("DELETE", ["faults"]) => {
            sim.world.faults.clear();
            Reply::empty(204)
        }
        ("DELETE", ["faults", id]) => {
            let id: u64 = id.parse().map_err(|_| bad("fault ids are numbers"))?;
            let before = sim.world.faults.rules.len();
            sim.world.faults.rules.retain(|f| f.id != id);
            if before == sim.world.faults.rules.len() {
                return Err(Reply::json(
                    404,
                    &json!({"error": format!("no fault {id}")}),
                ));
            }
            Reply::empty(204)
        }
        ("GET", ["journal"]) => {
            let q = |k: &str| req.query(k);
            let since: u64 = q("since").and_then(|s| s.parse().ok()).unwrap_or(0);
            let entries: Vec<&crate::world::JournalEntry> = sim
                .world
                .journal
                .entries
                .iter()
                .filter(|e| e.seq > since)
                .filter(|e| q("api").is_none_or(|v| v == e.api))
                .filter(|e| q("service").is_none_or(|v| v == e.service))
                .filter(|e| q("operation").is_none_or(|v| v == e.operation))
                .filter(|e| {
                    q("org").is_none_or(|v| {
                        e.org.as_deref().is_some_and(|o| o == v || o.starts_with(v))
                    })
                })
                .filter(|e| q("account").is_none_or(|v| e.account.as_deref() == Some(v)))
                .collect();
            Reply::json(
                200,
                &json!({"count": entries.len(), "dropped": sim.world.journal.dropped, "entries": entries}),
            )
        }
        ("DELETE", ["journal"]) => {
            sim.world.journal.entries.clear();
            Reply::empty(204)
        }
        ("GET", ["deliveries"]) => {
            let q = |k: &str| req.query(k);
            let d = &sim.world.deliveries;
            let recent: Vec<&crate::world::Delivery> = d
                .recent
                .iter()
                .filter(|x| q("account").is_none_or(|v| v == x.account))
                .filter(|x| q("bus").is_none_or(|v| v == x.bus))
                .filter(|x| q("rule").is_none_or(|v| v == x.rule))
                .collect();
            Reply::json(
                200,
                &json!({"counters": d.counters, "dropped": d.dropped, "recent": recent}),
            )
        }
        ("POST", ["publish"]) => {
            let b = body(req)?;
            let org = b
                .get("org")
                .and_then(Value::as_str)
                .and_then(|o| org_id(&sim.world, o))
                .ok_or_else(|| bad("`org` must name an org by id or My Domain"))?;
            let event = b
                .get("event")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("`event` is the event's API name"))?
                .to_owned();
            let fields = b.get("fields").cloned().unwrap_or(json!({}));
            let e = sim.world.publish(&org, &event, fields, now);
            Reply::json(201, &json!({"replay_id": e.replay, "uuid": e.uuid}))
        }
        ("POST", ["orgs", org, "refresh-tokens"]) => {
            let b = body(req)?;
            let org = org_id(&sim.world, org).ok_or_else(|| bad("no such org"))?;
            let username = b
                .get("username")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("`username` is required"))?;
            let client_id = b
                .get("client_id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("`client_id` is required"))?;
            let user = sim.world.orgs[&org]
                .users
                .iter()
                .find(|u| u.username == username)
                .map(|u| u.id.clone())
                .ok_or_else(|| bad("no such user"))?;
            crate::salesforce::oauth::issue(
                &mut sim.world,
                &org,
                &user,
                client_id,
                true,
                now,
                &shared.base_url,
            )
        }
        ("POST", ["orgs", org, "relays", relay, "error"]) => {
            let b = body(req)?;
            let org = org_id(&sim.world, org).ok_or_else(|| bad("no such org"))?;
            let code = b
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("sfdc.platform.eventbus.relay.temporarily.unavailable")
                .to_owned();
            let message = b
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("Injected by the simulator's admin API.")
                .to_owned();
            let after = match b.get("recover_after_seconds") {
                None => 60.0,
                Some(v) => v
                    .as_f64()
                    .filter(|s| s.is_finite() && (0.0..=30.0 * 86_400.0).contains(s))
                    .ok_or_else(|| {
                        bad("`recover_after_seconds` is a number of seconds from 0 to 30 days")
                    })?,
            };
            if code.len() > 255 || message.len() > 4000 {
                return Err(bad(
                    "`code` is at most 255 characters and `message` at most 4,000",
                ));
            }
            if !sim.world.inject_relay_error(
                &org,
                relay,
                &code,
                &message,
                now,
                (after * 1000.0) as i64,
            ) {
                return Err(Reply::json(404, &json!({"error": "no such relay"})));
            }
            Reply::json(200, &json!({"status": "ERROR", "code": code}))
        }
        ("POST", ["save"]) => {
            drop(sim);
            shared
                .save()
                .map_err(|e| Reply::json(500, &json!({"error": e.to_string()})))?;
            return Ok(Reply::json(200, &json!({"saved": shared.state_file})));
        }
        _ => Reply::json(
            404,
            &json!({"error": format!("no admin route {method} {}", req.path), "see": "simulator/README.md"}),
        ),
    };
    shared
        .dirty
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(reply)
}
