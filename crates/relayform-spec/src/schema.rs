//! The JSON Schema of the spec language, for editors (yaml-language-server) and other tools.
//!
//! The key lists in [`keys`] are the single source of the spec's shape: the decoder accepts exactly
//! these keys and the schema lists exactly these properties, so the two cannot drift apart. A test checks
//! that every example under `specs/` satisfies the schema, and that the schema rejects every invalid
//! test case whose problem is one of shape.

use crate::rules;
use serde_json::{Value, json};

/// The keys each mapping of a spec may have.
pub mod keys {
    pub const TOP: &[&str] = &["version", "orgs", "aws_accounts", "relays"];
    pub const ORG: &[&str] = &["simulator", "instance_url", "auth", "org_id", "labels"];
    pub const AUTH: &[&str] = &[
        "jwt_bearer",
        "client_credentials",
        "refresh_token",
        "sf_cli",
        "access_token",
    ];
    pub const JWT_BEARER: &[&str] = &["client_id", "username", "private_key", "login_url"];
    pub const CLIENT_CREDENTIALS: &[&str] = &["client_id", "client_secret"];
    pub const REFRESH_TOKEN: &[&str] = &["client_id", "client_secret", "refresh_token"];
    pub const SF_CLI: &[&str] = &["alias"];
    pub const SECRET_REF: &[&str] = &["env", "file"];
    pub const AWS_ACCOUNT: &[&str] = &[
        "account_id",
        "region",
        "simulator",
        "credentials",
        "endpoint_url",
        "labels",
    ];
    pub const AWS_CREDENTIALS: &[&str] = &["profile", "assume_role"];
    pub const ASSUME_ROLE: &[&str] = &["role_arn", "external_id", "session_name", "source_profile"];
    pub const RELAY: &[&str] = &[
        "org",
        "aws_account",
        "channel_type",
        "events",
        "error_recovery",
        "state",
        "destination_bus",
        "ensure",
        "names",
    ];
    pub const NAMES: &[&str] = &["relay", "channel", "named_credential", "role"];
}

fn object(keys: &[&str], props: Value, required: &[&str], description: &str) -> Value {
    let props = props.as_object().expect("properties are an object");
    for k in keys {
        assert!(props.contains_key(*k), "schema lacks property {k}");
    }
    assert_eq!(
        props.len(),
        keys.len(),
        "schema has properties the decoder does not accept"
    );
    json!({
        "type": "object",
        "description": description,
        "properties": props,
        "required": required,
        "additionalProperties": false,
    })
}

fn one_of_keys(keys: &[&str], props: Value, description: &str) -> Value {
    let mut o = object(keys, props, &[], description);
    o["minProperties"] = json!(1);
    o["maxProperties"] = json!(1);
    o
}

const NAME_PATTERN: &str = "^[A-Za-z][A-Za-z0-9_-]{0,63}$";
const API_NAME_PATTERN: &str = "^[A-Za-z]([A-Za-z0-9]|_[A-Za-z0-9])*$";

