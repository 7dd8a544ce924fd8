//! The naming and format rules of Salesforce and AWS, as pure functions.
//!
//! Each check returns `Err(reason)` with a sentence fragment that completes "... is not valid: ",
//! so callers can say which value broke which rule.

/// AWS regions by partition, from botocore 1.44.8 `data/partitions.json` (pseudo-regions such as
/// `aws-global` left out). Keep in step with the SDK when it gains regions.
pub const REGIONS: &[(&str, &str)] = &[
    ("af-south-1", "aws"),
    ("ap-east-1", "aws"),
    ("ap-east-2", "aws"),
    ("ap-northeast-1", "aws"),
    ("ap-northeast-2", "aws"),
    ("ap-northeast-3", "aws"),
    ("ap-south-1", "aws"),
    ("ap-south-2", "aws"),
    ("ap-southeast-1", "aws"),
    ("ap-southeast-2", "aws"),
    ("ap-southeast-3", "aws"),
    ("ap-southeast-4", "aws"),
    ("ap-southeast-5", "aws"),
    ("ap-southeast-6", "aws"),
    ("ap-southeast-7", "aws"),
    ("ca-central-1", "aws"),
    ("ca-west-1", "aws"),
    ("eu-central-1", "aws"),
    ("eu-central-2", "aws"),
    ("eu-north-1", "aws"),
    ("eu-south-1", "aws"),
    ("eu-south-2", "aws"),
    ("eu-west-1", "aws"),
    ("eu-west-2", "aws"),
    ("eu-west-3", "aws"),
    ("il-central-1", "aws"),
    ("me-central-1", "aws"),
    ("me-south-1", "aws"),
    ("me-west-1", "aws"),
    ("mx-central-1", "aws"),
    ("sa-east-1", "aws"),
    ("sa-west-1", "aws"),
    ("us-east-1", "aws"),
    ("us-east-2", "aws"),
    ("us-west-1", "aws"),
    ("us-west-2", "aws"),
    ("cn-north-1", "aws-cn"),
    ("cn-northwest-1", "aws-cn"),
    ("eusc-de-east-1", "aws-eusc"),
    ("us-iso-east-1", "aws-iso"),
    ("us-iso-west-1", "aws-iso"),
    ("us-isob-east-1", "aws-iso-b"),
    ("us-isob-west-1", "aws-iso-b"),
    ("eu-isoe-west-1", "aws-iso-e"),
    ("us-isof-east-1", "aws-iso-f"),
    ("us-isof-south-1", "aws-iso-f"),
    ("us-gov-east-1", "aws-us-gov"),
    ("us-gov-west-1", "aws-us-gov"),
];

/// The partition (`aws`, `aws-cn`, ...) of a known region.
pub fn partition(region: &str) -> Option<&'static str> {
    REGIONS.iter().find(|(r, _)| *r == region).map(|(_, p)| *p)
}

/// Names of relayform's own objects in a spec (orgs, accounts, relays): short, predictable, and usable
/// as the base of derived Salesforce and IAM names.
pub fn spec_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("it is empty".into()),
        Some(c) if !c.is_ascii_alphabetic() => return Err("it must start with a letter".into()),
        _ => {}
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Err(format!(
            "`{c}` is not allowed (letters, digits, `_` and `-` only)"
        ));
    }
    if name.len() > 64 {
        return Err(format!("it is {} characters long (64 at most)", name.len()));
    }
    Ok(())
}

/// Salesforce API names (`DeveloperName`): letters, digits and underscores, starting with a letter,
/// no `__`, no trailing `_`, at most `max` characters.
pub fn api_name(name: &str, max: usize) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("it is empty".into()),
        Some(c) if !c.is_ascii_alphabetic() => return Err("it must start with a letter".into()),
        _ => {}
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(format!(
            "`{c}` is not allowed (letters, digits and `_` only)"
        ));
    }
    if name.contains("__") {
        return Err("it contains `__` (two underscores in a row)".into());
    }
    if name.ends_with('_') {
        return Err("it ends with `_`".into());
    }
    if name.len() > max {
        return Err(format!(
            "it is {} characters long ({max} at most)",
            name.len()
        ));
    }
    Ok(())
}

