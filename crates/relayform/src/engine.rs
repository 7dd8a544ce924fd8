//! The engine's edge: connecting to the orgs and accounts a spec names (or to the embedded simulator,
//! whose world is derived from the spec) and reading them, concurrently, with org and account pinning.
//! [`crate::commands`] hands what was read to the pure planner and [`crate::apply`] makes the changes.

use crate::apply::Connections;
use anyhow::{Context, bail};
use relayform_aws::observe::Interest;
use relayform_aws::{Aws, Credentials, Target};
use relayform_plan::diff::Observed;
use relayform_provider::{Patience, Secret};
use relayform_salesforce::{Client, Grant, OAuth, Session, SfCli, StaticToken};
use relayform_simulator::config::{
    AccountConfig, BusConfig, Config, DEMO_CLIENT_SECRET, OrgConfig,
};
use relayform_spec::names::{FORWARD_RULE, ROLE_POLICY};
use relayform_spec::{
    AwsConnection, AwsCredentials, OrgConnection, SalesforceAuth, SecretRef, Spec,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The field every platform event of the embedded simulator has (spec files name events, not fields).
pub(crate) const SIM_EVENT_FIELD: &str = "Message__c";

fn uses_simulator(spec: &Spec) -> bool {
    spec.orgs
        .values()
        .any(|o| matches!(o.connection, OrgConnection::Simulator))
        || spec
            .aws_accounts
            .values()
            .any(|a| matches!(a.connection, AwsConnection::Simulator))
}

/// The embedded simulator's world for a spec: one org per simulated spec org (its My Domain name is the
/// spec name), with the events the spec's relays carry, and one account per simulated spec account.
pub(crate) fn simulator_config(spec: &Spec) -> Config {
    let mut config = Config {
        orgs: Vec::new(),
        aws_accounts: Vec::new(),
        settings: Default::default(),
    };
    for (name, org) in spec
        .orgs
        .iter()
        .filter(|(_, o)| matches!(o.connection, OrgConnection::Simulator))
    {
        let mut o = OrgConfig::demo(name);
        o.org_id = org.org_id.as_ref().map(|id| id.value.clone());
        for relay in spec.relays.values().filter(|r| r.org.value == *name) {
            for e in &relay.events {
                if e.ends_with("__e") {
                    let fields = o.platform_events.entry(e.value.clone()).or_default();
                    if !fields.iter().any(|f| f == SIM_EVENT_FIELD) {
                        fields.push(SIM_EVENT_FIELD.to_owned());
                    }
                } else if let Some(entity) = e.strip_suffix("ChangeEvent") {
                    let entity = entity
                        .strip_suffix("__")
                        .map_or_else(|| entity.to_owned(), |c| format!("{c}__c"));
                    o.cdc_entities
                        .entry(entity)
                        .or_insert_with(|| vec!["Name".to_owned()]);
                }
            }
        }
        config.orgs.push(o);
    }
    // One simulated account per account id, with the destination buses the spec's relays name (they
    // are the user's, not relayform's: in the embedded world they exist from the start).
    let mut accounts: BTreeMap<String, AccountConfig> = BTreeMap::new();
    for a in spec
        .aws_accounts
        .values()
        .filter(|a| matches!(a.connection, AwsConnection::Simulator))
    {
        accounts
            .entry(a.account_id.value.clone())
            .or_insert_with(|| AccountConfig {
                account_id: a.account_id.value.clone(),
                access_keys: Vec::new(),
                event_buses: Vec::new(),
            });
    }
    for r in spec.relays.values() {
        let Some(d) = &r.destination else { continue };
        let d = &d.value;
        if let Some(acct) = accounts.get_mut(&d.account_id) {
            let bus = BusConfig {
                region: d.region.clone(),
                name: d.bus_name.clone(),
            };
            if !acct.event_buses.contains(&bus) {
                acct.event_buses.push(bus);
            }
        }
    }
    config.aws_accounts = accounts.into_values().collect();
    config
}

/// Starts the embedded simulator when the spec uses it.
pub(crate) async fn embedded(
    spec: &Spec,
    state: &Path,
    settings: Option<&Path>,
    preload: Option<std::sync::Arc<relayform_simulator::store::Preload>>,
) -> anyhow::Result<Option<relayform_simulator::Running>> {
    if !uses_simulator(spec) {
        return Ok(None);
    }
    let mut config = simulator_config(spec);
    if let Some(path) = settings {
        let text = crate::load::read_small(path, 1 << 20)
            .with_context(|| format!("cannot read the simulator settings `{}`", path.display()))?;
        config.settings = relayform_simulator::config::Settings::from_yaml(&text).map_err(|e| {
            anyhow::anyhow!(
                "the simulator settings `{}` are not valid: {e}\nhint: see the Configuration section of simulator/README.md",
                path.display()
            )
        })?;
    }
    let running = relayform_simulator::start(relayform_simulator::Options {
        config,
        state_file: Some(state.to_owned()),
        override_settings: settings.is_some(),
        preload,
        ..Default::default()
    })
    .await
    .map_err(|e| {
        let e = e.to_string();
        let more = if e.contains("is in use by") {
            "\nhint: to use the world a `relayform sim serve` serves, put the `instance_url` and `endpoint_url` it printed in the spec instead of `simulator: true`; for a world of this run's own, pass `--simulator-state FILE`"
        } else {
            ""
        };
        anyhow::anyhow!("cannot start the embedded simulator: {e}{more}")
    })?;
    for (name, _) in spec
        .orgs
        .iter()
        .filter(|(_, o)| matches!(o.connection, OrgConnection::Simulator))
    {
        if running.instance_url(name).is_none() {
            bail!(
                "the embedded simulator's state in {} has no org `{name}`\nhint: it was made for another spec; remove the file to start afresh",
                state.display()
            );
        }
    }
    Ok(Some(running))
}

fn secret(r: &SecretRef, what: &str) -> anyhow::Result<Secret> {
    match r {
        SecretRef::Env(var) => std::env::var(var)
            .map(Secret::new)
            .map_err(|_| anyhow::anyhow!("{what}: the environment variable {var} is not set\nhint: export {var}, or change the reference in the spec")),
        SecretRef::File(path) => {
            let path = expand_home(path);
            crate::load::read_small(&path, 1 << 20)
                .map(|s| Secret::new(s.trim_end()))
                .with_context(|| format!("{what}: cannot read the secret file {}", path.display()))
        }
    }
}

fn expand_home(path: &str) -> std::path::PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => path.into(),
    }
}

