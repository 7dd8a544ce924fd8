//! Checks across files: merging, duplicate names, references, derived and shared names.

use crate::decode::{DestinationDecl, FileDecls, Kind, RelayDecl};
use crate::diagnostic::{Diagnostic, Location};
use crate::model::*;
use crate::names;
use crate::rules;
use std::collections::BTreeMap;

/// Merges the declarations of all files into one spec, reporting what does not fit together.
pub(crate) fn merge(files: Vec<FileDecls>, diagnostics: &mut Vec<Diagnostic>) -> Spec {
    let mut spec = Spec::default();
    // Names are unique per kind across all files; the first declaration wins.
    let mut declared: BTreeMap<(Kind, String), Location> = BTreeMap::new();
    let mut relay_decls: BTreeMap<String, RelayDecl> = BTreeMap::new();
    for file in files {
        for (kind, name, at) in file.declared {
            match declared.get(&(kind, name.clone())) {
                Some(first) => diagnostics.push(duplicate(kind, &name, &at, first)),
                None => {
                    declared.insert((kind, name), at);
                }
            }
        }
        let first = |kind: Kind, name: &str, at: &Location| {
            declared.get(&(kind, name.to_owned())) == Some(at)
        };
        for org in file.orgs {
            if first(Kind::Org, &org.name, &org.at) {
                spec.orgs.insert(org.name.clone(), org);
            }
        }
        for acct in file.aws_accounts {
            if first(Kind::AwsAccount, &acct.name, &acct.at) {
                spec.aws_accounts.insert(acct.name.clone(), acct);
            }
        }
        for relay in file.relays {
            if first(Kind::Relay, &relay.name, &relay.at) {
                relay_decls.insert(relay.name.clone(), relay);
            }
        }
    }
    let known = |kind: Kind, name: &str| declared.contains_key(&(kind, name.to_owned()));
    same_org_twice(&spec, diagnostics);
    for (name, decl) in relay_decls {
        if let Some(relay) = resolve(&spec, decl, &known, diagnostics) {
            spec.relays.insert(name, relay);
        }
    }
    shared_names(&spec, diagnostics);
    spec
}

fn duplicate(kind: Kind, name: &str, at: &Location, first: &Location) -> Diagnostic {
    let kind = match kind {
        Kind::Org => "org",
        Kind::AwsAccount => "aws account",
        Kind::Relay => "relay",
    };
    Diagnostic::error(
        "duplicate-name",
        at.clone(),
        format!("{kind} `{name}` is declared twice (first at {first})"),
    )
    .with_hint(format!(
        "rename one of them: {kind} names are unique across all spec files"
    ))
}

fn same_org_twice(spec: &Spec, diagnostics: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<String, &Org> = BTreeMap::new();
    for org in spec.orgs.values() {
        let Some(id) = &org.org_id else { continue };
        let key = id.value[..15].to_owned();
        if let Some(first) = seen.get(&key) {
            diagnostics.push(
                Diagnostic::error(
                    "duplicate-org",
                    id.at.clone(),
                    format!(
                        "org `{}` has the same org id as org `{}`",
                        org.name, first.name
                    ),
                )
                .with_hint("declare each org once and point every relay of it at that one name"),
            );
        } else {
            seen.insert(key, org);
        }
    }
}

fn dangling(kind: &str, section: &str, r: &Located<String>, known: Vec<&str>) -> Diagnostic {
    let hint = match rules::did_you_mean(r, known.iter().copied()) {
        Some(m) => format!("did you mean `{m}`?"),
        None if known.is_empty() => format!("declare it under `{section}`"),
        None => format!(
            "declare it under `{section}`, or use one of: {}",
            known.join(", ")
        ),
    };
    Diagnostic::error(
        "dangling-reference",
        r.at.clone(),
        format!("{kind} `{}` is not declared", r.value),
    )
    .with_hint(hint)
}