/// Kinds of event a relay can carry; one channel carries one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A custom platform event, `Name__e` (or `ns__Name__e`).
    Platform,
    /// A change event, `AccountChangeEvent` or `Custom__ChangeEvent` (or `ns__Custom__ChangeEvent`).
    Change,
}

/// Classifies an event name, or says why it is not one.
pub fn event_name(name: &str) -> Result<EventKind, String> {
    let (kind, base) = if let Some(base) = name.strip_suffix("__e") {
        (EventKind::Platform, base)
    } else if let Some(base) = name.strip_suffix("__ChangeEvent") {
        (EventKind::Change, base)
    } else if let Some(base) = name.strip_suffix("ChangeEvent") {
        // Standard objects: AccountChangeEvent, OpportunityChangeEvent, ...
        if base.is_empty() || base.ends_with('_') {
            return Err(
                "a standard change event is `<Object>ChangeEvent`, e.g. `AccountChangeEvent`"
                    .into(),
            );
        }
        api_name(base, 40).map_err(|e| format!("its object name `{base}` is not valid: {e}"))?;
        return Ok(EventKind::Change);
    } else {
        return Err(
            "platform events end in `__e` (`Order_Placed__e`), change events in `ChangeEvent` (`AccountChangeEvent`, `Invoice__ChangeEvent`)"
                .into(),
        );
    };
    // An optional namespace prefix: ns__Name.
    let base = match base.split_once("__") {
        Some((ns, rest)) => {
            api_name(ns, 15).map_err(|e| format!("its namespace `{ns}` is not valid: {e}"))?;
            rest
        }
        None => base,
    };
    api_name(base, 40).map_err(|e| format!("its name `{base}` is not valid: {e}"))?;
    Ok(kind)
}

/// A 12-digit AWS account id.
pub fn account_id(id: &str) -> Result<(), String> {
    if !id.chars().all(|c| c.is_ascii_digit()) {
        return Err("an AWS account id has digits only".into());
    }
    if id.len() != 12 {
        return Err(format!(
            "an AWS account id has 12 digits, this one has {}",
            id.len()
        ));
    }
    Ok(())
}

/// A Salesforce org id: `00D` + 12 characters, or the 18-character form whose last three characters
/// are the case checksum of the first fifteen.
pub fn org_id(id: &str) -> Result<(), String> {
    if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("an org id has letters and digits only".into());
    }
    if id.len() != 15 && id.len() != 18 {
        return Err(format!(
            "an org id has 15 or 18 characters, this one has {}",
            id.len()
        ));
    }
    if !id.starts_with("00D") {
        return Err("an org id starts with `00D`".into());
    }
    if id.len() == 18 {
        let expected = id18(&id[..15]);
        if expected != id {
            return Err(format!(
                "its checksum is wrong: the 18-character form of `{}` is `{expected}`",
                &id[..15]
            ));
        }
    }
    Ok(())
}

/// The 18-character form of a 15-character Salesforce id.
pub fn id18(id15: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let mut out = id15.to_owned();
    for chunk in id15.as_bytes().chunks(5) {
        let bits = chunk
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_ascii_uppercase())
            .fold(0usize, |acc, (i, _)| acc | (1 << i));
        out.push(ALPHABET[bits] as char);
    }
    out
}

/// IAM role names: 1 to 64 characters from `[A-Za-z0-9+=,.@_-]`.
pub fn role_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
    {
        return Err(format!(
            "`{c}` is not allowed in an IAM role name (letters, digits and `+=,.@_-` only)"
        ));
    }
    if name.len() > 64 {
        return Err(format!("it is {} characters long (64 at most)", name.len()));
    }
    Ok(())
}

/// Names of custom (non-partner) event buses: 1 to 256 of `[.-_A-Za-z0-9]`, not starting with `aws.`.
pub fn bus_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.starts_with("aws.") {
        return Err(
            "names starting with `aws.` are reserved for AWS and partner event buses".into(),
        );
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_".contains(*c)))
    {
        return Err(format!(
            "`{c}` is not allowed in an event bus name (letters, digits and `.-_` only)"
        ));
    }
    if name.len() > 256 {
        return Err(format!(
            "it is {} characters long (256 at most)",
            name.len()
        ));
    }
    Ok(())
}

