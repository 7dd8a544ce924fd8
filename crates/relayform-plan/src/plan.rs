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
    /// The resource was changed outside relayform since the spec it was last applied from (see
    /// [`crate::diff`]): this change reverts it.
    pub drift: bool,
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

/// Something the spec needs that relayform cannot do for lack of credentials: a statement on the
/// resource policy of a destination bus in an account the spec has no credentials for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Manual {
    pub bus_arn: String,
    pub account_id: String,
    pub region: String,
    /// The statement to add, as JSON.
    pub statement: String,
    /// The AWS CLI command that adds it.
    pub command: String,
    /// The spec relays that need it.
    pub relays: Vec<String>,
}

/// An org or account that could not be read (unreachable, credentials refused or missing, another
/// org than the spec pins): what its relays need is not planned; the rest of the plan stands.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unread {
    /// `salesforce` or `aws`.
    pub system: &'static str,
    /// The org or account (spec name).
    pub scope: String,
    /// Why, as the provider said it (with its hint).
    pub error: String,
    /// The spec relays left out because of it.
    pub relays: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In the order apply makes them: creates and updates in graph order, then deletes in reverse.
    pub changes: Vec<Change>,
    pub unmanaged: Vec<Unmanaged>,
    /// What the owner of another account must do (relayform has no credentials there).
    pub manual: Vec<Manual>,
    /// Orgs and accounts that could not be read, and the relays not planned because of them.
    pub unread: Vec<Unread>,
}

