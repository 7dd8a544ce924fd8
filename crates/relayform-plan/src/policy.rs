//! IAM policy documents: what relayform wants them to say, and whether two of them mean the same.
//!
//! IAM hands policies back percent-encoded and in whatever shape they were written: one statement or a
//! list, `"Action": "x"` or `["x"]`, statements and list items in any order. Comparing text would show a
//! change where there is none, so documents are compared by meaning: decoded, parsed, and normalized.

use serde_json::{Map, Value, json};

pub const EVENTS_PRINCIPAL: &str = "events.amazonaws.com";

/// The trust policy of a forwarding role: EventBridge may assume it, and only on behalf of rules in
/// `account` (the confused-deputy guard: `aws:SourceAccount`, and `aws:SourceArn` for that account's
/// rules in `region`).
pub fn forwarding_trust(partition: &str, region: &str, account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": EVENTS_PRINCIPAL},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": format!("arn:{partition}:events:{region}:{account}:rule/*")},
            },
        }],
    })
}

/// The permission policy of a forwarding role: `events:PutEvents` on exactly the destination bus.
pub fn forwarding_permission(destination_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": destination_arn}],
    })
}

/// Decodes a document as IAM returns it (percent-encoded) or as written (plain JSON).
pub fn decode(raw: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str(raw) {
        return Some(v);
    }
    serde_json::from_str(&percent_decode(raw)?).ok()
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Keys whose value IAM treats as a set: a single value means the same as a list of it, and order and
/// repetition do not matter.
const SET_KEYS: &[&str] = &[
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "AWS",
    "Service",
    "Federated",
    "CanonicalUser",
];

/// A document in one canonical form: `Statement` always a list, sorted; set-valued keys always sorted,
/// deduplicated lists; condition values likewise; the default `Version` made explicit.
pub fn normalize(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Some(map) = doc.as_object_mut() {
        map.entry("Version").or_insert_with(|| json!("2008-10-17"));
        let statements = match map.remove("Statement") {
            Some(Value::Array(s)) => s,
            Some(other) => vec![other],
            None => Vec::new(),
        };
        let mut statements: Vec<Value> = statements.iter().map(normalize_statement).collect();
        statements.sort_by_key(|s| s.to_string());
        statements.dedup();
        map.insert("Statement".into(), Value::Array(statements));
    }
    doc
}

fn set(v: &Value) -> Value {
    let mut items: Vec<Value> = match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    items.sort_by_key(|x| x.to_string());
    items.dedup();
    Value::Array(items)
}

fn normalize_statement(s: &Value) -> Value {
    let Some(map) = s.as_object() else {
        return s.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        let v = match (k.as_str(), v) {
            (k, v) if SET_KEYS.contains(&k) => set(v),
            ("Principal" | "NotPrincipal", Value::Object(p)) => Value::Object(
                p.iter()
                    .map(|(pk, pv)| {
                        (
                            pk.clone(),
                            if SET_KEYS.contains(&pk.as_str()) {
                                set(pv)
                            } else {
                                pv.clone()
                            },
                        )
                    })
                    .collect(),
            ),
            // "Principal": "*" means the same as {"AWS": "*"}.
            ("Principal" | "NotPrincipal", Value::String(star)) if star == "*" => {
                json!({"AWS": ["*"]})
            }
            ("Condition", Value::Object(ops)) => Value::Object(
                ops.iter()
                    .map(|(op, keys)| {
                        let keys = match keys {
                            Value::Object(k) => Value::Object(
                                k.iter().map(|(ck, cv)| (ck.clone(), set(cv))).collect(),
                            ),
                            other => other.clone(),
                        };
                        (op.clone(), keys)
                    })
                    .collect(),
            ),
            // The statement id is a label, not meaning.
            ("Sid", _) => continue,
            (_, v) => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// Whether two documents (raw or parsed) grant the same.
pub fn same(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

/// The statement a destination bus's resource policy needs so that forwarding rules in `sender` may
/// put events on it from another account or region: what `PutPermission` with `Action
/// events:PutEvents`, `Principal <sender>` and `StatementId <sid>` writes.
pub fn bus_statement(sender: &str, bus_arn: &str, sid: &str) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{sender}:root")},
        "Action": "events:PutEvents",
        "Resource": bus_arn,
    })
}

/// Whether a bus's resource policy holds the statement `sid` granting `sender` `events:PutEvents`
/// on the bus (as [`bus_statement`] writes it, in whatever form AWS returns it).
pub fn bus_policy_has(policy: &str, sid: &str, sender: &str, bus_arn: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(s)) => s.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => return false,
    };
    let list = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    };
    let root = format!("arn:aws:iam::{sender}:root");
    statements.iter().any(|s| {
        s.get("Sid").and_then(Value::as_str) == Some(sid)
            && s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && s.get("Condition").is_none()
            && list(s.get("Principal").and_then(|p| p.get("AWS")))
                .iter()
                .any(|p| *p == root || p == sender)
            && list(s.get("Action"))
                .iter()
                .any(|a| a == "events:PutEvents")
            && list(s.get("Resource")).iter().any(|r| r == bus_arn)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoded_documents_decode() {
        let raw = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            decode(raw),
            Some(json!({"Version": "2012-10-17", "Statement": []}))
        );
        assert_eq!(
            decode("{\"Statement\": []}"),
            Some(json!({"Statement": []}))
        );
        assert_eq!(decode("%7Bbroken"), None);
        assert_eq!(decode("%ZZ"), None);
    }

    #[test]
    fn same_meaning_in_other_words() {
        let ours = forwarding_permission("arn:aws:events:eu-west-1:123456789012:event-bus/orders");
        let theirs = json!({
            "Version": "2012-10-17",
            "Statement": {"Sid": "Forward", "Effect": "Allow", "Action": ["events:PutEvents", "events:PutEvents"], "Resource": ["arn:aws:events:eu-west-1:123456789012:event-bus/orders"]},
        });
        assert!(same(&ours, &theirs));
        let two = |a: &str, b: &str| {
            json!({"Statement": [
                {"Effect": "Allow", "Action": a, "Resource": "*"},
                {"Effect": "Deny", "Action": b, "Resource": "*"},
            ]})
        };
        assert!(same(
            &two("x", "y"),
            &json!({"Statement": [
                {"Effect": "Deny", "Action": ["y"], "Resource": ["*"]},
                {"Effect": "Allow", "Action": "x", "Resource": "*"},
            ]})
        ));
        let trust = forwarding_trust("aws", "eu-west-1", "123456789012");
        let mut reordered = trust.clone();
        reordered["Statement"][0]["Principal"]["Service"] = json!([EVENTS_PRINCIPAL]);
        reordered["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"] =
            json!(["123456789012"]);
        assert!(same(&trust, &reordered));
    }

    #[test]
    fn a_different_grant_is_a_change() {
        let ours = forwarding_permission("arn:aws:events:eu-west-1:123456789012:event-bus/orders");
        assert!(!same(
            &ours,
            &forwarding_permission("arn:aws:events:eu-west-1:999999999999:event-bus/orders")
        ));
        let mut wider = ours.clone();
        wider["Statement"][0]["Action"] = json!("events:*");
        assert!(!same(&ours, &wider));
        let mut no_guard = forwarding_trust("aws", "eu-west-1", "123456789012");
        no_guard["Statement"][0]
            .as_object_mut()
            .unwrap()
            .remove("Condition");
        assert!(!same(
            &forwarding_trust("aws", "eu-west-1", "123456789012"),
            &no_guard
        ));
    }
}
