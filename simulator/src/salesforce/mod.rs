//! The Salesforce half: OAuth, the REST data API and the Tooling API for Event Relays.
//!
//! Each org is reachable at its instance URL `<base>/sf/<my domain>`, and every org at `<base>`
//! itself, where the access token tells which org is meant. Errors are arrays of
//! `{"message","errorCode","fields"}`; OAuth errors are `{"error","error_description"}`.

pub mod data;
pub mod oauth;
pub mod soql;
pub mod tooling;

use crate::clock::Millis;
use crate::reply::{Reply, Request};
use crate::world::World;
use serde_json::{Value, json};

/// The lowest and highest API versions served.
pub const MIN_VERSION: u32 = 20;
pub const MAX_VERSION: u32 = 66;

/// A Salesforce API error.
#[derive(Debug, Clone, PartialEq)]
pub struct SfError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl SfError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        SfError {
            status,
            code: code.into(),
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn fields(mut self, fields: &[&str]) -> Self {
        self.fields = fields.iter().map(|f| (*f).to_owned()).collect();
        self
    }

    pub fn not_found() -> Self {
        SfError::new(404, "NOT_FOUND", "The requested resource does not exist")
    }

    pub fn reply(&self) -> Reply {
        let mut e = json!({"message": self.message, "errorCode": self.code});
        if !self.fields.is_empty() {
            e["fields"] = json!(self.fields);
        }
        Reply::json(self.status, &json!([e]))
    }
}

/// Where a request goes, worked out before it is handled (for the journal and for faults).
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// `oauth`, `identity`, `data` or `tooling`.
    pub service: &'static str,
    pub operation: String,
    pub object: Option<String>,
    /// The org id, when the path or the token names one.
    pub org: Option<String>,
    /// The path prefix of the org's instance URL (`/sf/demo`), or empty.
    pub prefix: String,
    /// The API version (`59.0`), for data and tooling calls.
    pub version: Option<String>,
    /// Path segments after `/services/data/vXX.X/` (or after `/services/oauth2/`).
    pub rest: Vec<String>,
}

fn bearer(req: &Request) -> Option<&str> {
    req.header("authorization")?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The org an access token belongs to: tokens start with the 15-character org id.
fn token_org(world: &World, token: &str) -> Option<String> {
    let prefix = token.split('!').next()?;
    world
        .orgs
        .keys()
        .find(|id| id.starts_with(prefix) && prefix.len() == 15)
        .cloned()
}

pub fn route(world: &World, req: &Request) -> Route {
    let path = req.path.trim_end_matches('/');
    let mut segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut r = Route {
        service: "data",
        operation: "unknown".into(),
        ..Route::default()
    };
    if segs.first().map(String::as_str) == Some("sf") && segs.len() >= 2 {
        let domain = segs[1].clone();
        r.prefix = format!("/sf/{domain}");
        r.org = world.org_by_domain(&domain).map(|o| o.id.clone());
        segs.drain(..2);
    }
    if r.org.is_none() {
        r.org = bearer(req).and_then(|t| token_org(world, t));
    }
    let method = req.method.as_str();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["services", "oauth2", rest @ ..] => {
            r.service = "oauth";
            r.operation = format!("oauth.{}", rest.join("."));
        }
        ["id", ..] => {
            r.service = "identity";
            r.operation = "identity".into();
        }
        ["services", "data"] => r.operation = "versions".into(),
        ["services", "data", v, rest @ ..] => {
            r.version = v.strip_prefix('v').map(str::to_owned);
            r.rest = rest.iter().map(|x| (*x).to_owned()).collect();
            let (service, op, object) = match (method, rest) {
                (_, []) => ("data", "resources", None),
                ("POST", ["tooling", "sobjects", t]) => ("tooling", "tooling.create", Some(*t)),
                ("GET", ["tooling", "sobjects", t, _]) => ("tooling", "tooling.get", Some(*t)),
                ("PATCH", ["tooling", "sobjects", t, _]) => ("tooling", "tooling.update", Some(*t)),
                ("DELETE", ["tooling", "sobjects", t, _]) => {
                    ("tooling", "tooling.delete", Some(*t))
                }
                ("GET", ["tooling", "query", ..]) => ("tooling", "tooling.query", None),
                ("GET", ["query", ..]) => ("data", "query", None),
                ("POST", ["sobjects", t]) if t.ends_with("__e") => {
                    ("data", "event.publish", Some(*t))
                }
                ("POST", ["sobjects", t]) => ("data", "sobject.create", Some(*t)),
                ("GET", ["sobjects", t, _]) => ("data", "sobject.get", Some(*t)),
                ("PATCH", ["sobjects", t, _]) => ("data", "sobject.update", Some(*t)),
                ("DELETE", ["sobjects", t, _]) => ("data", "sobject.delete", Some(*t)),
                ("GET", ["limits"]) => ("data", "limits", None),
                (_, ["tooling", ..]) => ("tooling", "unknown", None),
                _ => ("data", "unknown", None),
            };
            r.service = service;
            r.operation = op.into();
            r.object = object.map(str::to_owned);
        }
        _ => {}
    }
    r
}

