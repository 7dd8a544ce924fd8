//! Wildcard matching, shared by IAM policies (`*`, `?`), SOQL `LIKE` (`%`, `_`) and EventBridge's
//! `wildcard` (`*`).
//!
//! Iterative, remembering only the last `any` wildcard: O(pattern × text) at worst, never the
//! exponential blow-up of naive backtracking, since patterns come from users.

/// Whether `text` matches `pattern`, where `any` stands for any run of bytes and `one` (if given) for
/// exactly one byte.
pub fn matches(pattern: &[u8], text: &[u8], any: u8, one: Option<u8>) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == any {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && (Some(pattern[p]) == one || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `any` swallow one more byte and retry from there.
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == any)
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn iam(p: &str, s: &str) -> bool {
        matches(p.as_bytes(), s.as_bytes(), b'*', Some(b'?'))
    }

    #[test]
    fn wildcards() {
        assert!(iam(
            "arn:aws:events:*:123:event-bus/*",
            "arn:aws:events:us-east-1:123:event-bus/orders"
        ));
        assert!(!iam(
            "arn:aws:events:*:123:event-bus/*",
            "arn:aws:events:us-east-1:999:event-bus/orders"
        ));
        assert!(iam("a?c", "abc") && !iam("a?c", "ac"));
        assert!(iam("*", "") && iam("**", "x") && !iam("", "x") && iam("", ""));
        assert!(iam("*b*b*", "abxbz") && !iam("*b*b*", "abz"));
        assert!(matches(b"Ord%", b"Orders", b'%', Some(b'_')));
    }

    #[test]
    fn no_exponential_blow_up() {
        let pattern = "*a".repeat(30) + "b";
        let text = "a".repeat(200);
        let t = std::time::Instant::now();
        assert!(!iam(&pattern, &text));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }
}
