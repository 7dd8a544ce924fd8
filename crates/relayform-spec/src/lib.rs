//! The relayform spec language: from YAML text to a checked, typed [`Spec`].
//!
//! A spec is one or more YAML files that declare Salesforce orgs, AWS accounts and the event relays
//! between them (`docs/spec.md` is the user's reference). This crate turns their text into a typed model
//! and reports every problem it can find, each with a file, line and column, in one pass.
//!
//! # Design
//!
//! - **Pure.** [`check`] takes file names and texts and returns a value plus diagnostics; it reads no
//!   files, no environment and no network, and it cannot fail or panic on bad input. Reading files is the
//!   caller's business (the CLI), which keeps this crate trivially testable and reusable by the engine.
//! - **Every problem at once.** Decoding reports and skips what it cannot use instead of stopping, so a
//!   user fixes a spec in one round trip. Diagnostics carry a stable `code` for tools and a `hint`
//!   saying what to do.
//! - **Positions without a second truth.** serde_yaml parses and decides what the YAML means; it keeps no
//!   positions, so [`yaml`] indexes the same text with yaml-rust2's event parser purely to place
//!   diagnostics.
//! - **One source for the shape.** The keys each mapping allows live in [`schema::keys`], used by both the
//!   decoder and the JSON Schema, so editors and `relayform validate` agree.
//! - **Secrets never in, never out.** Fields that take secrets take references (`{env: ...}`,
//!   `{file: ...}`); anything that looks like a credential is refused wherever it stands, and messages
//!   never echo it.

mod check;
mod decode;
pub mod diagnostic;
pub mod model;
pub mod names;
pub mod rules;
pub mod schema;
pub mod yaml;

pub use diagnostic::{Diagnostic, Location, Severity};
pub use model::*;

/// One spec file: the name to show in diagnostics and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
    /// Why the file's bytes are not a spec to parse (too large, not UTF-8), located.
    unreadable: Option<Diagnostic>,
}

/// The largest spec file read: 1 MiB (a thousand relays take a tenth of it).
pub const MAX_FILE_BYTES: usize = 1 << 20;

impl SourceFile {
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            path: path.into(),
            text: text.into(),
            unreadable: None,
        }
    }

    /// A file as read from disk: more than [`MAX_FILE_BYTES`] (a reader need not read further than
    /// one byte past it), or bytes that are not UTF-8, become a located diagnostic instead of text.
    pub fn from_bytes(path: impl Into<String>, bytes: Vec<u8>) -> Self {
        let path = path.into();
        if bytes.len() > MAX_FILE_BYTES {
            let d = Diagnostic::error(
                "file-too-large",
                diagnostic::Location::new(path.clone(), 1, 1),
                format!("the file is larger than {} MiB", MAX_FILE_BYTES >> 20),
            )
            .with_hint("a spec file is a few kilobytes; is this the file you meant? Split a large spec into several files");
            return SourceFile {
                path,
                text: String::new(),
                unreadable: Some(d),
            };
        }
        match String::from_utf8(bytes) {
            Ok(text) => SourceFile::new(path, text),
            Err(e) => {
                let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                // Valid up to here, so this prefix is text.
                let before = String::from_utf8_lossy(valid);
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                let d = Diagnostic::error(
                    "not-utf8",
                    diagnostic::Location::new(path.clone(), line, column),
                    format!(
                        "the file is not UTF-8 text: byte 0x{:02x} here does not belong",
                        e.as_bytes()[valid.len()]
                    ),
                )
                .with_hint("save the file as UTF-8 (YAML files are UTF-8)");
                SourceFile {
                    path,
                    text: String::new(),
                    unreadable: Some(d),
                }
            }
        }
    }
}

/// The result of checking a set of spec files.
#[derive(Debug, Clone)]
pub struct Checked {
    /// What could be understood. Complete and trustworthy only when there are no errors.
    pub spec: Spec,
    /// Every problem found, in reading order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The spec if it has no errors, else the diagnostics.
    pub fn into_result(self) -> Result<(Spec, Vec<Diagnostic>), Vec<Diagnostic>> {
        if self.has_errors() {
            Err(self.diagnostics)
        } else {
            Ok((self.spec, self.diagnostics))
        }
    }
}

/// Parses, decodes and checks spec files together, as one spec.
pub fn check(files: &[SourceFile]) -> Checked {
    let mut diagnostics = Vec::new();
    let mut decls = Vec::new();
    for f in files {
        if let Some(d) = &f.unreadable {
            diagnostics.push(d.clone());
            continue;
        }
        match yaml::Document::parse(&f.path, &f.text) {
            Err(d) => diagnostics.push(d),
            Ok(doc) => {
                let mut cx = decode::Cx::new(&doc);
                decls.push(decode::file(&mut cx));
                decode::secrets(&mut cx);
                diagnostics.append(&mut cx.diagnostics);
            }
        }
    }
    let spec = check::merge(decls, &mut diagnostics);
    for d in &mut diagnostics {
        d.message = rules::redact(&d.message).into_owned();
        if let Some(h) = &d.hint {
            d.hint = Some(rules::redact(h).into_owned());
        }
    }
    diagnostic::sort(&mut diagnostics);
    Checked { spec, diagnostics }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_and_non_utf8_files_are_located_diagnostics() {
        let big = SourceFile::from_bytes("big.yaml", vec![b' '; MAX_FILE_BYTES + 1]);
        let c = check(&[big]);
        assert_eq!(c.diagnostics.len(), 1);
        assert_eq!(c.diagnostics[0].code, "file-too-large");
        let fits = SourceFile::from_bytes("ok.yaml", b"version: 1\n".to_vec());
        assert_eq!(fits.text, "version: 1\n");
        let latin1 = SourceFile::from_bytes("l.yaml", b"version: 1\n# caf\xe9\n".to_vec());
        let c = check(&[latin1]);
        assert_eq!(c.diagnostics[0].code, "not-utf8");
        assert_eq!(
            c.diagnostics[0].to_string().lines().next().unwrap(),
            "l.yaml:2:6: error: the file is not UTF-8 text: byte 0xe9 here does not belong"
        );
    }
}