/// Context of an authenticated call.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub org: String,
    pub user: String,
    pub now: Millis,
    pub base_url: String,
    pub prefix: String,
    pub version: String,
}

impl Ctx {
    /// The path of the data API at this version, as it appears in `url` attributes.
    pub fn data_path(&self) -> String {
        format!("/services/data/v{}", self.version)
    }
}

pub fn handle(
    world: &mut World,
    req: &Request,
    route: &Route,
    now: Millis,
    base_url: &str,
) -> Reply {
    match route.service {
        "oauth" => return oauth::handle(world, req, route, now, base_url),
        "identity" => return oauth::identity(world, req, route, now, base_url),
        _ => {}
    }
    if route.operation == "versions" {
        return Reply::json(200, &versions());
    }
    let version = match route.version.as_deref() {
        Some(v) if supported(v) => v.to_owned(),
        _ => return SfError::not_found().reply(),
    };
    let ctx = match authenticate(world, req, route, now, base_url, &version) {
        Ok(c) => c,
        Err(e) => return e.reply(),
    };
    let org = world.orgs.get_mut(&ctx.org).expect("authenticated org");
    org.api_used += 1;
    if org.api_used > org.api_limit {
        return SfError::new(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
        .reply();
    }
    let usage = format!("api-usage={}/{}", org.api_used, org.api_limit);
    let result = match route.service {
        "tooling" => tooling::handle(world, &ctx, req, route),
        _ => data::handle(world, &ctx, req, route),
    };
    match result {
        Ok(r) => r,
        Err(e) => e.reply(),
    }
    .header("Sforce-Limit-Info", usage)
}

fn supported(v: &str) -> bool {
    match v.split_once('.') {
        Some((major, "0")) => major
            .parse::<u32>()
            .is_ok_and(|m| (MIN_VERSION..=MAX_VERSION).contains(&m)),
        _ => false,
    }
}

/// `GET /services/data/`: every version served, with its release label.
pub fn versions() -> Value {
    let seasons = ["Winter", "Spring", "Summer"];
    let list: Vec<Value> = (MIN_VERSION..=MAX_VERSION)
        .map(|v| {
            // v20.0 = Winter '11, three releases a year.
            let n = v - 20;
            let (season, year) = (seasons[(n % 3) as usize], 11 + n / 3);
            json!({"label": format!("{season} '{year:02}"), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0")})
        })
        .collect();
    Value::Array(list)
}

fn authenticate(
    world: &World,
    req: &Request,
    route: &Route,
    now: Millis,
    base_url: &str,
    version: &str,
) -> Result<Ctx, SfError> {
    let invalid = || SfError::new(401, "INVALID_SESSION_ID", "Session expired or invalid");
    let token = bearer(req).ok_or_else(invalid)?;
    let org_id = token_org(world, token).ok_or_else(invalid)?;
    if route.org.as_deref().is_some_and(|o| o != org_id) {
        return Err(invalid());
    }
    let org = &world.orgs[&org_id];
    let t = org.tokens.get(token).ok_or_else(invalid)?;
    if t.expires <= now {
        return Err(invalid());
    }
    Ok(Ctx {
        org: org_id,
        user: t.user_id.clone(),
        now,
        base_url: base_url.to_owned(),
        prefix: route.prefix.clone(),
        version: version.to_owned(),
    })
}

/// Parses a JSON request body, or says why not as Salesforce does.
pub fn json_body(req: &Request) -> Result<serde_json::Map<String, Value>, SfError> {
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(SfError::new(
            400,
            "JSON_PARSER_ERROR",
            "The request body must be a JSON object.",
        )),
        Err(e) => Err(SfError::new(
            400,
            "JSON_PARSER_ERROR",
            format!("Unexpected character or end of input in the JSON body: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_labels() {
        let v = versions();
        let find = |n: &str| {
            v.as_array()
                .unwrap()
                .iter()
                .find(|x| x["version"] == n)
                .unwrap()["label"]
                .clone()
        };
        assert_eq!(find("20.0"), "Winter '11");
        assert_eq!(find("59.0"), "Winter '24");
        assert_eq!(find("60.0"), "Spring '24");
        assert_eq!(find("61.0"), "Summer '24");
        assert!(supported("59.0"));
        assert!(!supported("59.5"));
        assert!(!supported("99.0"));
    }
}
