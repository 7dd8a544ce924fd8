//! Just enough IAM policy evaluation to decide whether EventBridge may forward through a role.

use serde_json::Value;

fn as_list(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(s)) => s.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => Vec::new(),
    }
}

/// IAM's `*` and `?` wildcards, case-insensitive for actions.
fn glob(pattern: &str, s: &str) -> bool {
    crate::glob::matches(pattern.as_bytes(), s.as_bytes(), b'*', Some(b'?'))
}

/// Whether a trust policy lets `service` assume the role.
pub fn trusts_service(trust: &str, service: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(trust) else {
        return false;
    };
    let allows = |effect: &str| {
        statements(&doc).into_iter().any(|s| {
            s.get("Effect").and_then(Value::as_str) == Some(effect)
                && as_list(s.get("Action"))
                    .iter()
                    .any(|a| glob(&a.to_lowercase(), "sts:assumerole"))
                && s.get("Principal")
                    .map(|p| {
                        as_list(p.get("Service")).contains(&service) || p.as_str() == Some("*")
                    })
                    .unwrap_or(false)
        })
    };
    allows("Allow") && !allows("Deny")
}

/// Whether permission policies allow `action` on `resource` (an explicit Deny wins).
pub fn allows<'a>(
    policies: impl IntoIterator<Item = &'a str>,
    action: &str,
    resource: &str,
) -> bool {
    let mut allowed = false;
    for text in policies {
        let Ok(doc) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        for s in statements(&doc) {
            let acts = as_list(s.get("Action"));
            let res = as_list(s.get("Resource"));
            let hit = acts
                .iter()
                .any(|a| glob(&a.to_lowercase(), &action.to_lowercase()))
                && res.iter().any(|r| glob(r, resource));
            match s.get("Effect").and_then(Value::as_str) {
                Some("Deny") if hit => return false,
                Some("Allow") if hit => allowed = true,
                _ => {}
            }
        }
    }
    allowed
}

/// Whether a resource policy (an event bus's) lets `account` do `action` on `resource`: an Allow
/// statement whose principal is `*`, the account id or its root ARN, and no matching Deny. Statements
/// with conditions are not evaluated and so never allow (they might not).
pub fn resource_allows(policy: &str, account: &str, action: &str, resource: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    let root = format!("arn:aws:iam::{account}:root");
    let mut allowed = false;
    for s in statements(&doc) {
        let principal = match s.get("Principal") {
            Some(Value::String(p)) => p == "*",
            Some(p) => as_list(p.get("AWS"))
                .iter()
                .any(|a| *a == "*" || *a == account || *a == root),
            None => false,
        };
        let acts = as_list(s.get("Action"));
        let res = as_list(s.get("Resource"));
        let hit = principal
            && acts
                .iter()
                .any(|a| glob(&a.to_lowercase(), &action.to_lowercase()))
            && (res.is_empty() || res.iter().any(|r| glob(r, resource)));
        match s.get("Effect").and_then(Value::as_str) {
            Some("Deny") if hit => return false,
            Some("Allow") if hit && s.get("Condition").is_none() => allowed = true,
            _ => {}
        }
    }
    allowed
}

/// Whether a resource policy lets the AWS service `service` do `action` on `resource` (a CloudWatch
/// Logs group: `arn` or `arn:*`).
pub fn service_allows(policy: &str, service: &str, action: &str, resource: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    let with_streams = format!("{resource}:*");
    statements(&doc).into_iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && s.get("Principal").is_some_and(|p| {
                p.as_str() == Some("*") || as_list(p.get("Service")).contains(&service)
            })
            && as_list(s.get("Action"))
                .iter()
                .any(|a| glob(&a.to_lowercase(), &action.to_lowercase()))
            && as_list(s.get("Resource"))
                .iter()
                .any(|r| glob(r, resource) || glob(r, &with_streams))
    })
}

/// Whether a policy document is well-formed enough for IAM to accept: JSON with a `Statement`
/// whose entries have an `Effect` of Allow or Deny.
pub fn well_formed(text: &str) -> Result<(), &'static str> {
    let doc: Value = serde_json::from_str(text).map_err(|_| "This policy contains invalid Json")?;
    let st = statements(&doc);
    if st.is_empty() {
        return Err("Syntax errors in policy.");
    }
    if st.iter().any(|s| {
        !matches!(
            s.get("Effect").and_then(Value::as_str),
            Some("Allow" | "Deny")
        )
    }) {
        return Err("Syntax errors in policy.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

    #[test]
    fn bus_policies() {
        let arn = "arn:aws:events:eu-west-1:111122223333:event-bus/orders";
        let p = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"s","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::444455556666:root"}},"Action":"events:PutEvents","Resource":"{arn}"}}]}}"#
        );
        assert!(resource_allows(&p, "444455556666", "events:PutEvents", arn));
        assert!(!resource_allows(
            &p,
            "777788889999",
            "events:PutEvents",
            arn
        ));
        assert!(!resource_allows(&p, "444455556666", "events:PutRule", arn));
        let conditional = p.replace(
            r#""Resource""#,
            r#""Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}},"Resource""#,
        );
        assert!(!resource_allows(
            &conditional,
            "444455556666",
            "events:PutEvents",
            arn
        ));
        assert!(!resource_allows(
            "not json",
            "444455556666",
            "events:PutEvents",
            arn
        ));
    }

    #[test]
    fn trust() {
        assert!(trusts_service(TRUST, "events.amazonaws.com"));
        assert!(!trusts_service(TRUST, "lambda.amazonaws.com"));
        assert!(!trusts_service("not json", "events.amazonaws.com"));
    }

    #[test]
    fn permissions() {
        let p = r#"{"Statement":{"Effect":"Allow","Action":["events:PutEvents"],"Resource":"arn:aws:events:us-east-1:111122223333:event-bus/orders"}}"#;
        assert!(allows(
            [p],
            "events:PutEvents",
            "arn:aws:events:us-east-1:111122223333:event-bus/orders"
        ));
        assert!(!allows(
            [p],
            "events:PutEvents",
            "arn:aws:events:us-east-1:999999999999:event-bus/orders"
        ));
        let star = r#"{"Statement":[{"Effect":"Allow","Action":"events:*","Resource":"*"}]}"#;
        let deny =
            r#"{"Statement":[{"Effect":"Deny","Action":"events:PutEvents","Resource":"*"}]}"#;
        assert!(allows([star], "events:PutEvents", "arn:x"));
        assert!(!allows([star, deny], "events:PutEvents", "arn:x"));
        assert!(well_formed(p).is_ok());
        assert!(well_formed("{}").is_err());
    }
}
