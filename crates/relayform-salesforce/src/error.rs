//! Classified Salesforce errors.

pub(crate) use relayform_provider::{Error, ErrorKind};

/// Salesforce errors are the contract's [`Error`], with `system` = `Salesforce`.
pub(crate) const SYSTEM: &str = "Salesforce";

pub(crate) fn error(
    kind: ErrorKind,
    operation: impl Into<String>,
    message: impl Into<String>,
) -> Error {
    Error::new(SYSTEM, kind, operation, message)
}

/// Classifies a REST error response: status, Salesforce `errorCode` and message.
pub(crate) fn from_response(
    operation: &str,
    status: u16,
    code: Option<String>,
    message: String,
) -> Error {
    let kind = classify(status, code.as_deref(), &message);
    Error {
        status: Some(status),
        code,
        ..error(kind, operation, message)
    }
}

fn classify(status: u16, code: Option<&str>, message: &str) -> ErrorKind {
    match (status, code.unwrap_or("")) {
        (401, _) => ErrorKind::Unauthorized,
        (404, _) | (_, "NOT_FOUND") => ErrorKind::NotFound,
        (_, "DUPLICATE_DEVELOPER_NAME" | "DUPLICATE_VALUE") => ErrorKind::Conflict,
        (_, "FIELD_INTEGRITY_EXCEPTION")
            if message.contains("referenced by an existing event relay") =>
        {
            ErrorKind::Conflict
        }
        // The daily allocation is spent: waiting seconds will not help.
        (403, "REQUEST_LIMIT_EXCEEDED") if message.contains("TotalRequests") => ErrorKind::Rejected,
        (403, "REQUEST_LIMIT_EXCEEDED") | (429, _) => ErrorKind::Throttled,
        (500 | 502 | 503 | 504, _) | (_, "SERVER_UNAVAILABLE" | "UNABLE_TO_LOCK_ROW") => {
            ErrorKind::Transient
        }
        _ => ErrorKind::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let k = |s, c: &str, m: &str| classify(s, Some(c), m);
        assert_eq!(k(404, "NOT_FOUND", ""), ErrorKind::NotFound);
        assert_eq!(k(400, "DUPLICATE_DEVELOPER_NAME", ""), ErrorKind::Conflict);
        assert_eq!(
            k(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "The channel X is referenced by an existing event relay."
            ),
            ErrorKind::Conflict
        );
        assert_eq!(
            k(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "An event relay can be created only in the STOP state."
            ),
            ErrorKind::Rejected
        );
        assert_eq!(
            k(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded."
            ),
            ErrorKind::Rejected
        );
        assert_eq!(
            k(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "ConcurrentPerOrgLongTxn Limit exceeded."
            ),
            ErrorKind::Throttled
        );
        assert_eq!(k(403, "INSUFFICIENT_ACCESS", ""), ErrorKind::Rejected);
        assert_eq!(k(503, "SERVER_UNAVAILABLE", ""), ErrorKind::Transient);
        assert_eq!(k(401, "INVALID_SESSION_ID", ""), ErrorKind::Unauthorized);
        assert_eq!(classify(502, None, ""), ErrorKind::Transient);
    }

    #[test]
    fn display() {
        let e = from_response(
            "tooling.create EventRelayConfig",
            400,
            Some("DUPLICATE_DEVELOPER_NAME".into()),
            "There's already one.".into(),
        );
        assert_eq!(
            e.to_string(),
            "Salesforce tooling.create EventRelayConfig: DUPLICATE_DEVELOPER_NAME: There's already one. (HTTP 400)"
        );
    }
}