/// Resolves a relay's references and derives its names.
fn resolve(
    spec: &Spec,
    decl: RelayDecl,
    known: &dyn Fn(Kind, &str) -> bool,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Relay> {
    // A reference to a declaration that has errors of its own is not reported again.
    let org = decl
        .org
        .as_ref()
        .and_then(|r| match spec.orgs.get(&r.value) {
            Some(o) => Some(o),
            None if known(Kind::Org, r) => None,
            None => {
                diagnostics.push(dangling(
                    "org",
                    "orgs",
                    r,
                    spec.orgs.keys().map(String::as_str).collect(),
                ));
                None
            }
        });
    let account = decl
        .aws_account
        .as_ref()
        .and_then(|r| match spec.aws_accounts.get(&r.value) {
            Some(a) => Some(a),
            None if known(Kind::AwsAccount, r) => None,
            None => {
                let known = spec.aws_accounts.keys().map(String::as_str).collect();
                diagnostics.push(dangling("aws account", "aws_accounts", r, known));
                None
            }
        });
    let (org, account) = (org?, account?);
    let on_sim = |o: &Org| matches!(o.connection, OrgConnection::Simulator);
    let acct_sim = matches!(account.connection, AwsConnection::Simulator);
    if on_sim(org) != acct_sim {
        diagnostics.push(
            Diagnostic::error(
                "mixed-simulator",
                decl.at.clone(),
                format!(
                    "relay `{}` joins {} org to {} AWS account",
                    decl.name,
                    if on_sim(org) { "a simulated" } else { "a real" },
                    if acct_sim { "a simulated" } else { "a real" },
                ),
            )
            .with_hint("a simulated org can only relay to a simulated account, and a real one to a real one"),
        );
    }
    let destination = decl.destination.map(|d| match d {
        DestinationDecl::Name(n) => Located::new(
            Destination {
                account_id: account.account_id.value.clone(),
                region: account.region.value.clone(),
                bus_name: n.value,
            },
            n.at,
        ),
        DestinationDecl::Arn(a) => a,
    });
    let relay_name = decl
        .names
        .relay
        .map(|n| n.value)
        .unwrap_or_else(|| names::api_name(&decl.name));
    let channel = decl
        .names
        .channel
        .map(|n| n.value)
        .unwrap_or_else(|| relay_name.clone());
    let named_credential = decl
        .names
        .named_credential
        .map(|n| n.value)
        .unwrap_or_else(|| names::named_credential(&account.account_id, &account.region));
    let role = destination.as_ref().map(|d| {
        decl.names
            .role
            .clone()
            .map(|n| n.value)
            .unwrap_or_else(|| names::role(&account.account_id, d))
    });
    for event in &decl.events {
        let member = names::channel_member(&channel, event);
        if member.len() > 80 {
            diagnostics.push(
                Diagnostic::error(
                    "name-too-long",
                    event.at.clone(),
                    format!("the channel member name `{member}` for this event would be {} characters (80 at most)", member.len()),
                )
                .with_hint("give the relay a shorter channel name under `names: {channel: ...}`"),
            );
        }
    }
    Some(Relay {
        name: decl.name,
        at: decl.at,
        org: decl.org?,
        aws_account: decl.aws_account?,
        channel_type: decl.channel_type?,
        events: decl.events,
        error_recovery: decl.error_recovery?,
        state: decl.state,
        destination,
        ensure: decl.ensure,
        names: RelayNames {
            relay: relay_name,
            channel,
            named_credential,
            role,
        },
    })
}

/// Names that must be unique, or shared only by objects that agree: relays and channels per org,
/// named credentials per org (one account and region each), roles per account (one destination each).
/// Names are compared the way the vendor compares them: Salesforce API names and IAM role names
/// ignore case (`orders` and `Orders` are one role), so the maps are keyed by the lowercased name.
fn shared_names(spec: &Spec, diagnostics: &mut Vec<Diagnostic>) {
    let mut relays: BTreeMap<(&str, String), &Relay> = BTreeMap::new();
    let mut channels: BTreeMap<(&str, String), &Relay> = BTreeMap::new();
    // (org, name) → the first relay using it and its (account id, region).
    type Target<'a> = (&'a str, &'a str);
    let mut credentials: BTreeMap<(&str, String), (&Relay, Target<'_>)> = BTreeMap::new();
    let mut roles: BTreeMap<(&str, String), (&Relay, &Destination)> = BTreeMap::new();
    // Said after a clash of two names that differ only in case.
    let by_case = |vendor: &str, first: &str, this: &str| {
        if first == this {
            String::new()
        } else {
            format!(" (`{first}` and `{this}` differ only in case, which {vendor} ignores)")
        }
    };
    for relay in spec.relays.values() {
        let org = relay.org.value.as_str();
        let relay_clash = relays.insert((org, relay.names.relay.to_lowercase()), relay);
        if let Some(first) = relay_clash {
            diagnostics.push(
                Diagnostic::error(
                    "duplicate-name",
                    relay.at.clone(),
                    format!(
                        "relays `{}` and `{}` would both be named `{}` in org `{org}`{}",
                        first.name,
                        relay.name,
                        first.names.relay,
                        by_case("Salesforce", &first.names.relay, &relay.names.relay)
                    ),
                )
                .with_hint("rename one of the relays, or set `names: {relay: ...}` on one"),
            );
        }
        // Channels derived from clashing relay names clash too: one root cause, one report.
        let channel_clash = channels.insert((org, relay.names.channel.to_lowercase()), relay);
        if let (Some(first), None) = (channel_clash, relay_clash) {
            diagnostics.push(
                Diagnostic::error(
                    "shared-channel",
                    relay.at.clone(),
                    format!(
                        "relays `{}` and `{}` use the same channel `{}` in org `{org}`{}; a channel backs one relay",
                        first.name,
                        relay.name,
                        names::channel_full_name(&first.names.channel),
                        by_case(
                            "Salesforce",
                            &names::channel_full_name(&first.names.channel),
                            &names::channel_full_name(&relay.names.channel)
                        )
                    ),
                )
                .with_hint("give one of them its own channel under `names: {channel: ...}`, or merge their events into one relay"),
            );
        }
        let account = &spec.aws_accounts[&relay.aws_account.value];
        let target = (
            account.account_id.value.as_str(),
            account.region.value.as_str(),
        );
        let credential = (org, relay.names.named_credential.to_lowercase());
        match credentials.get(&credential) {
            Some((first, t)) if *t != target || first.names.named_credential != relay.names.named_credential => diagnostics.push(
                Diagnostic::error(
                    "shared-credential",
                    relay.at.clone(),
                    format!(
                        "relays `{}` and `{}` name the same named credential `{}`{}{}",
                        first.name,
                        relay.name,
                        first.names.named_credential,
                        if *t != target { " for different AWS accounts or regions" } else { "" },
                        by_case("Salesforce", &first.names.named_credential, &relay.names.named_credential)
                    ),
                )
                .with_hint("a named credential points at one account and region and has one spelling; give this relay another `names: {named_credential: ...}`, or spell both alike"),
            ),
            Some(_) => {}
            None => {
                credentials.insert(credential, (relay, target));
            }
        }
        if let (Some(role), Some(dest)) = (&relay.names.role, &relay.destination) {
            let key = (target.0, role.to_lowercase());
            match roles.get(&key) {
                Some((first, d)) if *d != &dest.value || first.names.role.as_deref() != Some(role.as_str()) => diagnostics.push(
                    Diagnostic::error(
                        "shared-role",
                        relay.at.clone(),
                        format!(
                            "relays `{}` and `{}` name the same IAM role `{}`{}{}",
                            first.name,
                            relay.name,
                            first.names.role.as_deref().unwrap_or_default(),
                            if *d != &dest.value { " for different destination buses" } else { "" },
                            by_case("IAM", first.names.role.as_deref().unwrap_or_default(), role)
                        ),
                    )
                    .with_hint("a forwarding role allows one destination; give this relay another `names: {role: ...}`"),
                ),
                Some(_) => {}
                None => {
                    roles.insert(key, (relay, &dest.value));
                }
            }
        }
    }
}
