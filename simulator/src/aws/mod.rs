//! The AWS half: IAM and STS (awsQuery, XML) and EventBridge (awsJson 1.1) on one endpoint.
//!
//! A request must carry a SigV4 `Authorization` header. Its credential scope picks the account (by
//! access key: a configured key, or a 12-digit key naming a known account) and the region; the
//! signature itself is not verified. EventBridge requests are recognised by `X-Amz-Target:
//! AWSEvents.*`, IAM and STS by their form body's `Action` and `Version` (or the scope's service).

pub mod events;
pub mod iam;
pub mod logs;
pub mod pattern;
pub mod policy;
pub mod regions;
pub mod sts;
mod xml;

use crate::clock::Millis;
use crate::reply::{Reply, Request};
use crate::world::World;

/// Who is calling and where.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub account: String,
    pub region: String,
    pub access_key: String,
    pub now: Millis,
    pub request_id: String,
}

/// An AWS error: HTTP status, code (`ResourceNotFoundException`, `NoSuchEntity`, ...), message.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        AwsError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Which AWS service a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Events,
    Iam,
    Sts,
    Logs,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Events => "events",
            Service::Iam => "iam",
            Service::Sts => "sts",
            Service::Logs => "logs",
        }
    }
}

/// What the journal and fault injection need to know before the call is handled.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub service: Service,
    pub operation: String,
    pub access_key: Option<String>,
    pub region: Option<String>,
    pub form: Vec<(String, String)>,
}

/// The credential scope of a SigV4 header: (access key, region, service).
fn credential_scope(auth: &str) -> Option<(String, String, String)> {
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let cred = rest
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("Credential="))?;
    let parts: Vec<&str> = cred.split('/').collect();
    match parts[..] {
        [key, _date, region, service, "aws4_request"] if !key.is_empty() => {
            Some((key.to_owned(), region.to_owned(), service.to_owned()))
        }
        _ => None,
    }
}