/// The schema, as a JSON value (draft 2020-12).
pub fn json_schema() -> Value {
    let regions: Vec<&str> = rules::REGIONS.iter().map(|(r, _)| *r).collect();
    let labels = json!({
        "type": "object",
        "description": "Free key/value labels, used to select orgs and accounts (for example in fleet waves).",
        "propertyNames": {"pattern": "^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$"},
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    });
    let secret = one_of_keys(
        keys::SECRET_REF,
        json!({
            "env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "description": "Read the secret from this environment variable."},
            "file": {"type": "string", "description": "Read the secret from this file."},
        }),
        "A reference to a secret; the secret itself never goes into a spec.",
    );
    let string = json!({"type": "string"});
    let auth = one_of_keys(
        keys::AUTH,
        json!({
            "jwt_bearer": object(keys::JWT_BEARER, json!({
                "client_id": {"type": "string", "description": "The connected app's consumer key."},
                "username": {"type": "string", "description": "The user to act as."},
                "private_key": {"$ref": "#/$defs/secret"},
                "login_url": {"type": "string", "description": "The token endpoint's host, if not the instance URL."},
            }), &["client_id", "username", "private_key"], "OAuth 2.0 JWT bearer flow."),
            "client_credentials": object(keys::CLIENT_CREDENTIALS, json!({
                "client_id": string, "client_secret": {"$ref": "#/$defs/secret"},
            }), &["client_id", "client_secret"], "OAuth 2.0 client credentials flow."),
            "refresh_token": object(keys::REFRESH_TOKEN, json!({
                "client_id": string, "client_secret": {"$ref": "#/$defs/secret"}, "refresh_token": {"$ref": "#/$defs/secret"},
            }), &["client_id", "refresh_token"], "OAuth 2.0 refresh token flow."),
            "sf_cli": object(keys::SF_CLI, json!({
                "alias": {"type": "string", "description": "Alias or username from `sf org list`."},
            }), &["alias"], "Use an org the `sf` CLI is logged in to."),
            "access_token": {"$ref": "#/$defs/secret"},
        }),
        "How to authenticate to the org: exactly one method.",
    );
    let mut org = object(
        keys::ORG,
        json!({
            "simulator": {"type": "boolean", "description": "Reach the embedded simulator instead of a real org."},
            "instance_url": {"type": "string", "pattern": "^https?://[^/?#@ ]+/?$", "description": "The org's My Domain URL, e.g. https://acme.my.salesforce.com."},
            "auth": auth,
            "org_id": {"type": "string", "pattern": "^00D[A-Za-z0-9]{12}([A-Z0-5]{3})?$", "description": "The org id the org must have (15 or 18 characters)."},
            "labels": labels,
        }),
        &[],
        "A Salesforce org.",
    );
    org["oneOf"] = json!([
        {"required": ["simulator"], "properties": {"simulator": {"const": true}}, "not": {"anyOf": [{"required": ["instance_url"]}, {"required": ["auth"]}]}},
        {"required": ["instance_url", "auth"], "not": {"required": ["simulator"], "properties": {"simulator": {"const": true}}}},
    ]);
    let credentials = json!({
        "description": "Where AWS credentials come from: `default_chain` (the default), a profile, or a role to assume.",
        "oneOf": [
            {"const": "default_chain"},
            one_of_keys(keys::AWS_CREDENTIALS, json!({
                "profile": {"type": "string"},
                "assume_role": object(keys::ASSUME_ROLE, json!({
                    "role_arn": {"type": "string", "pattern": "^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"},
                    "external_id": string, "session_name": string, "source_profile": string,
                }), &["role_arn"], "Assume this role with STS."),
            }), "A profile or a role."),
        ],
    });
    let account = object(
        keys::AWS_ACCOUNT,
        json!({
            "account_id": {"oneOf": [
                {"type": "string", "pattern": "^[0-9]{12}$"},
                {"type": "integer", "minimum": 100000000000u64, "maximum": 999999999999u64},
            ], "description": "The 12-digit account id (quote it)."},
            "region": {"enum": regions, "description": "The region of the partner event source."},
            "simulator": {"type": "boolean", "description": "Reach the embedded simulator instead of real AWS."},
            "credentials": credentials,
            "endpoint_url": {"type": "string", "pattern": "^https?://[^/?#@ ]+/?$"},
            "labels": labels,
        }),
        &["account_id", "region"],
        "An AWS account and region that receives relayed events.",
    );
    let relay = object(
        keys::RELAY,
        json!({
            "org": {"type": "string", "description": "The org (a name under `orgs`)."},
            "aws_account": {"type": "string", "description": "The AWS account (a name under `aws_accounts`)."},
            "channel_type": {"enum": ["event", "data"], "description": "`event` for platform events, `data` for change data capture; follows from the events when left out."},
            "events": {"type": "array", "minItems": 1, "uniqueItems": true, "items": {"type": "string", "pattern": "(__e|ChangeEvent)$"}, "description": "Platform events (`Order_Placed__e`) or change events (`AccountChangeEvent`), not both."},
            "error_recovery": {"enum": ["earliest", "latest"], "description": "After an outage: `earliest` replays what is retained (72 hours), `latest` skips it."},
            "state": {"enum": ["running", "paused", "stopped"], "default": "running"},
            "destination_bus": {"type": "string", "description": "Forward relayed events to this event bus (a name in the same account and region, or an ARN)."},
            "ensure": {"enum": ["present", "absent"], "default": "present"},
            "names": object(keys::NAMES, json!({
                "relay": {"type": "string", "maxLength": 80, "pattern": API_NAME_PATTERN},
                "channel": {"type": "string", "pattern": "^[A-Za-z]([A-Za-z0-9]|_[A-Za-z0-9])*(__chn)?$"},
                "named_credential": {"type": "string", "maxLength": 80, "pattern": API_NAME_PATTERN},
                "role": {"type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9+=,.@_-]+$"},
            }), &[], "Override derived names."),
        }),
        &["org", "aws_account", "events", "error_recovery"],
        "An event relay from an org's channel to the AWS account's partner event source.",
    );
    let named = |item: &str, description: &str| {
        json!({
            "type": ["object", "null"],
            "description": description,
            "propertyNames": {"pattern": NAME_PATTERN},
            "additionalProperties": {"$ref": format!("#/$defs/{item}")},
        })
    };
    let mut top = object(
        keys::TOP,
        json!({
            "version": {"const": 1, "description": "The spec language version."},
            "orgs": named("org", "Salesforce orgs, by name."),
            "aws_accounts": named("aws_account", "AWS accounts, by name."),
            "relays": named("relay", "Event relays, by name."),
        }),
        &["version"],
        "A relayform spec (version 1).",
    );
    let top_map = top.as_object_mut().expect("object");
    top_map.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    top_map.insert("$id".into(), json!("https://relayform.dev/schema/v1.json"));
    top_map.insert("title".into(), json!("relayform spec"));
    top_map.insert(
        "$defs".into(),
        json!({"secret": secret, "org": org, "aws_account": account, "relay": relay}),
    );
    top
}
