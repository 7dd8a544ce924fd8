//! The resources a relay is made of, with their desired attributes.

use crate::graph::Keyed;
use relayform_spec::{ChannelType, ErrorRecovery, RelayState};
use std::fmt;

/// The kinds of resource, in the order an admin would create them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Role,
    /// A statement on a destination bus's resource policy (another account or region).
    BusPolicy,
    NamedCredential,
    Channel,
    ChannelMember,
    Relay,
    Association,
    Forwarding,
    RelayState,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Role,
        Kind::BusPolicy,
        Kind::NamedCredential,
        Kind::Channel,
        Kind::ChannelMember,
        Kind::Relay,
        Kind::Association,
        Kind::Forwarding,
        Kind::RelayState,
    ];

    /// The kind's name in addresses: `aws.role`, `salesforce.relay`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Role => "aws.role",
            Kind::BusPolicy => "aws.bus_policy",
            Kind::NamedCredential => "salesforce.named_credential",
            Kind::Channel => "salesforce.channel",
            Kind::ChannelMember => "salesforce.channel_member",
            Kind::Relay => "salesforce.relay",
            Kind::Association => "aws.association",
            Kind::Forwarding => "aws.forwarding",
            Kind::RelayState => "salesforce.relay_state",
        }
    }
}

/// A resource's stable name: `kind[key]`, e.g. `salesforce.relay[orders]` or
/// `aws.role[demo/relayform-us-east-1-orders]`. Relay-scoped resources are keyed by the relay's spec
/// name; shared ones by their org or account's spec name and their own name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    pub kind: Kind,
    pub key: String,
}

impl Address {
    pub fn new(kind: Kind, key: impl Into<String>) -> Self {
        Address {
            kind,
            key: key.into(),
        }
    }

    /// A channel member's address: `salesforce.channel_member[<relay>/<event>]`.
    pub fn member(relay: &str, event: &str) -> Self {
        Address::new(Kind::ChannelMember, format!("{relay}/{event}"))
    }

    /// What the key names, typed (the one place a key is taken apart). A key that does not have its
    /// kind's shape (a `--target` typed by hand) gives empty parts where they are missing.
    pub fn parts(&self) -> Key<'_> {
        let k = self.key.as_str();
        let (first, rest) = k.split_once('/').unwrap_or((k, ""));
        match self.kind {
            Kind::ChannelMember => Key::Member {
                relay: first,
                event: rest,
            },
            Kind::NamedCredential | Kind::Role => Key::Shared {
                scope: first,
                name: rest,
            },
            Kind::BusPolicy => {
                let mut p = k.splitn(4, '/');
                let mut next = || p.next().unwrap_or_default();
                Key::BusPolicy {
                    account: next(),
                    region: next(),
                    bus: next(),
                    sender: next(),
                }
            }
            _ => Key::Relay(first),
        }
    }

    /// The relay a relay's resource belongs to, or the org or account (spec name) a shared one lives
    /// in: what the key starts with.
    pub fn owner(&self) -> &str {
        match self.parts() {
            Key::Relay(relay) | Key::Member { relay, .. } => relay,
            Key::Shared { scope, .. } => scope,
            Key::BusPolicy { account, .. } => account,
        }
    }

    /// Whether the resource is shared by the relays of an org or account (a named credential, a
    /// role, a bus policy statement) rather than one relay's own.
    pub fn is_shared(&self) -> bool {
        matches!(
            self.kind,
            Kind::NamedCredential | Kind::Role | Kind::BusPolicy
        )
    }
}

/// An address's key, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    /// One relay's own resource: the relay's spec name (`orders`).
    Relay(&'a str),
    /// A channel member: the relay and the event (`orders/Order_Placed__e`).
    Member { relay: &'a str, event: &'a str },
    /// A named credential or role: the org or account (spec name) and its name
    /// (`acme/Relayform_123456789012_eu_west_1`).
    Shared { scope: &'a str, name: &'a str },
    /// A statement on a destination bus's policy: the account (spec name) with credentials for the
    /// bus, the bus's region and name, and the sending account's id.
    BusPolicy {
        account: &'a str,
        region: &'a str,
        bus: &'a str,
        sender: &'a str,
    },
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.kind.as_str(), self.key)
    }
}

impl std::str::FromStr for Address {
    type Err = String;

    /// Parses `kind[key]`.
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || {
            let kinds: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!(
                "`{s}` is not a resource address: expected `KIND[KEY]` with KIND one of {}",
                kinds.join(", ")
            )
        };
        let (kind, rest) = s.split_once('[').ok_or_else(err)?;
        let key = rest
            .strip_suffix(']')
            .filter(|k| !k.is_empty())
            .ok_or_else(err)?;
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(err)?;
        Ok(Address::new(kind, key))
    }
}

/// One resource with what the spec wants of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub address: Address,
    pub desired: Desired,
}

impl Keyed for Resource {
    type Key = Address;
    fn key(&self) -> Address {
        self.address.clone()
    }
}