/// A Salesforce client for a spec org.
pub(crate) fn salesforce(
    spec: &Spec,
    org: &str,
    sim: Option<&relayform_simulator::Running>,
    patience: Patience,
) -> anyhow::Result<Client> {
    let o = &spec.orgs[org];
    let source: Arc<dyn relayform_salesforce::TokenSource> = match &o.connection {
        OrgConnection::Simulator => {
            let sim = sim.context("the embedded simulator is not running")?;
            let url = sim
                .instance_url(org)
                .with_context(|| format!("the embedded simulator has no org `{org}`"))?;
            let client_id = if org == "demo" {
                relayform_simulator::config::DEMO_CLIENT_ID.to_owned()
            } else {
                format!("relayform-{org}-client")
            };
            Arc::new(
                OAuth::new(
                    &url,
                    Grant::ClientCredentials {
                        client_id,
                        client_secret: Secret::new(DEMO_CLIENT_SECRET),
                    },
                )
                .with_patience(patience),
            )
        }
        OrgConnection::Remote { instance_url, auth } => {
            let what = format!("org `{org}`");
            match auth {
                SalesforceAuth::ClientCredentials {
                    client_id,
                    client_secret,
                } => Arc::new(
                    OAuth::new(
                        instance_url,
                        Grant::ClientCredentials {
                            client_id: client_id.clone(),
                            client_secret: secret(client_secret, &what)?,
                        },
                    )
                    .with_patience(patience),
                ),
                SalesforceAuth::RefreshToken {
                    client_id,
                    client_secret,
                    refresh_token,
                } => Arc::new(
                    OAuth::new(
                        instance_url,
                        Grant::RefreshToken {
                            client_id: client_id.clone(),
                            client_secret: client_secret
                                .as_ref()
                                .map(|s| secret(s, &what))
                                .transpose()?,
                            refresh_token: secret(refresh_token, &what)?,
                        },
                    )
                    .with_patience(patience),
                ),
                SalesforceAuth::AccessToken { token } => Arc::new(StaticToken(Session {
                    access_token: secret(token, &what)?,
                    instance_url: instance_url.value.clone(),
                })),
                SalesforceAuth::JwtBearer {
                    client_id,
                    username,
                    private_key,
                    login_url,
                } => {
                    // The token endpoint is under the login host if one is given, else the org's
                    // My Domain; the audience is the login host (production by default, the
                    // sandbox login host for a sandbox My Domain).
                    let audience = login_url
                        .clone()
                        .unwrap_or_else(|| jwt_audience(&instance_url.value).to_owned());
                    let endpoint = login_url.as_deref().unwrap_or(&instance_url.value);
                    Arc::new(
                        OAuth::new(
                            endpoint,
                            Grant::JwtBearer {
                                client_id: client_id.clone(),
                                username: username.clone(),
                                private_key: secret(private_key, &what)?,
                                audience,
                            },
                        )
                        .with_patience(patience),
                    )
                }
                SalesforceAuth::SfCli { alias } => Arc::new(
                    SfCli::new(
                        std::env::var("RELAYFORM_SF_CLI").unwrap_or_else(|_| "sf".to_owned()),
                        alias.clone(),
                    )
                    .with_patience(patience),
                ),
            }
        }
    };
    Ok(Client::new(source).with_patience(patience))
}

