//! Errors as the user sees them: text on stderr (`error: ...` with its `hint:` lines), or, when the
//! command was asked for `--json`, one document on stdout (see `docs/json/error.schema.json`), so a
//! tool reading stdout always gets JSON and learns why from it. The exit code is the same either way.

use relayform_spec::Diagnostic;
use serde_json::{Value, json};

/// The version of the error document; bumped on incompatible changes.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// A spec with errors: the diagnostics, and their text as `validate` renders them (source line and
/// caret), for the text output.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub diagnostics: Vec<Diagnostic>,
    pub text: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.diagnostics.iter().filter(|d| d.is_error()).count();
        write!(
            f,
            "the spec has {n} error{}; `relayform validate` shows them too",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Invalid {}

/// What kind of failure: a usage error (exit 2) or any other (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Usage,
    Error,
}

/// The JSON document for a failure of `command`. `text` is the message as the text output shows it:
/// its `hint:` and `note:` lines become fields of their own.
pub(crate) fn document(command: &str, kind: Kind, text: &str, diagnostics: &[Diagnostic]) -> Value {
    let mut message = Vec::new();
    let mut hints = Vec::new();
    let mut notes = Vec::new();
    for line in text.trim_end().lines() {
        let line = line.trim_end();
        if let Some(h) = line.strip_prefix("hint: ") {
            hints.push(h);
        } else if let Some(n) = line.strip_prefix("note: ") {
            notes.push(n);
        } else if !line.is_empty() {
            message.push(line);
        }
    }
    let mut error = json!({
        "kind": match kind { Kind::Usage => "usage", Kind::Error => "error" },
        "message": message.join("\n"),
        "hints": hints,
        "notes": notes,
    });
    if !diagnostics.is_empty() {
        error["diagnostics"] = json!(diagnostics);
    }
    json!({
        "format_version": FORMAT_VERSION,
        "command": command,
        "ok": false,
        "error": error,
    })
}

/// Strips a clap message to its content: no `error: ` prefix, no usage block, no `For more
/// information` line (the JSON reader gets the hint lines instead).
pub(crate) fn usage_text(rendered: &str) -> String {
    let mut lines = Vec::new();
    for line in rendered.lines() {
        let line = line.strip_prefix("error: ").unwrap_or(line);
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        let line = line.trim_start();
        lines.push(
            line.strip_prefix("tip: ")
                .map_or(line.to_owned(), |t| format!("hint: {t}")),
        );
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_and_notes_are_split_out_of_the_message() {
        let doc = document(
            "plan",
            Kind::Error,
            "--org x: the spec has no such org\nnote: one\nhint: did you mean `--org y`?\n",
            &[],
        );
        assert_eq!(doc["error"]["message"], "--org x: the spec has no such org");
        assert_eq!(doc["error"]["hints"], json!(["did you mean `--org y`?"]));
        assert_eq!(doc["error"]["notes"], json!(["one"]));
        assert_eq!(doc["ok"], false);
        assert!(doc["error"].get("diagnostics").is_none());
    }

    #[test]
    fn clap_usage_is_reduced_to_the_message_and_its_tip() {
        let text = "error: unexpected argument '--frobnicate' found\n\n  tip: to pass '--frobnicate' as a value, use '-- --frobnicate'\n\nUsage: relayform plan [OPTIONS] [PATH]...\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_text(text),
            "unexpected argument '--frobnicate' found\n\nhint: to pass '--frobnicate' as a value, use '-- --frobnicate'\n"
        );
    }
}
