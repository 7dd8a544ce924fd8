//! What a run did: each step's outcome, and the plan's changes counted whole, overall and per
//! scope (org, account), which a failure budget or a retry rule looks at.

use crate::Failure;
use crate::run::Outcome;
use relayform_provider::act::{Scope, Step};
use std::collections::BTreeMap;

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Steps, with what was done or why not.
    pub done: Vec<(String, String)>,
    pub failed: Vec<(String, Failure)>,
    /// Steps still waiting on Salesforce or AWS when the wait timeout ended.
    pub pending: Vec<(String, String)>,
    pub skipped: Vec<(String, String)>,
    /// The plan's changes counted whole (a change is one step or more: a replace is two, a relay's
    /// fingerprint is recorded last).
    pub changes: Counts,
    /// The same, per org and account: what a failure budget or a retry rule looks at.
    pub scopes: BTreeMap<Scope, Counts>,
}

/// The plan's changes by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub done: usize,
    pub failed: usize,
    /// Waiting on the vendor when the wait timeout ended.
    pub pending: usize,
    /// Not started because something they need failed or is pending.
    pub not_done: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.done + self.failed + self.pending + self.not_done
    }
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.pending.is_empty()
    }

    /// Nothing failed: what is left waits on Salesforce or AWS.
    pub fn only_pending(&self) -> bool {
        self.failed.is_empty() && !self.pending.is_empty()
    }
}

/// Counts the changes whole, overall and per scope: failed if a step of it failed, done if all its
/// steps were, pending if one is, not done otherwise.
pub(crate) fn count(
    report: &mut Report,
    steps: &[Step],
    changes: &[Scope],
    outcome: &[Option<Outcome>],
) {
    // Per change, folded over its steps: (a step failed, every step done, a step pending).
    let mut mine = vec![(false, true, false); changes.len()];
    for (s, o) in steps.iter().zip(outcome) {
        if let Some((failed, done, pending)) = mine.get_mut(s.change) {
            *failed |= matches!(o, Some(Outcome::Failed(_)));
            *done &= matches!(o, Some(Outcome::Done(_)));
            *pending |= matches!(o, Some(Outcome::Pending(_)));
        }
    }
    for (scope, (failed, done, pending)) in changes.iter().zip(mine) {
        if !report.scopes.contains_key(scope) {
            report.scopes.insert(scope.clone(), Counts::default());
        }
        let here = report.scopes.get_mut(scope).expect("inserted above");
        let all = &mut report.changes;
        if failed {
            all.failed += 1;
            here.failed += 1;
        } else if done {
            all.done += 1;
            here.done += 1;
        } else if pending {
            all.pending += 1;
            here.pending += 1;
        } else {
            all.not_done += 1;
            here.not_done += 1;
        }
    }
}
