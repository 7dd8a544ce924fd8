//! STS (awsQuery): who am I, and assuming a role.

use super::xml::{el, response};
use super::{AwsError, Ctx};
use crate::reply::Reply;
use crate::world::World;

pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub fn handle(
    world: &mut World,
    ctx: &Ctx,
    op: &str,
    form: &[(String, String)],
) -> Result<Reply, AwsError> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let result = match op {
        "GetCallerIdentity" => format!(
            "{}{}{}",
            el(
                "Arn",
                &format!("arn:aws:iam::{}:user/simulated", ctx.account)
            ),
            el("UserId", &format!("AIDASIM{}", &ctx.account[..8])),
            el("Account", &ctx.account)
        ),
        "AssumeRole" => {
            let arn = get("RoleArn").ok_or_else(|| {
                super::validation(
                    "ValidationError",
                    "null",
                    "roleArn",
                    "Member must not be null",
                )
            })?;
            let session = get("RoleSessionName").ok_or_else(|| {
                super::validation(
                    "ValidationError",
                    "null",
                    "roleSessionName",
                    "Member must not be null",
                )
            })?;
            let parts: Vec<&str> = arn.split(':').collect();
            let (account, name) = match parts[..] {
                ["arn", _, "iam", "", account, resource] => (
                    account.to_owned(),
                    resource.rsplit('/').next().unwrap_or("").to_owned(),
                ),
                _ => {
                    return Err(AwsError::new(
                        400,
                        "ValidationError",
                        format!("{arn} is not a valid role ARN"),
                    ));
                }
            };
            let role = world
                .accounts
                .get(&account)
                .and_then(|a| a.roles.get(&name.to_lowercase()))
                .ok_or_else(|| {
                    AwsError::new(
                        403,
                        "AccessDenied",
                        format!(
                            "User is not authorized to perform: sts:AssumeRole on resource: {arn}"
                        ),
                    )
                })?;
            let role_id = role.id.clone();
            let duration: i64 = get("DurationSeconds")
                .and_then(|d| d.parse().ok())
                .unwrap_or(3600);
            let key = format!(
                "ASIASIM{}",
                crate::ids::random(&mut world.rng, 13).to_uppercase()
            );
            let secret = crate::ids::random(&mut world.rng, 40);
            let token = crate::ids::random(&mut world.rng, 64);
            world.access_keys.insert(key.clone(), account.clone());
            format!(
                "<Credentials>{}{}{}{}</Credentials><AssumedRoleUser>{}{}</AssumedRoleUser>",
                el("AccessKeyId", &key),
                el("SecretAccessKey", &secret),
                el("SessionToken", &token),
                el("Expiration", &crate::clock::iso(ctx.now + duration * 1000)),
                el("AssumedRoleId", &format!("{role_id}:{session}")),
                el(
                    "Arn",
                    &format!("arn:aws:sts::{account}:assumed-role/{name}/{session}")
                ),
            )
        }
        _ => {
            return Err(AwsError::new(
                400,
                "InvalidAction",
                format!("Could not find operation {op} for version 2011-06-15"),
            ));
        }
    };
    Ok(Reply::new(
        200,
        "text/xml",
        response(NAMESPACE, op, Some(&result), &ctx.request_id),
    ))
}
