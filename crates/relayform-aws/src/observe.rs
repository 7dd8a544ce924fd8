//! Reading what an account and region hold: a fixed number of list calls, plus two per forwarded relay
//! and two per role.

use crate::{Aws, Error, ErrorKind};
use relayform_provider::{
    ObservedAccount, ObservedBus, ObservedBusPolicy, ObservedRole, ObservedRule, ObservedSource,
    ObservedTarget,
};

/// The prefix of every Salesforce partner event source and of its bus.
pub const SALESFORCE_SOURCES: &str = "aws.partner/salesforce.com/";

/// What to read beyond the partner sources and buses, which are always listed.
#[derive(Debug, Clone, Default)]
pub struct Interest {
    /// (partner bus, rule name) of each forwarded relay: `ListRules` and `ListTargetsByRule`.
    pub forwarding: Vec<(String, String)>,
    /// (role name, inline policy name): `GetRole` and `GetRolePolicy`.
    pub roles: Vec<(String, String)>,
}

fn absent<T>(r: Result<T, Error>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the account and region. Things that do not exist are simply not in the result.
pub async fn observe_account(
    aws: &Aws,
    account_id: &str,
    interest: &Interest,
) -> Result<ObservedAccount, Error> {
    let mut out = ObservedAccount {
        account_id: account_id.to_owned(),
        region: aws.region.clone(),
        ..ObservedAccount::default()
    };
    let mut token = None;
    loop {
        let page = aws
            .events
            .list_event_sources()
            .name_prefix(SALESFORCE_SOURCES)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| aws.classify("events:ListEventSources", &e))?;
        out.sources
            .extend(page.event_sources().iter().map(|s| ObservedSource {
                name: s.name().unwrap_or_default().to_owned(),
                state: s.state().map(|st| st.as_str().to_owned()),
            }));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let mut token = None;
    loop {
        let page = aws
            .events
            .list_event_buses()
            .name_prefix(SALESFORCE_SOURCES)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| aws.classify("events:ListEventBuses", &e))?;
        out.buses
            .extend(page.event_buses().iter().map(|b| ObservedBus {
                name: b.name().unwrap_or_default().to_owned(),
                arn: b.arn().map(str::to_owned),
            }));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    for (bus, rule) in &interest.forwarding {
        if !out.buses.iter().any(|b| &b.name == bus) {
            continue;
        }
        let rules = aws
            .events
            .list_rules()
            .event_bus_name(bus)
            .name_prefix(rule)
            .send()
            .await
            .map_err(|e| aws.classify("events:ListRules", &e));
        let Some(rules) = absent(rules)? else {
            continue;
        };
        let Some(found) = rules
            .rules()
            .iter()
            .find(|r| r.name() == Some(rule.as_str()))
        else {
            continue;
        };
        let targets = aws
            .events
            .list_targets_by_rule()
            .rule(rule)
            .event_bus_name(bus)
            .send()
            .await
            .map_err(|e| aws.classify("events:ListTargetsByRule", &e));
        let targets = absent(targets)?
            .map(|t| t.targets().to_vec())
            .unwrap_or_default();
        out.rules.push(ObservedRule {
            bus: bus.clone(),
            name: rule.clone(),
            event_pattern: found.event_pattern().map(str::to_owned),
            state: found.state().map(|s| s.as_str().to_owned()),
            targets: targets
                .iter()
                .map(|t| ObservedTarget {
                    id: t.id().to_owned(),
                    arn: t.arn().to_owned(),
                    role_arn: t.role_arn().map(str::to_owned),
                })
                .collect(),
        });
    }
    for (role, policy) in &interest.roles {
        let got = aws
            .iam
            .get_role()
            .role_name(role)
            .send()
            .await
            .map_err(|e| aws.classify("iam:GetRole", &e));
        let Some(got) = absent(got)? else { continue };
        let Some(r) = got.role() else { continue };
        let doc = aws
            .iam
            .get_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
            .map_err(|e| aws.classify("iam:GetRolePolicy", &e));
        out.roles.push(ObservedRole {
            name: r.role_name().to_owned(),
            arn: r.arn().to_owned(),
            trust_policy: r.assume_role_policy_document().map(str::to_owned),
            policy: absent(doc)?
                .map(|d| (d.policy_name().to_owned(), d.policy_document().to_owned())),
        });
    }
    Ok(out)
}

/// Reads a destination bus's resource policy (`DescribeEventBus`) in the client's region.
pub async fn bus_policy(aws: &Aws, bus: &str) -> Result<ObservedBusPolicy, Error> {
    let got = aws
        .events
        .describe_event_bus()
        .name(bus)
        .send()
        .await
        .map_err(|e| aws.classify("events:DescribeEventBus", &e));
    let got = absent(got)?;
    Ok(ObservedBusPolicy {
        region: aws.region.clone(),
        bus: bus.to_owned(),
        exists: got.is_some(),
        policy: got.and_then(|g| g.policy().map(str::to_owned)),
    })
}