/// The version of the plan's JSON document; bumped on any incompatible change (2: the version is a
/// number, as in every relayform document, not the string `"1"`).
pub const FORMAT_VERSION: u32 = 2;

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Keeps only the changes to the given addresses (for `--target` and `--org`).
    pub fn restrict(&mut self, keep: &std::collections::BTreeSet<Address>) {
        self.changes.retain(|c| keep.contains(&c.address));
    }

    /// The versioned JSON document of `plan --json` and saved plan files: `format_version`,
    /// `resource_changes` (address, actions, before, after, reason, drift, waits_for), `pending_externals`,
    /// `drift` (addresses) and `unmanaged`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let side = |c: &Change, after: bool| -> Value {
            let present = if after {
                c.action != Action::Delete
            } else {
                c.action != Action::Create
            };
            if !present {
                return Value::Null;
            }
            let mut m = Map::new();
            for f in &c.fields {
                let v = if after { &f.after } else { &f.before };
                m.insert(f.field.to_owned(), json!(v));
            }
            Value::Object(m)
        };
        let actions = |a: Action| -> Value {
            match a {
                Action::Create => json!(["create"]),
                Action::Update => json!(["update"]),
                Action::Replace => json!(["delete", "create"]),
                Action::Delete => json!(["delete"]),
            }
        };
        json!({
            "format_version": FORMAT_VERSION,
            "resource_changes": self.changes.iter().map(|c| json!({
                "address": c.address.to_string(),
                "kind": c.address.kind.as_str(),
                "key": c.address.key,
                "actions": actions(c.action),
                "before": side(c, false),
                "after": side(c, true),
                "reason": c.reason,
                "drift": c.drift,
                "waits_for": c.waits_for,
            })).collect::<Vec<_>>(),
            "pending_externals": self.changes.iter().filter_map(|c| c.waits_for.as_ref().map(|w| json!({
                "address": c.address.to_string(),
                "waits_for": w,
            }))).collect::<Vec<_>>(),
            "drift": self.changes.iter().filter(|c| c.drift).map(|c| c.address.to_string()).collect::<Vec<_>>(),
            "manual": self.manual.iter().map(|m| json!({
                "bus_arn": m.bus_arn,
                "account_id": m.account_id,
                "region": m.region,
                "statement": serde_json::from_str::<Value>(&m.statement).unwrap_or(Value::Null),
                "command": m.command,
                "relays": m.relays,
            })).collect::<Vec<_>>(),
            "unmanaged": self.unmanaged.iter().map(|u| json!({
                "system": u.system,
                "scope": u.scope,
                "kind": u.kind,
                "name": u.name,
            })).collect::<Vec<_>>(),
            "unread": self.unread.iter().map(|u| json!({
                "system": u.system,
                "scope": u.scope,
                "error": u.error,
                "relays": u.relays,
            })).collect::<Vec<_>>(),
            "summary": {
                "create": self.count(Action::Create),
                "update": self.count(Action::Update),
                "replace": self.count(Action::Replace),
                "delete": self.count(Action::Delete),
            },
        })
    }

    /// The Terraform-style text, with ANSI colours when `colour` is set (`+` green, `~` yellow,
    /// `-/+` magenta, `-` red, drift in bold). The CLI strips them where colour is not wanted.
    pub fn render(&self, colour: bool) -> String {
        let mut out = String::new();
        let paint = |code: &str, s: &str| {
            if colour {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_owned()
            }
        };
        for c in &self.changes {
            let code = match c.action {
                Action::Create => "32",
                Action::Update => "33",
                Action::Replace => "35",
                Action::Delete => "31",
            };
            let _ = write!(
                out,
                "{} {}",
                paint(code, &format!("{:>3}", c.action.symbol())),
                c.address
            );
            if c.drift {
                let _ = write!(
                    out,
                    "  {}",
                    paint("1", "# drift: changed outside relayform; this reverts it")
                );
            } else if let Some(r) = &c.reason {
                let _ = write!(out, "  # {r}");
            }
            out.push('\n');
            if c.drift
                && let Some(r) = &c.reason
            {
                let _ = writeln!(out, "      # {r}");
            }
            for fc in &c.fields {
                if json_field(&mut out, c.action, fc, &paint) {
                    continue;
                }
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
        for m in &self.manual {
            let _ = writeln!(
                out,
                "  {} the resource policy of {} needs this statement, for {}; the spec has no credentials for account {}, so add it there yourself:",
                paint("33;1", "!"),
                m.bus_arn,
                m.relays.join(", "),
                m.account_id
            );
            if let Some(doc) = json_doc(&m.statement) {
                for line in doc.lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
            let _ = writeln!(out, "      {}", m.command);
        }
        for u in &self.unmanaged {
            let _ = writeln!(
                out,
                "  ? {} {} {:?} in {} (not in the spec: left alone)",
                u.system, u.kind, u.name, u.scope
            );
        }
        for u in &self.unread {
            let what = if u.system == "salesforce" {
                "org"
            } else {
                "AWS account"
            };
            let left = match u.relays.as_slice() {
                [] => String::new(),
                [one] => format!(", so relay `{one}` is not planned"),
                many => format!(
                    ", so relays {} are not planned",
                    many.iter()
                        .map(|r| format!("`{r}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let _ = writeln!(
                out,
                "  {} {what} `{}` could not be read{left}:",
                paint("31;1", "!"),
                u.scope
            );
            for line in u.error.lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
        if self.is_empty() && self.unread.is_empty() {
            out.push_str("No changes: the orgs and accounts match the spec.\n");
        } else if self.is_empty() {
            out.push_str("No changes in the orgs and accounts that could be read.\n");
        } else {
            let drift = self.changes.iter().filter(|c| c.drift).count();
            let _ = writeln!(
                out,
                "Plan: {} to create, {} to update, {} to replace, {} to delete.{}",
                self.count(Action::Create),
                self.count(Action::Update),
                self.count(Action::Replace),
                self.count(Action::Delete),
                if drift > 0 {
                    format!(" ({drift} revert drift.)")
                } else {
                    String::new()
                }
            );
        }
        out
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// A JSON object, pretty-printed (keys sorted), if `s` is one.
fn json_doc(s: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    if v.is_object() {
        serde_json::to_string_pretty(&v).ok()
    } else {
        None
    }
}

/// Renders a field whose values are JSON documents (policies) on several lines, an update as a line
/// diff; returns false for other fields.
fn json_field(
    out: &mut String,
    action: Action,
    fc: &FieldChange,
    paint: &dyn Fn(&str, &str) -> String,
) -> bool {
    let before = fc.before.as_deref().map(json_doc);
    let after = fc.after.as_deref().map(json_doc);
    // Every side present must be a document, and one at least.
    if matches!(before, Some(None))
        || matches!(after, Some(None))
        || (before.is_none() && after.is_none())
    {
        return false;
    }
    let (before, after) = (before.flatten(), after.flatten());
    let _ = writeln!(out, "      {}:", fc.field);
    let shown = match action {
        Action::Create => after,
        Action::Delete => before,
        _ => {
            let (b, a) = (before.unwrap_or_default(), after.unwrap_or_default());
            for change in similar::TextDiff::from_lines(&b, &a).iter_all_changes() {
                let line = change.value().trim_end_matches('\n');
                let _ = match change.tag() {
                    similar::ChangeTag::Equal => writeln!(out, "          {line}"),
                    similar::ChangeTag::Delete => {
                        writeln!(out, "        {}", paint("31", &format!("- {line}")))
                    }
                    similar::ChangeTag::Insert => {
                        writeln!(out, "        {}", paint("32", &format!("+ {line}")))
                    }
                };
            }
            return true;
        }
    };
    for line in shown.unwrap_or_default().lines() {
        let _ = writeln!(out, "          {line}");
    }
    true
}

fn quoted(v: &Option<String>) -> String {
    v.as_ref()
        .map_or_else(|| "(none)".into(), |s| format!("{s:?}"))
}

impl fmt::Display for Plan {
    /// Terraform-style text without colour: see [`Plan::render`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}