/// Where and how to reach a spec account.
pub(crate) fn target(
    spec: &Spec,
    account: &str,
    sim: Option<&relayform_simulator::Running>,
    patience: Patience,
) -> anyhow::Result<Target> {
    let a = &spec.aws_accounts[account];
    let target = match &a.connection {
        AwsConnection::Simulator => Target {
            region: a.region.value.clone(),
            endpoint_url: Some(
                sim.context("the embedded simulator is not running")?
                    .urls
                    .aws_endpoint
                    .clone(),
            ),
            // The simulator takes a 12-digit access key as the account it names.
            credentials: Credentials::Static {
                access_key_id: a.account_id.value.clone(),
                secret_access_key: Secret::new("simulator"),
            },
            config_file: None,
            patience,
        },
        AwsConnection::Remote {
            credentials,
            endpoint_url,
        } => Target {
            region: a.region.value.clone(),
            endpoint_url: endpoint_url.as_ref().map(|u| u.value.clone()),
            credentials: match credentials {
                AwsCredentials::DefaultChain => Credentials::DefaultChain,
                AwsCredentials::Profile(p) => Credentials::Profile(p.clone()),
                AwsCredentials::AssumeRole {
                    role_arn,
                    external_id,
                    session_name,
                    source_profile,
                } => Credentials::AssumeRole {
                    role_arn: role_arn.clone(),
                    external_id: external_id.clone(),
                    session_name: session_name.clone(),
                    source_profile: source_profile.clone(),
                },
            },
            config_file: None,
            patience,
        },
    };
    Ok(target)
}

/// Connects to every org and account the spec names (nothing is called yet). One that cannot be set
/// up (a secret missing, a file unreadable) is returned with why, in `failed`, and left out: the
/// others go on.
pub(crate) async fn connect(
    spec: &Spec,
    sim: Option<&relayform_simulator::Running>,
    patience: Patience,
) -> Connections {
    let mut conn = Connections::default();
    for name in spec.orgs.keys() {
        match salesforce(spec, name, sim, patience) {
            Ok(client) => {
                conn.orgs.insert(name.clone(), client);
            }
            Err(e) => {
                conn.failed_orgs.insert(name.clone(), format!("{e:#}"));
            }
        }
    }
    for name in spec.aws_accounts.keys() {
        let t = match target(spec, name, sim, patience) {
            Ok(t) => t,
            Err(e) => {
                conn.failed_accounts.insert(name.clone(), format!("{e:#}"));
                continue;
            }
        };
        conn.accounts
            .insert(name.clone(), Aws::connect(&t, None).await);
        conn.targets
            .insert(spec.aws_accounts[name].account_id.value.clone(), t);
    }
    conn
}

/// How many orgs, and then accounts, are read at once.
pub(crate) const REFRESH_CONCURRENCY: usize = 16;

