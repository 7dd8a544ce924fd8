//! EventBridge event patterns: validation and matching.
//!
//! Supported: exact values (strings, numbers, booleans, null), nested fields, arrays of alternatives,
//! `prefix`, `suffix`, `equals-ignore-case`, `wildcard`, `anything-but` (a value, a list, or a
//! `prefix`/`suffix`), `numeric` ranges, `exists`, and `$or`. An event field holding an array matches
//! when any element does.

use serde_json::{Map, Value};

/// Parses and checks a pattern; the error reads like EventBridge's `InvalidEventPatternException`.
pub fn parse(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("Event pattern is not valid. Reason: {e}"))?;
    let Value::Object(map) = &v else {
        return Err("Event pattern is not valid. Reason: Filter is not an object".into());
    };
    check_object(map).map_err(|e| format!("Event pattern is not valid. Reason: {e}"))?;
    Ok(v)
}

fn check_object(map: &Map<String, Value>) -> Result<(), String> {
    if map.is_empty() {
        return Err("Empty objects are not allowed".into());
    }
    for (k, v) in map {
        match (k.as_str(), v) {
            ("$or", Value::Array(alts)) if alts.len() >= 2 => {
                for a in alts {
                    match a {
                        Value::Object(m) => check_object(m)?,
                        _ => return Err("$or takes a list of objects".into()),
                    }
                }
            }
            ("$or", _) => return Err("$or takes a list of at least two objects".into()),
            (_, Value::Object(m)) => check_object(m)?,
            (_, Value::Array(items)) => {
                if items.is_empty() {
                    return Err(format!("Empty arrays are not allowed (at \"{k}\")"));
                }
                for item in items {
                    check_matcher(k, item)?;
                }
            }
            _ => {
                return Err(format!(
                    "Match value must be String, number, true, false, or null (at \"{k}\": use a list)"
                ));
            }
        }
    }
    Ok(())
}

fn check_matcher(field: &str, m: &Value) -> Result<(), String> {
    let Value::Object(op) = m else { return Ok(()) };
    let (name, arg) = op.iter().next().ok_or("Empty objects are not allowed")?;
    if op.len() != 1 {
        return Err(format!(
            "Only one key allowed in match expression (at \"{field}\")"
        ));
    }
    let ok = match name.as_str() {
        "prefix" | "suffix" => {
            arg.is_string()
                || matches!(arg, Value::Object(o) if o.get("equals-ignore-case").is_some_and(Value::is_string))
        }
        "equals-ignore-case" | "wildcard" => arg.is_string(),
        "exists" => arg.is_boolean(),
        "anything-but" => match arg {
            Value::String(_) | Value::Number(_) => true,
            Value::Array(a) => !a.is_empty() && a.iter().all(|x| x.is_string() || x.is_number()),
            Value::Object(o) => {
                o.len() == 1
                    && o.values().all(Value::is_string)
                    && o.keys()
                        .all(|k| k == "prefix" || k == "suffix" || k == "equals-ignore-case")
            }
            _ => false,
        },
        "numeric" => check_numeric(arg).is_ok(),
        other => return Err(format!("Unrecognized match type {other} (at \"{field}\")")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("Invalid value for {name} (at \"{field}\")"))
    }
}

fn check_numeric(arg: &Value) -> Result<Vec<(String, f64)>, ()> {
    let Value::Array(items) = arg else {
        return Err(());
    };
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return Err(());
    }
    items
        .chunks(2)
        .map(|c| match (&c[0], &c[1]) {
            (Value::String(op), Value::Number(n))
                if ["<", "<=", "=", ">", ">="].contains(&op.as_str()) =>
            {
                Ok((op.clone(), n.as_f64().ok_or(())?))
            }
            _ => Err(()),
        })
        .collect()
}

/// Whether `event` matches a pattern that [`parse`] accepted.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(map) => map.iter().all(|(k, p)| {
            if k == "$or" {
                return p
                    .as_array()
                    .is_some_and(|alts| alts.iter().any(|a| matches(a, event)));
            }
            let field = event.get(k);
            match p {
                Value::Object(_) => field.is_some_and(|f| matches(p, f)),
                Value::Array(matchers) => matchers.iter().any(|m| leaf(m, field)),
                _ => false,
            }
        }),
        _ => false,
    }
}

fn leaf(m: &Value, field: Option<&Value>) -> bool {
    if let Value::Object(op) = m
        && let Some(Value::Bool(want)) = op.get("exists")
    {
        let present = field.is_some_and(|f| match f {
            Value::Object(_) => false,
            Value::Array(a) => !a.is_empty(),
            _ => true,
        });
        return present == *want;
    }
    match field {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|v| scalar(m, v)),
        Some(v) => scalar(m, v),
    }
}