/// An event bus ARN `arn:<partition>:events:<region>:<account>:event-bus/<name>`, split into its parts.
pub fn bus_arn(arn: &str) -> Result<(String, String, String), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_, partition_, service, region, account, resource] = parts[..] else {
        return Err(
            "an event bus ARN is `arn:aws:events:<region>:<account>:event-bus/<name>`".into(),
        );
    };
    if arn_ != "arn" || service != "events" {
        return Err(
            "an event bus ARN is `arn:aws:events:<region>:<account>:event-bus/<name>`".into(),
        );
    }
    match partition(region) {
        None => return Err(format!("`{region}` is not an AWS region")),
        Some(p) if p != partition_ => {
            return Err(format!(
                "region `{region}` is in partition `{p}`, not `{partition_}`"
            ));
        }
        Some(_) => {}
    }
    account_id(account)?;
    let Some(name) = resource.strip_prefix("event-bus/") else {
        return Err("the resource part of an event bus ARN is `event-bus/<name>`".into());
    };
    bus_name(name)?;
    Ok((region.to_owned(), account.to_owned(), name.to_owned()))
}

/// An environment variable name.
pub fn env_var(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err("an environment variable name has letters, digits and `_`, and does not start with a digit".into())
    }
}

/// Whether a string looks like a credential: an AWS access key id, a Salesforce session id, a PEM
/// private key, a JWT. Used to refuse secrets written into a spec, wherever they stand.
pub fn looks_like_secret(s: &str) -> Option<&'static str> {
    let s = s.trim();
    if s.contains("PRIVATE KEY-----") {
        return Some("a private key");
    }
    let is_key_id = |p: &str| {
        s.len() == 20
            && s.starts_with(p)
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    if is_key_id("AKIA") || is_key_id("ASIA") {
        return Some("an AWS access key id");
    }
    if let Some((org, rest)) = s.split_once('!')
        && org.starts_with("00D")
        && (org.len() == 15 || org.len() == 18)
        && rest.len() >= 20
        && !rest.contains(char::is_whitespace)
    {
        return Some("a Salesforce access token");
    }
    // An AWS secret access key: 40 characters of base64's alphabet, mixed case and digits (a git
    // hash is lowercase hex; a word is not 40 characters without a digit).
    if s.len() == 40
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '/' || c == '+')
        && s.chars().any(|c| c.is_ascii_uppercase())
        && s.chars().any(|c| c.is_ascii_lowercase())
        && s.chars().any(|c| c.is_ascii_digit())
    {
        return Some("an AWS secret access key");
    }
    let jwt_parts: Vec<&str> = s.split('.').collect();
    if jwt_parts.len() == 3 && s.starts_with("eyJ") && jwt_parts.iter().all(|p| p.len() >= 10) {
        return Some("a JSON Web Token");
    }
    None
}

/// `text` with every word that looks like a credential replaced by what it looks like: the last
/// line of defence, applied to every diagnostic's message and hint, so that no rule that quotes a
/// value (an unknown key, a dangling reference, a bad name) can ever print a secret.
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    let is_word = |c: char| !(c.is_whitespace() || "`'\"()[]{},;".contains(c));
    let mut out = String::new();
    let mut last = 0;
    let mut changed = false;
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (start, is_word(c)) {
            (None, true) => start = Some(i),
            (Some(b), false) => {
                start = None;
                // A word ends in punctuation that is not part of it (`key: AKIA...:` or `...AKIA.`).
                let word = text[b..i].trim_end_matches([':', '.', '!', '?']);
                if let Some(kind) = looks_like_secret(word) {
                    out.push_str(&text[last..b]);
                    out.push_str(&format!("(a value that looks like {kind}, not shown)"));
                    last = b + word.len();
                    changed = true;
                }
            }
            _ => {}
        }
    }
    if !changed {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    std::borrow::Cow::Owned(out)
}