/// The orgs and accounts a scoped command reads. With `--target`: the orgs and accounts of the
/// targets and what they depend on. With `--org` alone: those orgs, the accounts their relays use,
/// and the accounts of their destination buses. An org out of reach, healthy or not, is neither
/// read nor waited for. A target the spec does not hold (a resource to delete) reads everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reach {
    pub orgs: std::collections::BTreeSet<String>,
    pub accounts: std::collections::BTreeSet<String>,
}

/// What `--org` and `--target` reach: the orgs and accounts to read (`None`: all of them). A target
/// the desired graph does not hold is reached through what its key names (a relay of the spec, or
/// the org or account of a shared credential or role): the plan may still hold a change for it (a
/// delete). One that names nothing of the spec is `Err(target)`, before anything is read.
pub(crate) fn reach(
    spec: &Spec,
    orgs: &[String],
    targets: &[String],
) -> Result<Option<Reach>, String> {
    use relayform_plan::Kind;
    if !targets.is_empty() {
        let graph = relayform_plan::desired(spec);
        let mut r = Reach::default();
        for t in targets {
            let a: relayform_plan::Address = t.parse().map_err(|_| t.clone())?;
            if graph.get(&a).is_none() {
                let first = a.owner();
                match a.kind {
                    Kind::NamedCredential if spec.orgs.contains_key(first) => {
                        r.orgs.insert(first.to_owned());
                    }
                    Kind::Role | Kind::BusPolicy if spec.aws_accounts.contains_key(first) => {
                        r.accounts.insert(first.to_owned());
                    }
                    _ => match spec.relays.get(first) {
                        Some(relay) => {
                            r.orgs.insert(relay.org.value.clone());
                            r.accounts.insert(relay.aws_account.value.clone());
                        }
                        None => return Err(t.clone()),
                    },
                }
                continue;
            }
            for dep in graph
                .with_dependencies(std::slice::from_ref(&a))
                .into_iter()
                .chain([a])
            {
                match graph.get(&dep).map(|res| res.desired.owner()) {
                    Some((Some(org), _)) => r.orgs.insert(org.to_owned()),
                    Some((_, Some(account))) => r.accounts.insert(account.to_owned()),
                    _ => false,
                };
            }
        }
        return Ok(Some(r));
    }
    if orgs.is_empty() {
        return Ok(None);
    }
    let mut r = Reach {
        orgs: orgs.iter().cloned().collect(),
        ..Reach::default()
    };
    for relay in spec
        .relays
        .values()
        .filter(|x| r.orgs.contains(&x.org.value))
    {
        r.accounts.insert(relay.aws_account.value.clone());
        if let Some(account) =
            relayform_plan::desired::cross_destination(spec, relay).and_then(|c| c.account)
        {
            r.accounts.insert(account);
        }
    }
    Ok(Some(r))
}

