//! How relayform names the objects it creates, when the spec does not name them.
//!
//! The rules are part of the spec language (changing one would make relayform look for objects under
//! new names), so they are documented in `docs/spec.md` and pinned by tests:
//!
//! | object | rule | example (relay `order-events`, account `123456789012`, `eu-west-1`) |
//! |---|---|---|
//! | relay (`EventRelayConfig`) | the relay's spec name, `-` → `_`, runs of `_` folded | `order_events` |
//! | channel (`PlatformEventChannel`) | the relay's API name; full name adds `__chn` | `order_events__chn` |
//! | channel member | `<channel>_chn_<event>`, `__` folded to `_` | `order_events_chn_Order_Placed_e` |
//! | named credential | `Relayform_<account>_<region>`, `-` → `_` | `Relayform_123456789012_eu_west_1` |
//! | IAM role (with a destination) | `relayform-<region>-<bus>`, with `<account>-` before the region when the bus is in another account; over 64 characters: cut to 55 and `-` + 8 hex digits of a hash | `relayform-eu-west-1-orders` |
//!
//! One named credential serves every relay of an org to the same account and region; one role serves
//! every relay forwarding to the same destination bus from the same account.

use crate::model::Destination;

/// Folds a spec name into a Salesforce API name: `-` becomes `_`, runs of `_` fold into one, and a
/// trailing `_` is dropped. Spec names start with a letter, so the result is a valid API name.
pub fn api_name(spec_name: &str) -> String {
    fold_underscores(&spec_name.replace('-', "_"))
}

fn fold_underscores(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    out.trim_end_matches('_').to_owned()
}

/// The name of relayform's rule on a partner bus.
pub const FORWARD_RULE: &str = "relayform-forward";
/// The id of the rule's one target (the destination bus).
pub const FORWARD_TARGET: &str = "destination";
/// The name of the forwarding role's inline policy.
pub const ROLE_POLICY: &str = "relayform-forward";

/// The channel's full name, as the relay's `eventChannel` refers to it.
pub fn channel_full_name(channel: &str) -> String {
    format!("{channel}__chn")
}

/// The DeveloperName of the channel member that selects `event` on `channel`.
pub fn channel_member(channel: &str, event: &str) -> String {
    fold_underscores(&format!("{channel}_chn_{event}"))
}

pub fn named_credential(account_id: &str, region: &str) -> String {
    format!("Relayform_{account_id}_{}", region.replace('-', "_"))
}

/// The Salesforce named credential endpoint for an account and region: `arn:aws:<REGION>:<account>`.
pub fn named_credential_endpoint(account_id: &str, region: &str) -> String {
    format!("arn:aws:{}:{account_id}", region.to_ascii_uppercase())
}

/// The account and region a relay named credential's endpoint names (`arn:aws:<REGION>:<account>`),
/// the region in lower case as AWS writes it.
pub fn parse_named_credential_endpoint(endpoint: &str) -> Option<(String, String)> {
    let rest = endpoint.strip_prefix("arn:aws:")?;
    let (region, account) = rest.split_once(':')?;
    Some((region.to_lowercase(), account.to_owned()))
}

/// The forwarding role for relays of account `from_account` that forward to `destination`.
pub fn role(from_account: &str, destination: &Destination) -> String {
    let name = if destination.account_id == from_account {
        format!("relayform-{}-{}", destination.region, destination.bus_name)
    } else {
        format!(
            "relayform-{}-{}-{}",
            destination.account_id, destination.region, destination.bus_name
        )
    };
    if name.len() <= 64 {
        return name;
    }
    format!("{}-{:08x}", &name[..55], fnv1a(name.as_bytes()))
}

/// 64-bit FNV-1a: stable across versions and platforms; relayform's fingerprints and digests.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h: u64, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// 32-bit FNV-1a: small, stable across versions and platforms, good enough to keep cut names apart.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(account: &str, bus: &str) -> Destination {
        Destination {
            account_id: account.into(),
            region: "eu-west-1".into(),
            bus_name: bus.into(),
        }
    }

    #[test]
    fn derived_names() {
        assert_eq!(api_name("order-events"), "order_events");
        assert_eq!(api_name("a--b__c_"), "a_b_c");
        assert_eq!(channel_full_name("order_events"), "order_events__chn");
        assert_eq!(
            channel_member("order_events", "Order_Placed__e"),
            "order_events_chn_Order_Placed_e"
        );
        assert_eq!(
            named_credential("123456789012", "eu-west-1"),
            "Relayform_123456789012_eu_west_1"
        );
        assert_eq!(
            named_credential_endpoint("123456789012", "eu-west-1"),
            "arn:aws:EU-WEST-1:123456789012"
        );
        assert_eq!(
            role("123456789012", &dest("123456789012", "orders")),
            "relayform-eu-west-1-orders"
        );
        assert_eq!(
            role("111111111111", &dest("123456789012", "orders")),
            "relayform-123456789012-eu-west-1-orders"
        );
    }

    #[test]
    fn long_role_names_are_cut_and_kept_apart() {
        let a = role("1", &dest("123456789012", &"x".repeat(80)));
        let b = role("1", &dest("123456789012", &format!("{}y", "x".repeat(79))));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(crate::rules::role_name(&a).is_ok());
    }
}
