//! IAM (awsQuery): roles, inline and attached policies, tags.

use super::xml::{el, escape, percent_encode, response};
use super::{AwsError, Ctx, policy};
use crate::reply::Reply;
use crate::world::{Role, World};

pub const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

type Form = [(String, String)];

fn get<'a>(form: &'a Form, key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn required<'a>(form: &'a Form, key: &str) -> Result<&'a str, AwsError> {
    get(form, key).ok_or_else(|| {
        let member = format!("{}{}", key[..1].to_lowercase(), &key[1..]);
        super::validation(
            "ValidationError",
            "null",
            &member,
            "Member must not be null",
        )
    })
}

/// `Prefix.member.N` values in order.
fn members(form: &Form, prefix: &str) -> Vec<String> {
    let mut items: Vec<(usize, String)> = form
        .iter()
        .filter_map(|(k, v)| {
            let n = k
                .strip_prefix(prefix)?
                .strip_prefix(".member.")?
                .parse()
                .ok()?;
            Some((n, v.clone()))
        })
        .collect();
    items.sort();
    items.into_iter().map(|(_, v)| v).collect()
}

fn tags(form: &Form, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in 1.. {
        let k = get(form, &format!("{prefix}.member.{n}.Key"));
        let v = get(form, &format!("{prefix}.member.{n}.Value"));
        match k {
            Some(k) => out.push((k.to_owned(), v.unwrap_or("").to_owned())),
            None => break,
        }
    }
    out
}

fn check_name(value: &str, member: &str, max: usize) -> Result<(), AwsError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(super::validation(
            "ValidationError",
            value,
            member,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ))
    }
}

fn check_policy(doc: &str) -> Result<(), AwsError> {
    if doc.is_empty() || doc.len() > 131_072 {
        return Err(AwsError::new(
            400,
            "MalformedPolicyDocument",
            "The policy document must be between 1 and 131072 characters.",
        ));
    }
    policy::well_formed(doc).map_err(|m| AwsError::new(400, "MalformedPolicyDocument", m))
}

fn no_such_role(name: &str) -> AwsError {
    AwsError::new(
        404,
        "NoSuchEntity",
        format!("The role with name {name} cannot be found."),
    )
}

fn role_mut<'w>(world: &'w mut World, ctx: &Ctx, name: &str) -> Result<&'w mut Role, AwsError> {
    world
        .accounts
        .get_mut(&ctx.account)
        .and_then(|a| a.roles.get_mut(&name.to_lowercase()))
        .ok_or_else(|| no_such_role(name))
}

/// A role to read (a read leaves the account unchanged, so a save need not write it again).
fn role_ref<'w>(world: &'w World, ctx: &Ctx, name: &str) -> Result<&'w Role, AwsError> {
    world
        .accounts
        .get(&ctx.account)
        .and_then(|a| a.roles.get(&name.to_lowercase()))
        .ok_or_else(|| no_such_role(name))
}

fn role_xml(r: &Role) -> String {
    let mut s = String::from("<Role>");
    s += &el("Path", &r.path);
    s += &el("RoleName", &r.name);
    s += &el("RoleId", &r.id);
    s += &el("Arn", &r.arn);
    s += &el("CreateDate", &crate::clock::iso(r.created));
    s += &el(
        "AssumeRolePolicyDocument",
        &percent_encode(&r.assume_role_policy),
    );
    if let Some(d) = &r.description {
        s += &el("Description", d);
    }
    s += &el("MaxSessionDuration", &r.max_session_duration.to_string());
    if !r.tags.is_empty() {
        s += "<Tags>";
        for (k, v) in &r.tags {
            s += &format!("<member>{}{}</member>", el("Key", k), el("Value", v));
        }
        s += "</Tags>";
    }
    s + "</Role>"
}

/// Marker-based paging: (page, next marker).
fn page<T: Clone>(items: &[T], form: &Form) -> (Vec<T>, Option<String>) {
    let max = get(form, "MaxItems")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let start = get(form, "Marker")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(0)
        .min(items.len());
    let end = (start + max).min(items.len());
    (
        items[start..end].to_vec(),
        (end < items.len()).then(|| end.to_string()),
    )
}

fn truncation(next: Option<String>) -> String {
    match next {
        Some(m) => format!("<IsTruncated>true</IsTruncated>{}", el("Marker", &m)),
        None => "<IsTruncated>false</IsTruncated>".into(),
    }
}