fn num_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn scalar(m: &Value, v: &Value) -> bool {
    let Value::Object(op) = m else {
        return num_eq(m, v);
    };
    let Some((name, arg)) = op.iter().next() else {
        return false;
    };
    let s = v.as_str();
    match name.as_str() {
        "prefix" => match (arg, s) {
            (Value::String(p), Some(s)) => s.starts_with(p.as_str()),
            (Value::Object(o), Some(s)) => o
                .get("equals-ignore-case")
                .and_then(Value::as_str)
                .is_some_and(|p| s.to_lowercase().starts_with(&p.to_lowercase())),
            _ => false,
        },
        "suffix" => match (arg, s) {
            (Value::String(p), Some(s)) => s.ends_with(p.as_str()),
            (Value::Object(o), Some(s)) => o
                .get("equals-ignore-case")
                .and_then(Value::as_str)
                .is_some_and(|p| s.to_lowercase().ends_with(&p.to_lowercase())),
            _ => false,
        },
        "equals-ignore-case" => {
            matches!((arg.as_str(), s), (Some(a), Some(s)) if a.eq_ignore_ascii_case(s))
        }
        "wildcard" => matches!((arg.as_str(), s), (Some(p), Some(s)) if wildcard(p, s)),
        "anything-but" => match arg {
            Value::Array(items) => !items.iter().any(|x| num_eq(x, v)),
            Value::Object(o) => match (o.iter().next(), s) {
                (Some((k, Value::String(p))), Some(s)) => match k.as_str() {
                    "prefix" => !s.starts_with(p.as_str()),
                    "suffix" => !s.ends_with(p.as_str()),
                    _ => !s.eq_ignore_ascii_case(p),
                },
                _ => false,
            },
            x => !num_eq(x, v),
        },
        "numeric" => match (check_numeric(arg), v.as_f64()) {
            (Ok(conds), Some(n)) => conds.iter().all(|(op, x)| match op.as_str() {
                "<" => n < *x,
                "<=" => n <= *x,
                "=" => n == *x,
                ">" => n > *x,
                _ => n >= *x,
            }),
            _ => false,
        },
        _ => false,
    }
}

/// `*` matches any run of characters.
pub fn wildcard(pattern: &str, s: &str) -> bool {
    crate::glob::matches(pattern.as_bytes(), s.as_bytes(), b'*', None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(p: Value, e: Value) -> bool {
        let p = parse(&p.to_string()).unwrap();
        matches(&p, &e)
    }

    #[test]
    fn relay_pattern() {
        let e = json!({"source": "aws.partner/salesforce.com/00D/0YL", "detail-type": "Order_Placed__e",
                       "detail": {"payload": {"Amount__c": 120.5, "Currency__c": "EUR", "Tags": ["a", "vip"]}}});
        assert!(m(
            json!({"source": [{"prefix": "aws.partner/salesforce.com"}], "detail-type": ["Order_Placed__e"]}),
            e.clone()
        ));
        assert!(!m(json!({"detail-type": ["Order_Shipped__e"]}), e.clone()));
        assert!(m(
            json!({"detail": {"payload": {"Amount__c": [{"numeric": [">", 100, "<=", 200]}]}}}),
            e.clone()
        ));
        assert!(!m(
            json!({"detail": {"payload": {"Amount__c": [{"numeric": ["<", 100]}]}}}),
            e.clone()
        ));
        assert!(m(
            json!({"detail": {"payload": {"Currency__c": [{"anything-but": ["USD", "GBP"]}]}}}),
            e.clone()
        ));
        assert!(!m(
            json!({"detail": {"payload": {"Currency__c": [{"anything-but": "EUR"}]}}}),
            e.clone()
        ));
        assert!(m(
            json!({"detail": {"payload": {"Missing": [{"exists": false}], "Currency__c": [{"exists": true}]}}}),
            e.clone()
        ));
        assert!(m(
            json!({"detail": {"payload": {"Tags": ["vip"]}}}),
            e.clone()
        ));
        assert!(m(
            json!({"detail-type": [{"suffix": "__e"}], "source": [{"wildcard": "aws.partner/*/00D/*"}]}),
            e.clone()
        ));
        assert!(m(
            json!({"$or": [{"detail-type": ["X"]}, {"detail": {"payload": {"Currency__c": [{"equals-ignore-case": "eur"}]}}}]}),
            e.clone()
        ));
    }

    #[test]
    fn invalid_patterns() {
        for p in [
            "[]",
            "{}",
            "{\"a\": \"b\"}",
            "{\"a\": []}",
            "{\"a\": [{\"nope\": 1}]}",
            "{\"a\": [{\"numeric\": [\">\"]}]}",
            "not json",
        ] {
            assert!(parse(p).is_err(), "{p}");
        }
    }
}
