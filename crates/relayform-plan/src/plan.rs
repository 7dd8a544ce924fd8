//! The plan: what must change, as a value that can be rendered, saved and applied.

use crate::resource::Address;
use std::fmt::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Create,
    Update,
    /// Delete, then create: the resource cannot change in place.
    Replace,
    Delete,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// One attribute's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: &'static str,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    pub fields: Vec<FieldChange>,
    /// Why, when the action is not obvious (a replace, a dependent change).
    pub reason: Option<String>,
    /// Something apply must wait for before it can make this change (a partner source that Salesforce
    /// registers only after the relay exists).
    pub waits_for: Option<String>,
}

/// An object found in an org or account that no spec relay accounts for: reported, never touched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unmanaged {
    /// `salesforce` or `aws`.
    pub system: &'static str,
    /// The org or account (spec name).
    pub scope: String,
    pub kind: &'static str,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In the order apply makes them: creates and updates in graph order, then deletes in reverse.
    pub changes: Vec<Change>,
    pub unmanaged: Vec<Unmanaged>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

fn quoted(v: &Option<String>) -> String {
    v.as_ref()
        .map_or_else(|| "(none)".into(), |s| format!("{s:?}"))
}

impl fmt::Display for Plan {
    /// Terraform-style text: one block per change, fields as `before → after`, then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for c in &self.changes {
            let _ = write!(out, "{:>3} {}", c.action.symbol(), c.address);
            if let Some(r) = &c.reason {
                let _ = write!(out, "  # {r}");
            }
            out.push('\n');
            for fc in &c.fields {
                let _ = match (c.action, &fc.before, &fc.after) {
                    (Action::Create, _, after) => {
                        writeln!(out, "      {}: {}", fc.field, quoted(after))
                    }
                    (Action::Delete, before, _) => {
                        writeln!(out, "      {}: {}", fc.field, quoted(before))
                    }
                    (_, before, after) => writeln!(
                        out,
                        "      {}: {} → {}",
                        fc.field,
                        quoted(before),
                        quoted(after)
                    ),
                };
            }
            if let Some(w) = &c.waits_for {
                let _ = writeln!(out, "      (pending external: waits for {w})");
            }
        }
        for u in &self.unmanaged {
            let _ = writeln!(
                out,
                "  ? {} {} {:?} in {} (not in the spec: left alone)",
                u.system, u.kind, u.name, u.scope
            );
        }
        if self.is_empty() {
            out.push_str("No changes: the orgs and accounts match the spec.\n");
        } else {
            let _ = writeln!(
                out,
                "Plan: {} to create, {} to update, {} to replace, {} to delete.",
                self.count(Action::Create),
                self.count(Action::Update),
                self.count(Action::Replace),
                self.count(Action::Delete)
            );
        }
        f.write_str(&out)
    }
}