pub fn handle(world: &mut World, ctx: &Ctx, op: &str, form: &Form) -> Result<Reply, AwsError> {
    let result: Option<String> = match op {
        "CreateRole" => {
            let name = required(form, "RoleName")?;
            check_name(name, "roleName", 64)?;
            let doc = required(form, "AssumeRolePolicyDocument")?;
            check_policy(doc)?;
            let path = get(form, "Path").unwrap_or("/");
            if !(path == "/" || (path.starts_with('/') && path.ends_with('/') && path.len() <= 512))
            {
                return Err(super::validation(
                    "ValidationError",
                    path,
                    "path",
                    "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
                ));
            }
            let max_session: u32 = get(form, "MaxSessionDuration")
                .and_then(|m| m.parse().ok())
                .unwrap_or(3600);
            if !(3600..=43200).contains(&max_session) {
                return Err(super::validation(
                    "ValidationError",
                    &max_session.to_string(),
                    "maxSessionDuration",
                    "Member must have value between 3600 and 43200",
                ));
            }
            let role_tags = tags(form, "Tags");
            super::check_tags(
                "ValidationError",
                role_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )?;
            if role_tags.len() > 50 {
                return Err(AwsError::new(
                    400,
                    "LimitExceeded",
                    "A role can have at most 50 tags.",
                ));
            }
            let id = crate::ids::role_id(&mut world.rng);
            let account = world.accounts.entry(ctx.account.clone()).or_default();
            if account.roles.contains_key(&name.to_lowercase()) {
                return Err(AwsError::new(
                    409,
                    "EntityAlreadyExists",
                    format!("Role with name {name} already exists."),
                ));
            }
            if account.roles.len() >= 1000 {
                return Err(AwsError::new(
                    409,
                    "LimitExceeded",
                    "Cannot exceed quota for RolesPerAccount: 1000",
                ));
            }
            let role = Role {
                name: name.into(),
                path: path.into(),
                id,
                arn: format!("arn:aws:iam::{}:role{path}{name}", ctx.account),
                created: ctx.now,
                assume_role_policy: doc.into(),
                description: get(form, "Description").map(str::to_owned),
                max_session_duration: max_session,
                inline_policies: Default::default(),
                attached: Default::default(),
                tags: role_tags,
            };
            let xml = role_xml(&role);
            account.roles.insert(name.to_lowercase(), role);
            Some(xml)
        }
        "GetRole" => Some(role_xml(role_ref(world, ctx, required(form, "RoleName")?)?)),
        "ListRoles" => {
            let prefix = get(form, "PathPrefix").unwrap_or("/");
            let roles: Vec<String> = world
                .accounts
                .get(&ctx.account)
                .map(|a| {
                    a.roles
                        .values()
                        .filter(|r| r.path.starts_with(prefix))
                        .map(role_xml)
                        .collect()
                })
                .unwrap_or_default();
            let (items, next) = page(&roles, form);
            let members: String = items
                .iter()
                .map(|r| {
                    r.replacen("<Role>", "<member>", 1)
                        .replace("</Role>", "</member>")
                })
                .collect();
            Some(format!("<Roles>{members}</Roles>{}", truncation(next)))
        }
        "UpdateAssumeRolePolicy" => {
            let doc = required(form, "PolicyDocument")?;
            check_policy(doc)?;
            role_mut(world, ctx, required(form, "RoleName")?)?.assume_role_policy = doc.into();
            None
        }
        "PutRolePolicy" => {
            let policy_name = required(form, "PolicyName")?;
            check_name(policy_name, "policyName", 128)?;
            let doc = required(form, "PolicyDocument")?;
            check_policy(doc)?;
            let role = role_mut(world, ctx, required(form, "RoleName")?)?;
            let total: usize = role
                .inline_policies
                .iter()
                .filter(|(k, _)| *k != policy_name)
                .map(|(_, v)| v.len())
                .sum::<usize>()
                + doc.len();
            if total > 10_240 {
                return Err(AwsError::new(
                    409,
                    "LimitExceeded",
                    "Maximum policy size of 10240 bytes exceeded for role.",
                ));
            }
            role.inline_policies.insert(policy_name.into(), doc.into());
            None
        }
        "GetRolePolicy" => {
            let role_name = required(form, "RoleName")?;
            let policy_name = required(form, "PolicyName")?;
            let role = role_ref(world, ctx, role_name)?;
            let doc = role.inline_policies.get(policy_name).ok_or_else(|| {
                AwsError::new(
                    404,
                    "NoSuchEntity",
                    format!("The role policy with name {policy_name} cannot be found."),
                )
            })?;
            Some(format!(
                "{}{}{}",
                el("RoleName", &role.name),
                el("PolicyName", policy_name),
                el("PolicyDocument", &percent_encode(doc))
            ))
        }
        "DeleteRolePolicy" => {
            let policy_name = required(form, "PolicyName")?;
            let role = role_mut(world, ctx, required(form, "RoleName")?)?;
            role.inline_policies.remove(policy_name).ok_or_else(|| {
                AwsError::new(
                    404,
                    "NoSuchEntity",
                    format!("The role policy with name {policy_name} cannot be found."),
                )
            })?;
            None
        }
        "ListRolePolicies" => {
            let role = role_ref(world, ctx, required(form, "RoleName")?)?;
            let names: Vec<String> = role.inline_policies.keys().cloned().collect();
            let (items, next) = page(&names, form);
            let members: String = items.iter().map(|n| el("member", n)).collect();
            Some(format!(
                "<PolicyNames>{members}</PolicyNames>{}",
                truncation(next)
            ))
        }
        "AttachRolePolicy" => {
            let arn = required(form, "PolicyArn")?;
            if !arn.starts_with("arn:aws:iam::") || !arn.contains(":policy/") {
                return Err(AwsError::new(
                    400,
                    "InvalidInput",
                    format!("ARN {arn} is not valid."),
                ));
            }
            let role = role_mut(world, ctx, required(form, "RoleName")?)?;
            if role.attached.len() >= 10 && !role.attached.contains_key(arn) {
                return Err(AwsError::new(
                    409,
                    "LimitExceeded",
                    "Cannot exceed quota for PoliciesPerRole: 10",
                ));
            }
            let name = arn.rsplit('/').next().unwrap_or(arn).to_owned();
            role.attached.insert(arn.into(), name);
            None
        }
        "DetachRolePolicy" => {
            let arn = required(form, "PolicyArn")?;
            let role = role_mut(world, ctx, required(form, "RoleName")?)?;
            role.attached.remove(arn).ok_or_else(|| {
                AwsError::new(404, "NoSuchEntity", format!("Policy {arn} was not found."))
            })?;
            None
        }
        "ListAttachedRolePolicies" => {
            let role = role_ref(world, ctx, required(form, "RoleName")?)?;
            let items: Vec<String> = role
                .attached
                .iter()
                .map(|(arn, name)| {
                    format!(
                        "<member>{}{}</member>",
                        el("PolicyName", name),
                        el("PolicyArn", arn)
                    )
                })
                .collect();
            let (items, next) = page(&items, form);
            Some(format!(
                "<AttachedPolicies>{}</AttachedPolicies>{}",
                items.concat(),
                truncation(next)
            ))
        }
        "TagRole" => {
            let new = tags(form, "Tags");
            super::check_tags(
                "ValidationError",
                new.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )?;
            let role = role_mut(world, ctx, required(form, "RoleName")?)?;
            // Checked on a copy: a refused TagRole changes nothing.
            let mut after = role.tags.clone();
            for (k, v) in new {
                match after.iter_mut().find(|(x, _)| *x == k) {
                    Some(t) => t.1 = v,
                    None => after.push((k, v)),
                }
            }
            if after.len() > 50 {
                return Err(AwsError::new(
                    409,
                    "LimitExceeded",
                    "A role can have at most 50 tags.",
                ));
            }
            role.tags = after;
            None
        }
        "UntagRole" => {
            let keys = members(form, "TagKeys");
            let role = role_mut(world, ctx, required(form, "RoleName")?)?;
            role.tags.retain(|(k, _)| !keys.contains(k));
            None
        }
        "ListRoleTags" => {
            let role = role_mut(world, ctx, required(form, "RoleName")?)?;
            let items: Vec<String> = role
                .tags
                .iter()
                .map(|(k, v)| format!("<member>{}{}</member>", el("Key", k), el("Value", v)))
                .collect();
            let (items, next) = page(&items, form);
            Some(format!(
                "<Tags>{}</Tags>{}",
                items.concat(),
                truncation(next)
            ))
        }
        "DeleteRole" => {
            let name = required(form, "RoleName")?;
            let role = role_mut(world, ctx, name)?;
            if !role.inline_policies.is_empty() || !role.attached.is_empty() {
                return Err(AwsError::new(
                    409,
                    "DeleteConflict",
                    "Cannot delete entity, must delete policies first.",
                ));
            }
            if let Some(a) = world.accounts.get_mut(&ctx.account) {
                a.roles.remove(&name.to_lowercase());
            }
            None
        }
        _ => {
            return Err(AwsError::new(
                400,
                "InvalidAction",
                format!(
                    "Could not find operation {} for version 2010-05-08",
                    escape(op)
                ),
            ));
        }
    };
    Ok(Reply::new(
        200,
        "text/xml",
        response(NAMESPACE, op, result.as_deref(), &ctx.request_id),
    ))
}