/// Works out the service and operation of a request.
pub fn parse(req: &Request) -> Parsed {
    let scope = req.header("authorization").and_then(credential_scope);
    let (access_key, region, scope_service) = match scope {
        Some((k, r, s)) => (Some(k), Some(r), Some(s)),
        None => (None, None, None),
    };
    if let Some(op) = req
        .header("x-amz-target")
        .and_then(|t| t.strip_prefix("AWSEvents."))
    {
        return Parsed {
            service: Service::Events,
            operation: op.to_owned(),
            access_key,
            region,
            form: Vec::new(),
        };
    }
    if let Some(op) = req
        .header("x-amz-target")
        .and_then(|t| t.strip_prefix("Logs_20140328."))
    {
        return Parsed {
            service: Service::Logs,
            operation: op.to_owned(),
            access_key,
            region,
            form: Vec::new(),
        };
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let service = match (get("Version").as_deref(), scope_service.as_deref()) {
        (Some("2011-06-15"), _) | (None, Some("sts")) => Service::Sts,
        (Some("2010-05-08"), _) | (None, Some("iam")) => Service::Iam,
        (_, Some("events")) => Service::Events,
        (_, Some("sts")) => Service::Sts,
        _ => Service::Iam,
    };
    Parsed {
        service,
        operation: get("Action").unwrap_or_default(),
        access_key,
        region,
        form,
    }
}

/// Handles one AWS request against the world.
pub fn handle(world: &mut World, req: &Request, parsed: &Parsed, now: Millis) -> Reply {
    let request_id = crate::ids::uuid(&mut world.rng);
    let result =
        authenticate(world, parsed, now, &request_id).and_then(|ctx| match parsed.service {
            Service::Events => events::handle(world, &ctx, &parsed.operation, &req.body),
            Service::Iam => iam::handle(world, &ctx, &parsed.operation, &parsed.form),
            Service::Sts => sts::handle(world, &ctx, &parsed.operation, &parsed.form),
            Service::Logs => logs::handle(world, &ctx, &parsed.operation, &req.body),
        });
    match result {
        Ok(reply) => reply.header("x-amzn-RequestId", request_id),
        Err(e) => error_reply(parsed.service, &e, &request_id),
    }
}

fn authenticate(
    world: &World,
    parsed: &Parsed,
    now: Millis,
    request_id: &str,
) -> Result<Ctx, AwsError> {
    let (Some(key), Some(region)) = (&parsed.access_key, &parsed.region) else {
        return Err(AwsError::new(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token: requests must be signed with AWS Signature Version 4.",
        ));
    };
    // IAM is global and signed for us-east-1 whatever the client's region; every other service
    // serves the regions AWS has, and nothing else grows the world.
    if !regions::known(region) {
        let shown: String = region.chars().take(40).collect();
        let (status, code) = match parsed.service {
            Service::Events | Service::Logs => (400, "InvalidSignatureException"),
            _ => (403, "SignatureDoesNotMatch"),
        };
        return Err(AwsError::new(
            status,
            code,
            format!("Credential should be scoped to a valid region, not '{shown}'. "),
        ));
    }
    let Some(account) = world.account_for_key(key) else {
        let code = match parsed.service {
            Service::Events | Service::Logs => "UnrecognizedClientException",
            _ => "InvalidClientTokenId",
        };
        return Err(AwsError::new(
            403,
            code,
            "The security token included in the request is invalid.",
        ));
    };
    Ok(Ctx {
        account,
        region: region.clone(),
        access_key: key.clone(),
        now,
        request_id: request_id.to_owned(),
    })
}

/// The error as the service's protocol sends it.
pub fn error_reply(service: Service, e: &AwsError, request_id: &str) -> Reply {
    match service {
        Service::Events | Service::Logs => {
            let code = if e.code == "MissingAuthenticationTokenException" {
                "MissingAuthenticationTokenException"
            } else {
                &e.code
            };
            Reply::new(
                e.status,
                "application/x-amz-json-1.1",
                serde_json::json!({"__type": code, "message": e.message}).to_string(),
            )
            .header("x-amzn-ErrorType", code)
            .header("x-amzn-RequestId", request_id)
        }
        Service::Iam | Service::Sts => {
            let ns = if service == Service::Iam {
                iam::NAMESPACE
            } else {
                sts::NAMESPACE
            };
            let code = e.code.trim_end_matches("Exception");
            let kind = if e.status >= 500 {
                "Receiver"
            } else {
                "Sender"
            };
            let body = format!(
                "<ErrorResponse xmlns=\"{ns}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                xml::escape(code),
                xml::escape(&e.message)
            );
            Reply::new(e.status, "text/xml", body).header("x-amzn-RequestId", request_id)
        }
    }
}

/// Throttling as the service sends it, with a retry hint in milliseconds.
pub fn throttled(service: Service, retry_after_ms: u64, request_id: &str) -> Reply {
    over_rate(service, request_id).header("x-amz-retry-after", retry_after_ms.to_string())
}

/// Throttling as the service sends it when a request-rate quota is exceeded: no retry hint (the
/// services document none for their quotas), so a client backs off as its retry strategy says.
pub fn over_rate(service: Service, request_id: &str) -> Reply {
    let e = match service {
        Service::Events | Service::Logs => {
            AwsError::new(400, "ThrottlingException", "Rate exceeded")
        }
        _ => AwsError::new(400, "Throttling", "Rate exceeded"),
    };
    error_reply(service, &e, request_id)
}

/// A request body over the simulator's limit, in the shape of the service the headers name (the
/// body itself was not read): awsJson for EventBridge and CloudWatch Logs, XML for IAM and STS.
pub fn too_large(req_headers: &[(String, String)], limit: usize) -> Reply {
    let header = |k: &str| {
        req_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    let service = match header("x-amz-target") {
        Some(t) if t.starts_with("Logs_") => Service::Logs,
        Some(_) => Service::Events,
        None => match header("authorization").and_then(credential_scope) {
            Some((_, _, s)) if s == "sts" => Service::Sts,
            _ => Service::Iam,
        },
    };
    error_reply(
        service,
        &AwsError::new(
            413,
            "RequestEntityTooLargeException",
            format!("Request size exceeded the limit of {limit} bytes."),
        ),
        "too-large",
    )
}

/// The JSON object an awsJson 1.1 request carries (`{}` when empty).
pub fn json_input(body: &[u8]) -> Result<serde_json::Value, AwsError> {
    let input: serde_json::Value = if body.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| {
            AwsError::new(
                400,
                "SerializationException",
                format!("Could not parse the request body as JSON: {e}"),
            )
        })?
    };
    if !input.is_object() {
        return Err(AwsError::new(
            400,
            "SerializationException",
            "The request body must be a JSON object.",
        ));
    }
    Ok(input)
}

