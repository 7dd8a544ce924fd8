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
}

impl SourceFile {
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            path: path.into(),
            text: text.into(),
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
    diagnostic::sort(&mut diagnostics);
    Checked { spec, diagnostics }
}