/// Reads every org and account the spec names (or those within `reach`), at most
/// [`REFRESH_CONCURRENCY`] orgs and as many accounts at a time; checks pinned org and account ids.
/// Org and account reads overlap: an account lists its partner sources and buses at once, and waits
/// only for the orgs whose relays it serves before it reads their forwarding rules (each relay's
/// partner bus is named by its org). An org or account that cannot be read (unreachable,
/// credentials refused, another org than pinned) is returned in `Observed::unread_orgs`/
/// `unread_accounts` with why, and the planner leaves out what needs it: the others are planned and
/// applied.
pub(crate) async fn refresh(
    spec: &Spec,
    conn: &Connections,
    reach: Option<&Reach>,
    err: &mut dyn Write,
) -> anyhow::Result<Observed> {
    use futures_util::future::{BoxFuture, FutureExt, Shared};
    type OrgRead = Shared<BoxFuture<'static, Result<relayform_provider::ObservedOrg, String>>>;
    let org_bound = Arc::new(tokio::sync::Semaphore::new(REFRESH_CONCURRENCY));
    let account_bound = Arc::new(tokio::sync::Semaphore::new(REFRESH_CONCURRENCY));
    let in_reach_org = |n: &String| reach.is_none_or(|r| r.orgs.contains(n));
    let in_reach_account = |n: &String| reach.is_none_or(|r| r.accounts.contains(n));
    let mut unread_orgs: BTreeMap<String, String> = conn
        .failed_orgs
        .iter()
        .filter(|(n, _)| in_reach_org(n))
        .map(|(n, e)| (n.clone(), e.clone()))
        .collect();
    let mut unread_accounts: BTreeMap<String, String> = conn
        .failed_accounts
        .iter()
        .filter(|(n, _)| in_reach_account(n))
        .map(|(n, e)| (n.clone(), e.clone()))
        .collect();
    let mut org_reads: BTreeMap<String, OrgRead> = BTreeMap::new();
    for name in spec
        .orgs
        .keys()
        .filter(|n| in_reach_org(n) && conn.orgs.contains_key(*n))
    {
        let client = conn.orgs[name].clone();
        let (key, name, pinned) = (name.clone(), name.clone(), spec.orgs[name].org_id.clone());
        let bound = org_bound.clone();
        let task = tokio::spawn(async move {
            let _permit = bound.acquire_owned().await;
            let seen = relayform_salesforce::observe_org(&client)
                .await
                .map_err(|e| {
                    let hint = match e.kind {
                        relayform_provider::ErrorKind::Unauthorized => format!("\nhint: the org refused relayform's credentials: check `auth` of org `{name}` in the spec and the secret it refers to"),
                        relayform_provider::ErrorKind::Transient => format!("\nhint: org `{name}` could not be reached: check its instance_url and the network, then run again"),
                        _ => String::new(),
                    };
                    format!("cannot read org `{name}`: {e}{hint}")
                })?;
            if let Some(pin) = pinned
                && seen.org_id.get(..15) != pin.value.get(..15)
            {
                return Err(format!(
                    "org `{name}` is {}, but the spec pins it to {} ({})\nhint: the credentials reach another org; nothing was read further or changed there",
                    seen.org_id, pin.value, pin.at
                ));
            }
            Ok(seen)
        });
        let read = async move {
            task.await
                .unwrap_or_else(|e| Err(format!("reading the org stopped unexpectedly: {e}")))
        };
        org_reads.insert(key, read.boxed().shared());
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (name, a) in spec
        .aws_accounts
        .iter()
        .filter(|(n, _)| in_reach_account(n) && conn.accounts.contains_key(*n))
    {
        // What to read of each relay of this account, once its org is read: (org, relay name,
        // forwarded?); and the roles.
        let mut relays: Vec<(String, String, bool)> = Vec::new();
        let mut roles: Vec<(String, String)> = Vec::new();
        for r in spec
            .relays
            .values()
            .filter(|r| r.aws_account.value == *name)
        {
            relays.push((
                r.org.value.clone(),
                r.names.relay.clone(),
                r.destination.is_some(),
            ));
            // Present relays need their role read, absent ones to know whether it is there to remove.
            if let Some(role) = &r.names.role
                && !roles.iter().any(|(x, _)| x == role)
            {
                roles.push((role.clone(), ROLE_POLICY.to_owned()));
            }
        }
        let needed: Vec<(String, OrgRead)> = org_reads
            .iter()
            .filter(|(o, _)| relays.iter().any(|(ro, _, _)| ro == *o))
            .map(|(o, f)| (o.clone(), f.clone()))
            .collect();
        // Destination buses in this account that relays of other accounts or regions send to: their
        // resource policies, read where each bus is.
        let mut policies: Vec<(String, String)> = Vec::new();
        for r in spec.relays.values() {
            if let Some(c) = relayform_plan::desired::cross_destination(spec, r)
                && c.account.as_deref() == Some(name.as_str())
                && !policies.contains(&(c.region.clone(), c.bus.clone()))
            {
                policies.push((c.region, c.bus));
            }
        }
        let target = conn.targets.get(&a.account_id.value).cloned();
        let conn = conn.accounts[name].clone();
        let (name, account_id) = (name.clone(), a.account_id.value.clone());
        let bound = account_bound.clone();
        tasks.spawn(async move {
            let _permit = bound.acquire_owned().await;
            let read = async {
                conn.pin(&account_id).await.map_err(|e| {
                    let hint = match e.kind {
                        _ if e.message.contains("\nhint: ") => String::new(),
                        relayform_provider::ErrorKind::Unauthorized => format!("\nhint: check the credentials of AWS account `{name}` in the spec (profile, role, or the default chain's environment)"),
                        relayform_provider::ErrorKind::Transient => format!("\nhint: AWS could not be reached for account `{name}`: check its region, endpoint_url and the network"),
                        _ => String::new(),
                    };
                    anyhow::anyhow!("cannot use AWS account `{name}`: {e}{hint}")
                })?;
                let mut seen = relayform_aws::observe::observe_lists(&conn, &account_id)
                    .await
                    .with_context(|| format!("cannot read AWS account `{name}`"))?;
                // The orgs this account's relays live in: their partner buses' names.
                let mut orgs = BTreeMap::new();
                for (o, read) in needed {
                    if let Ok(seen) = read.await {
                        orgs.insert(o, seen);
                    }
                }
                let mut interest = Interest {
                    roles,
                    ..Interest::default()
                };
                for (org, relay, forwarded) in &relays {
                    let source = orgs.get(org).and_then(|o: &relayform_provider::ObservedOrg| {
                        o.relays
                            .iter()
                            .find(|x| &x.name == relay)
                            .and_then(|x| x.remote_resource.clone())
                    });
                    if let (Some(src), true) = (source, forwarded) {
                        interest.forwarding.push((src, FORWARD_RULE.to_owned()));
                    }
                }
                relayform_aws::observe::observe_interest(&conn, &mut seen, &interest)
                    .await
                    .with_context(|| format!("cannot read AWS account `{name}`"))?;
                for (region, bus) in &policies {
                    let regional = match &target {
                        Some(t) if *region != conn.region => {
                            Aws::connect(&relayform_aws::Target { region: region.clone(), ..t.clone() }, None).await
                        }
                        _ => conn.clone(),
                    };
                    let p = relayform_aws::observe::bus_policy(&regional, bus)
                        .await
                        .with_context(|| format!("cannot read the policy of bus {bus} ({region}) in AWS account `{name}`"))?;
                    seen.bus_policies.push(p);
                }
                Ok::<_, anyhow::Error>(seen)
            };
            let result = read.await;
            (name, result)
        });
    }
    let mut orgs = BTreeMap::new();
    for (name, read) in org_reads {
        match read.await {
            Ok(seen) => {
                orgs.insert(name, seen);
            }
            Err(e) => {
                unread_orgs.insert(name, e);
            }
        }
    }
    let mut accounts = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.context("reading an AWS account stopped unexpectedly")? {
            (name, Ok(seen)) => {
                accounts.insert(name, seen);
            }
            (name, Err(e)) => {
                unread_accounts.insert(name, format!("{e:#}"));
            }
        }
    }
    let unread = unread_orgs.len() + unread_accounts.len();
    writeln!(
        err,
        "read {} org(s) and {} AWS account(s){}",
        orgs.len(),
        accounts.len(),
        if unread > 0 {
            format!("; {unread} could not be read (see the plan)")
        } else {
            String::new()
        }
    )?;
    Ok(Observed {
        orgs,
        accounts,
        unread_orgs,
        unread_accounts,
    })
}

