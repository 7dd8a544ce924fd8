//! Just enough XML writing for awsQuery responses.

pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `<name>escaped value</name>`.
pub(super) fn el(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

/// The body of a successful awsQuery response: the result element first, then the metadata.
pub(super) fn response(ns: &str, op: &str, result: Option<&str>, request_id: &str) -> String {
    let result = result
        .map(|r| format!("<{op}Result>{r}</{op}Result>"))
        .unwrap_or_default();
    format!(
        "<{op}Response xmlns=\"{ns}\">{result}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op}Response>"
    )
}

/// RFC 3986 percent-encoding (unreserved characters kept), as IAM returns policy documents.
pub(super) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_iam() {
        assert_eq!(percent_encode("{\"a\": 1}"), "%7B%22a%22%3A%201%7D");
        assert_eq!(escape("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