/// Desired attributes by kind. Names are the vendors' (DeveloperNames, role names); `org` and
/// `account` are spec names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desired {
    /// An IAM role that EventBridge assumes to put events on `destination_arn`, with its trust and
    /// permission policies (see [`crate::policy`]).
    Role {
        account: String,
        name: String,
        destination_arn: String,
        trust: serde_json::Value,
        permission: serde_json::Value,
    },
    /// The statement on a destination bus's resource policy that lets the relays' account send to it
    /// from another account or region. `account` is the spec account with credentials for the
    /// destination's account (its region may differ: the statement is made in `region`).
    BusPolicy {
        account: String,
        region: String,
        bus: String,
        bus_arn: String,
        /// The account whose forwarding rules send to the bus.
        sender: String,
        statement_id: String,
    },
    /// A legacy named credential whose endpoint is `arn:aws:<REGION>:<account>`.
    NamedCredential {
        org: String,
        name: String,
        endpoint: String,
    },
    Channel {
        org: String,
        /// DeveloperName; the full name adds `__chn`.
        name: String,
        channel_type: ChannelType,
    },
    ChannelMember {
        org: String,
        name: String,
        channel: String,
        event: String,
    },
    Relay {
        org: String,
        name: String,
        channel: String,
        named_credential: String,
        error_recovery: ErrorRecovery,
    },
    /// The partner event source's bus: its name is known only once Salesforce has created the source.
    Association { account: String, relay: String },
    /// A rule on the partner bus with the destination bus as its target, through `role`.
    Forwarding {
        account: String,
        relay: String,
        destination_arn: String,
        role: String,
    },
    RelayState {
        org: String,
        relay: String,
        state: RelayState,
    },
}

impl Desired {
    /// The spec org or account the resource lives in: what must be read to plan it.
    pub fn owner(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Desired::Role { account, .. }
            | Desired::BusPolicy { account, .. }
            | Desired::Association { account, .. }
            | Desired::Forwarding { account, .. } => (None, Some(account)),
            Desired::NamedCredential { org, .. }
            | Desired::Channel { org, .. }
            | Desired::ChannelMember { org, .. }
            | Desired::Relay { org, .. }
            | Desired::RelayState { org, .. } => (Some(org), None),
        }
    }
}

impl Resource {
    /// The address and, on a second line, what the resource is.
    pub fn label(&self) -> String {
        let detail = match &self.desired {
            Desired::Role { name, .. } => name.clone(),
            Desired::BusPolicy {
                bus_arn, sender, ..
            } => format!("{bus_arn} allows {sender}"),
            Desired::NamedCredential { name, endpoint, .. } => format!("{name} → {endpoint}"),
            Desired::Channel {
                name, channel_type, ..
            } => format!(
                "{} ({})",
                relayform_spec::names::channel_full_name(name),
                channel_type.as_str()
            ),
            Desired::ChannelMember { event, .. } => event.clone(),
            Desired::Relay { name, .. } => name.clone(),
            Desired::Association { .. } => "partner event source bus".into(),
            Desired::Forwarding {
                destination_arn, ..
            } => format!("→ {destination_arn}"),
            Desired::RelayState { state, .. } => format!("{state:?}").to_lowercase(),
        };
        format!("{}\n{detail}", self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_taken_apart_by_its_kind() {
        let a = |s: &str| s.parse::<Address>().unwrap();
        assert_eq!(a("salesforce.relay[orders]").parts(), Key::Relay("orders"));
        assert_eq!(
            a("salesforce.channel_member[orders/Order_Placed__e]").parts(),
            Key::Member {
                relay: "orders",
                event: "Order_Placed__e"
            }
        );
        assert_eq!(
            a("aws.role[events/relayform-eu-west-1-orders]").parts(),
            Key::Shared {
                scope: "events",
                name: "relayform-eu-west-1-orders"
            }
        );
        assert_eq!(
            a("aws.bus_policy[sink/eu-west-1/orders/123456789012]").parts(),
            Key::BusPolicy {
                account: "sink",
                region: "eu-west-1",
                bus: "orders",
                sender: "123456789012"
            }
        );
        // Owners: the relay, or the org or account a shared resource lives in.
        assert_eq!(a("aws.forwarding[orders]").owner(), "orders");
        assert_eq!(a("salesforce.named_credential[acme/X]").owner(), "acme");
        assert!(a("aws.bus_policy[sink/eu-west-1/orders/1]").is_shared());
        assert!(!a("salesforce.channel[orders]").is_shared());
        // A hand-typed key without its kind's shape gives empty parts, not a panic.
        assert_eq!(
            a("aws.bus_policy[sink]").parts(),
            Key::BusPolicy {
                account: "sink",
                region: "",
                bus: "",
                sender: ""
            }
        );
        // Constructors and parts agree.
        assert_eq!(
            Address::member("orders", "E__e").parts(),
            Key::Member {
                relay: "orders",
                event: "E__e"
            }
        );
    }
}