/// An awsJson 1.1 success.
pub fn json_reply(out: &serde_json::Value) -> Reply {
    Reply::new(200, "application/x-amz-json-1.1", out.to_string())
}

/// A well-formed refusal of an operation the simulator does not serve (never a 500).
pub fn unknown_operation(op: &str) -> AwsError {
    AwsError::new(
        400,
        "UnknownOperationException",
        format!("Operation {op} is not supported by the simulator."),
    )
}

/// `1 validation error detected: ...` as AWS words it.
pub fn validation(code: &str, value: &str, member: &str, constraint: &str) -> AwsError {
    AwsError::new(
        400,
        code,
        format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
        ),
    )
}

/// AWS's rule for a tag, IAM's and EventBridge's alike: a key of 1 to 128 characters and a value of
/// at most 256, both of letters, digits, spaces and `_ . : / = + - @`; keys beginning `aws:` are
/// AWS's own. Returns the member at fault (`tags.N.member.key`) and the constraint broken.
pub fn tag_problem(n: usize, key: &str, value: &str) -> Option<(String, String, &'static str)> {
    let allowed = |s: &str| {
        s.chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
    };
    const PATTERN: &str =
        "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*";
    let k = key.chars().count();
    if k == 0 || k > 128 {
        return Some((
            format!("tags.{n}.member.key"),
            key.to_owned(),
            "Member must have length between 1 and 128",
        ));
    }
    if !allowed(key) {
        return Some((format!("tags.{n}.member.key"), key.to_owned(), PATTERN));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Some((
            format!("tags.{n}.member.key"),
            key.to_owned(),
            "Member must not begin with the reserved prefix aws:",
        ));
    }
    if value.chars().count() > 256 {
        return Some((
            format!("tags.{n}.member.value"),
            value.to_owned(),
            "Member must have length less than or equal to 256",
        ));
    }
    if !allowed(value) {
        return Some((format!("tags.{n}.member.value"), value.to_owned(), PATTERN));
    }
    None
}

/// Checks tags as `tag_problem` does, with the error code of the service.
pub fn check_tags<'a>(
    code: &str,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), AwsError> {
    for (i, (k, v)) in tags.into_iter().enumerate() {
        if let Some((member, value, constraint)) = tag_problem(i + 1, k, v) {
            let shown: String = value.chars().take(64).collect();
            return Err(validation(code, &shown, &member, constraint));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_aws_s_pattern() {
        assert!(tag_problem(1, "managed-by", "relayform").is_none());
        assert!(
            tag_problem(
                1,
                "relayform:destination",
                "arn:aws:events:eu-west-1:1:event-bus/x"
            )
            .is_none()
        );
        assert!(tag_problem(1, "", "x").is_some());
        assert!(tag_problem(1, "aws:cloudformation", "x").is_some());
        assert!(tag_problem(1, "k", "semi;colon").is_some());
        assert!(tag_problem(1, "k", &"v".repeat(257)).is_some());
        assert!(tag_problem(1, &"k".repeat(129), "v").is_some());
    }

    #[test]
    fn scopes() {
        let h = "AWS4-HMAC-SHA256 Credential=AKID/20261128/eu-west-1/events/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(
            credential_scope(h),
            Some(("AKID".into(), "eu-west-1".into(), "events".into()))
        );
        assert_eq!(credential_scope("Bearer x"), None);
        assert_eq!(credential_scope("AWS4-HMAC-SHA256 Credential=/x/y"), None);
    }
}
