//! Fault injection: make chosen calls fail, slow down, or lose their response.
//!
//! A fault names what it applies to (API, operation, org, account; each optional, `*` for any
//! operation), what it does, and when: always, for the next N matching calls, on the K-th matching
//! call, or with a probability drawn from its own seed, so runs repeat.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Faults {
    pub rules: Vec<Fault>,
    pub next_id: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub id: u64,
    /// `salesforce` or `aws`; any when left out.
    #[serde(default)]
    pub api: Option<String>,
    /// An operation as the journal names it (`CreateEventBus`, `tooling.create`, ...), or `*`.
    #[serde(default)]
    pub operation: Option<String>,
    /// An org id or My Domain name.
    #[serde(default)]
    pub org: Option<String>,
    /// An AWS account id.
    #[serde(default)]
    pub account: Option<String>,
    pub action: Action,
    #[serde(default)]
    pub when: When,
    /// Matching calls seen so far.
    #[serde(default)]
    pub seen: u64,
    /// Times it fired.
    #[serde(default)]
    pub fired: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Answer with this error, in the vendor's shape, without performing the call.
    Error {
        status: u16,
        code: String,
        message: String,
    },
    /// Answer with the vendor's throttling error and a retry hint.
    Throttle { retry_after_ms: u64 },
    /// Wait this long (real time) before handling the call.
    Latency { ms: u64 },
    /// Perform the call, then answer as if the connection had failed (HTTP 504).
    LoseResponse,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum When {
    #[default]
    Always,
    Next {
        n: u64,
    },
    Call {
        k: u64,
    },
    Probability {
        p: f64,
        seed: u64,
    },
}

impl Fault {
    /// Refuses a fault that could not be answered in the vendor's shape or would hold a call for
    /// ever: an error status that is not an HTTP error (`0`, `200`), waits over an hour, a
    /// probability outside 0 to 1.
    pub fn validate(&self) -> Result<(), String> {
        match &self.action {
            Action::Error {
                status,
                code,
                message,
            } => {
                if !(400..=599).contains(status) {
                    return Err(format!(
                        "an error's `status` is an HTTP error status, 400 to 599 (not {status})"
                    ));
                }
                if code.is_empty() || code.len() > 100 || message.len() > 4000 {
                    return Err(
                        "an error's `code` is 1 to 100 characters and its `message` at most 4,000"
                            .into(),
                    );
                }
            }
            Action::Throttle { retry_after_ms } if *retry_after_ms > 3_600_000 => {
                return Err("`retry_after_ms` is at most an hour (3600000)".into());
            }
            Action::Latency { ms } if *ms > 600_000 => {
                return Err("a latency's `ms` is at most ten minutes (600000)".into());
            }
            _ => {}
        }
        match &self.when {
            When::Probability { p, .. } if !(0.0..=1.0).contains(p) => {
                Err(format!("`p` is a probability, 0 to 1 (not {p})"))
            }
            When::Call { k: 0 } => Err("`k` counts matching calls from 1".into()),
            _ => Ok(()),
        }
    }
}

/// The call being made, as faults see it.
#[derive(Debug, Clone, Default)]
pub struct Call<'a> {
    pub api: &'a str,
    pub operation: &'a str,
    /// The operation with its object type (`tooling.create:EventRelayConfig`), when it has one: a
    /// fault naming either matches, and the call counts once.
    pub with_object: Option<&'a str>,
    /// (org id, My Domain name).
    pub org: Option<(&'a str, &'a str)>,
    pub account: Option<&'a str>,
}

impl Faults {
    pub fn add(&mut self, mut f: Fault) -> u64 {
        self.next_id += 1;
        f.id = self.next_id;
        f.seen = 0;
        f.fired = 0;
        self.rules.push(f);
        self.next_id
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The actions that fire for this call (counting it against every fault it matches).
    pub fn check(&mut self, call: &Call<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        for f in &mut self.rules {
            let matches = f.api.as_deref().is_none_or(|a| a == call.api)
                && f.operation
                    .as_deref()
                    .is_none_or(|o| o == "*" || o == call.operation || call.with_object == Some(o))
                && f.org.as_deref().is_none_or(|o| {
                    call.org
                        .is_some_and(|(id, dom)| o == id || o == dom || id.starts_with(o))
                })
                && f.account.as_deref().is_none_or(|a| call.account == Some(a));
            if !matches {
                continue;
            }
            f.seen += 1;
            let fire = match &f.when {
                When::Always => true,
                When::Next { n } => f.fired < *n,
                When::Call { k } => f.seen == *k,
                When::Probability { p, seed } => {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_add(f.seen));
                    rng.random::<f64>() < *p
                }
            };
            if fire {
                f.fired += 1;
                out.push(f.action.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(when: When) -> Fault {
        Fault {
            id: 0,
            api: Some("aws".into()),
            operation: Some("CreateEventBus".into()),
            org: None,
            account: None,
            action: Action::Throttle { retry_after_ms: 10 },
            when,
            seen: 0,
            fired: 0,
        }
    }

    fn call() -> Call<'static> {
        Call {
            api: "aws",
            operation: "CreateEventBus",
            with_object: None,
            org: None,
            account: Some("000000000000"),
        }
    }

    #[test]
    fn next_n_and_call_k() {
        let mut f = Faults::default();
        f.add(fault(When::Next { n: 2 }));
        let fired: Vec<bool> = (0..4).map(|_| !f.check(&call()).is_empty()).collect();
        assert_eq!(fired, [true, true, false, false]);

        let mut f = Faults::default();
        f.add(fault(When::Call { k: 3 }));
        let fired: Vec<bool> = (0..4).map(|_| !f.check(&call()).is_empty()).collect();
        assert_eq!(fired, [false, false, true, false]);
        let other = Call {
            operation: "PutRule",
            ..call()
        };
        assert!(f.check(&other).is_empty());
    }

    #[test]
    fn probabilities_repeat_with_the_seed() {
        let run = || {
            let mut f = Faults::default();
            f.add(fault(When::Probability { p: 0.5, seed: 42 }));
            (0..64)
                .map(|_| !f.check(&call()).is_empty())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let hits = a.iter().filter(|x| **x).count();
        assert!((16..=48).contains(&hits), "{hits}");
    }
}