/// The JWT bearer audience for an org reached at `instance_url` when the spec names no login host:
/// Salesforce accepts `https://login.salesforce.com` for production and `https://test.salesforce.com`
/// for sandboxes, whose My Domain hosts are `<name>--<sandbox>.sandbox.my.salesforce.com`.
pub(crate) fn jwt_audience(instance_url: &str) -> &'static str {
    let host = instance_url
        .split_once("://")
        .map_or(instance_url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if host.ends_with(".sandbox.my.salesforce.com") || host.ends_with(".cs.my.salesforce.com") {
        "https://test.salesforce.com"
    } else {
        "https://login.salesforce.com"
    }
}

#[cfg(test)]
mod audience_tests {
    use super::jwt_audience;

    #[test]
    fn sandboxes_get_the_sandbox_login_host() {
        assert_eq!(
            jwt_audience("https://acme--uat.sandbox.my.salesforce.com"),
            "https://test.salesforce.com"
        );
        assert_eq!(
            jwt_audience("https://ACME--UAT.Sandbox.My.Salesforce.com/"),
            "https://test.salesforce.com"
        );
        assert_eq!(
            jwt_audience("https://acme.my.salesforce.com"),
            "https://login.salesforce.com"
        );
        assert_eq!(
            jwt_audience("http://127.0.0.1:4599/sf/demo"),
            "https://login.salesforce.com"
        );
    }
}