/// The closest of `candidates` to `word`, if one is close enough to be what was meant: within a
/// typo or two (letters swapped, missing, extra or wrong: optimal string alignment distance, at most
/// 1 for words up to 4 letters, 2 up to 8, 3 beyond), or alike by Jaro-Winkler (> 0.8, which
/// catches a changed ending). Case is ignored; the fewest edits win, then the most alike.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let w = word.to_lowercase();
    let budget = match w.chars().count() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .filter_map(|c| {
            let lc = c.to_lowercase();
            let edits = strsim::osa_distance(&w, &lc);
            let alike = strsim::jaro_winkler(&w, &lc);
            (edits <= budget || alike > 0.8).then_some((edits, alike, c))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names() {
        assert!(api_name("Order_Events", 80).is_ok());
        assert!(
            api_name("1Order", 80)
                .unwrap_err()
                .contains("start with a letter")
        );
        assert!(api_name("Order__Events", 80).unwrap_err().contains("__"));
        assert!(api_name("Order_", 80).unwrap_err().contains("ends with"));
        assert!(api_name("Order-Events", 80).unwrap_err().contains("`-`"));
        assert!(api_name(&"a".repeat(81), 80).unwrap_err().contains("81"));
    }

    #[test]
    fn event_names() {
        assert_eq!(event_name("Order_Placed__e"), Ok(EventKind::Platform));
        assert_eq!(event_name("acme__Order__e"), Ok(EventKind::Platform));
        assert_eq!(event_name("AccountChangeEvent"), Ok(EventKind::Change));
        assert_eq!(event_name("Invoice__ChangeEvent"), Ok(EventKind::Change));
        assert!(event_name("Order_Placed").is_err());
        assert!(event_name("Order__Placed__X__e").is_err());
        assert!(event_name("ChangeEvent").is_err());
    }

    #[test]
    fn org_ids_and_checksums() {
        // Well-known example id pair from Salesforce documentation conventions.
        assert_eq!(id18("00D000000000062"), "00D000000000062EAA");
        assert!(org_id("00D000000000062").is_ok());
        assert!(org_id("00D000000000062EAA").is_ok());
        assert!(
            org_id("00D000000000062EAB")
                .unwrap_err()
                .contains("checksum")
        );
        assert!(org_id("001000000000062").unwrap_err().contains("00D"));
        assert!(org_id("00D12").unwrap_err().contains("15 or 18"));
    }

    #[test]
    fn accounts_roles_buses() {
        assert!(account_id("123456789012").is_ok());
        assert!(account_id("12345678901").unwrap_err().contains("has 11"));
        assert!(role_name("relayform-orders").is_ok());
        assert!(role_name("bad/name").is_err());
        assert!(bus_name("orders").is_ok());
        assert!(bus_name("aws.partner/x").is_err());
        let (region, account, name) =
            bus_arn("arn:aws:events:eu-west-1:123456789012:event-bus/orders").unwrap();
        assert_eq!(
            (&*region, &*account, &*name),
            ("eu-west-1", "123456789012", "orders")
        );
        assert!(bus_arn("arn:aws:events:eu-west-9:123456789012:event-bus/orders").is_err());
        assert!(bus_arn("arn:aws-cn:events:eu-west-1:123456789012:event-bus/o").is_err());
    }

    #[test]
    fn secrets() {
        assert_eq!(
            looks_like_secret("AKIAIOSFODNN7EXAMPLE"),
            Some("an AWS access key id")
        );
        assert!(looks_like_secret("00D5g000004XyZ1!AQ8AQJ9XyZ1234567890abcdef").is_some());
        assert!(looks_like_secret("-----BEGIN RSA PRIVATE KEY-----\nabc").is_some());
        assert_eq!(looks_like_secret("orders"), None);
        assert_eq!(looks_like_secret("deploy@acme.com"), None);
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("orgz", ["orgs", "relays"]), Some("orgs"));
        assert_eq!(did_you_mean("zzz", ["orgs", "relays"]), None);
        // Swapped letters in a short word: Jaro-Winkler alone missed these.
        assert_eq!(did_you_mean("ogr", ["org", "aws_account"]), Some("org"));
        assert_eq!(did_you_mean("stat", ["state", "events"]), Some("state"));
        assert_eq!(
            did_you_mean("erorr_recovery", ["error_recovery", "events"]),
            Some("error_recovery")
        );
        // The fewest edits win over a longer shared prefix.
        assert_eq!(did_you_mean("label", ["labels", "lable_x"]), Some("labels"));
        assert_eq!(did_you_mean("xy", ["org"]), None);
    }
}
