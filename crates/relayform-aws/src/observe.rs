//! Reading what an account and region hold: a fixed number of list calls, plus two per forwarded relay
//! and two per role, made [`READS_IN_FLIGHT`] at a time.

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

/// How many reads of one account and region are in flight at once. EventBridge's quota page gives a
/// default throttle of tens of requests per second per account and Region for its control-plane
/// APIs, IAM's are of the same order, and both are adjustable: this bounds the concurrency at the
/// order of those quotas, and a call the service throttles is retried by the SDK with backoff
/// (`x-amz-retry-after` honoured) within the call's budget, so a quota slows a refresh down but does
/// not fail it.
pub const READS_IN_FLIGHT: usize = 50;

/// Reads the account and region. Things that do not exist are simply not in the result. The two
/// lists run together, then the per-relay and per-role reads, [`READS_IN_FLIGHT`] at a time.
pub async fn observe_account(
    aws: &Aws,
    account_id: &str,
    interest: &Interest,
) -> Result<ObservedAccount, Error> {
    let mut out = observe_lists(aws, account_id).await?;
    observe_interest(aws, &mut out, interest).await?;
    Ok(out)
}

/// The partner sources and buses of the account and region (the two list calls, together).
pub async fn observe_lists(aws: &Aws, account_id: &str) -> Result<ObservedAccount, Error> {
    let (sources, buses) =
        futures_util::future::try_join(list_sources(aws), list_buses(aws)).await?;
    Ok(ObservedAccount {
        account_id: account_id.to_owned(),
        region: aws.region.clone(),
        sources,
        buses,
        ..ObservedAccount::default()
    })
}

/// Adds the forwarding rules and roles of `interest` to what [`observe_lists`] read: two calls per
/// forwarded relay whose partner bus exists, two per role, [`READS_IN_FLIGHT`] at a time, in the
/// order asked.
pub async fn observe_interest(
    aws: &Aws,
    out: &mut ObservedAccount,
    interest: &Interest,
) -> Result<(), Error> {
    let buses: std::collections::HashSet<&str> =
        out.buses.iter().map(|b| b.name.as_str()).collect();
    let rules = in_order(
        interest
            .forwarding
            .iter()
            .filter(|(bus, _)| buses.contains(bus.as_str())),
        |(bus, rule)| read_rule(aws, bus, rule),
    )
    .await?;
    let roles = in_order(interest.roles.iter(), |(role, policy)| {
        read_role(aws, role, policy)
    })
    .await?;
    out.rules.extend(rules.into_iter().flatten());
    out.roles.extend(roles.into_iter().flatten());
    Ok(())
}

/// Runs `read` over `items`, [`READS_IN_FLIGHT`] at a time, in order; stops at the first error. Each
/// read's future is made only when a place is free (made all first, 10,000 of them held 85 MB).
async fn in_order<'a, I, T, F, R>(items: I, read: F) -> Result<Vec<T>, Error>
where
    I: Iterator<Item = &'a (String, String)>,
    F: Fn(&'a (String, String)) -> R,
    R: std::future::Future<Output = Result<T, Error>>,
{
    use futures_util::StreamExt;
    let mut items = items;
    let mut in_flight = futures_util::stream::FuturesOrdered::new();
    let mut out = Vec::new();
    loop {
        while in_flight.len() < READS_IN_FLIGHT
            && let Some(item) = items.next()
        {
            in_flight.push_back(read(item));
        }
        match in_flight.next().await {
            Some(done) => out.push(done?),
            None => return Ok(out),
        }
    }
}

async fn list_sources(aws: &Aws) -> Result<Vec<ObservedSource>, Error> {
    let mut out = Vec::new();
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
        out.extend(page.event_sources().iter().map(|s| ObservedSource {
            name: s.name().unwrap_or_default().to_owned(),
            state: s.state().map(|st| st.as_str().to_owned()),
        }));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

async fn list_buses(aws: &Aws) -> Result<Vec<ObservedBus>, Error> {
    let mut out = Vec::new();
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
        out.extend(page.event_buses().iter().map(|b| ObservedBus {
            name: b.name().unwrap_or_default().to_owned(),
            arn: b.arn().map(str::to_owned),
        }));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// A forwarded relay's rule on its partner bus, with its targets.
async fn read_rule(aws: &Aws, bus: &str, rule: &str) -> Result<Option<ObservedRule>, Error> {
    let rules = aws
        .events
        .list_rules()
        .event_bus_name(bus)
        .name_prefix(rule)
        .send()
        .await
        .map_err(|e| aws.classify("events:ListRules", &e));
    let Some(rules) = absent(rules)? else {
        return Ok(None);
    };
    let Some(found) = rules.rules().iter().find(|r| r.name() == Some(rule)) else {
        return Ok(None);
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
    Ok(Some(ObservedRule {
        bus: bus.to_owned(),
        name: rule.to_owned(),
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
    }))
}

/// A role with its trust policy and the inline policy asked about.
async fn read_role(aws: &Aws, role: &str, policy: &str) -> Result<Option<ObservedRole>, Error> {
    let got = aws
        .iam
        .get_role()
        .role_name(role)
        .send()
        .await
        .map_err(|e| aws.classify("iam:GetRole", &e));
    let Some(got) = absent(got)? else {
        return Ok(None);
    };
    let Some(r) = got.role() else {
        return Ok(None);
    };
    let doc = aws
        .iam
        .get_role_policy()
        .role_name(role)
        .policy_name(policy)
        .send()
        .await
        .map_err(|e| aws.classify("iam:GetRolePolicy", &e));
    Ok(Some(ObservedRole {
        name: r.role_name().to_owned(),
        arn: r.arn().to_owned(),
        trust_policy: r.assume_role_policy_document().map(str::to_owned),
        policy: absent(doc)?.map(|d| (d.policy_name().to_owned(), d.policy_document().to_owned())),
    }))
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
