//! `POST /services/oauth2/token` (client credentials, JWT bearer, refresh token, password),
//! `GET /services/oauth2/userinfo` and the identity URL.

use super::Route;
use crate::clock::Millis;
use crate::config::AppConfig;
use crate::reply::{Reply, Request};
use crate::world::{Token, World};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

pub fn handle(
    world: &mut World,
    req: &Request,
    route: &Route,
    now: Millis,
    base_url: &str,
) -> Reply {
    match (req.method.as_str(), route.operation.as_str()) {
        ("POST", "oauth.token") => token(world, req, route, now, base_url),
        ("GET", "oauth.userinfo") => userinfo(world, req, now, base_url),
        ("POST", "oauth.revoke") => {
            let form: Vec<(String, String)> =
                form_urlencoded::parse(&req.body).into_owned().collect();
            if let Some((_, t)) = form.iter().find(|(k, _)| k == "token") {
                for o in world.orgs.values_mut() {
                    o.tokens.remove(t);
                    o.refresh_tokens.remove(t);
                }
            }
            Reply::empty(200)
        }
        _ => super::SfError::not_found().reply(),
    }
}

/// The app with this client id: in the org the path names, or in any org.
fn find_app(world: &World, route: &Route, client_id: &str) -> Option<(String, AppConfig)> {
    world
        .orgs
        .values()
        .filter(|o| route.org.as_ref().is_none_or(|id| *id == o.id))
        .find_map(|o| {
            o.apps
                .iter()
                .find(|a| a.client_id == client_id)
                .map(|a| (o.id.clone(), a.clone()))
        })
}

fn user_id(world: &World, org: &str, username: &str) -> Option<String> {
    world.orgs[org]
        .users
        .iter()
        .find(|u| u.username.eq_ignore_ascii_case(username))
        .map(|u| u.id.clone())
}

fn token(world: &mut World, req: &Request, route: &Route, now: Millis, base_url: &str) -> Reply {
    let form: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    // Client credentials may also come as HTTP Basic.
    let basic = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
    let client_id = get("client_id").or_else(|| basic.as_ref().map(|b| b.0.clone()));
    let client_secret = get("client_secret").or_else(|| basic.as_ref().map(|b| b.1.clone()));
    let secret_ok =
        |app: &AppConfig| app.client_secret.is_some() && app.client_secret == client_secret;
    let grant = get("grant_type").unwrap_or_default();
    let (org, user, client, refresh) = match grant.as_str() {
        "password" => {
            let Some((org, app)) = client_id.as_deref().and_then(|c| find_app(world, route, c))
            else {
                return oauth_error(400, "invalid_client_id", "client identifier invalid");
            };
            if !secret_ok(&app) {
                return oauth_error(400, "invalid_client", "invalid client credentials");
            }
            let username = get("username").unwrap_or_default();
            let password = get("password").unwrap_or_default();
            let user = world.orgs[&org]
                .users
                .iter()
                .find(|u| u.username.eq_ignore_ascii_case(&username));
            match user {
                Some(u)
                    if u.password
                        .as_deref()
                        .is_some_and(|p| !p.is_empty() && password.starts_with(p)) =>
                {
                    (org, u.id.clone(), app.client_id, false)
                }
                _ => return oauth_error(400, "invalid_grant", "authentication failure"),
            }
        }
        "client_credentials" => {
            let Some((org, app)) = client_id.as_deref().and_then(|c| find_app(world, route, c))
            else {
                return oauth_error(400, "invalid_client_id", "client identifier invalid");
            };
            if !secret_ok(&app) {
                return oauth_error(400, "invalid_client", "invalid client credentials");
            }
            match app.run_as.as_deref().and_then(|u| user_id(world, &org, u)) {
                Some(u) => (org, u, app.client_id, false),
                None => {
                    return oauth_error(400, "invalid_grant", "no client credentials user enabled");
                }
            }
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            match jwt_bearer(world, route, get("assertion").as_deref(), now, base_url) {
                Ok(x) => x,
                Err(d) => return oauth_error(400, "invalid_grant", d),
            }
        }
        "refresh_token" => {
            let rt = get("refresh_token").unwrap_or_default();
            let found = world
                .orgs
                .values()
                .find_map(|o| o.refresh_tokens.get(&rt).map(|t| (o.id.clone(), t.clone())));
            let Some((org, t)) = found else {
                return oauth_error(400, "invalid_grant", "expired access/refresh token");
            };
            if client_id.as_deref() != Some(t.client_id.as_str()) {
                return oauth_error(400, "invalid_client_id", "client identifier invalid");
            }
            if client_secret.is_some()
                && !find_app(world, route, &t.client_id).is_some_and(|(_, a)| secret_ok(&a))
            {
                return oauth_error(400, "invalid_client", "invalid client credentials");
            }
            (org, t.user_id, t.client_id, false)
        }
        "" => return oauth_error(400, "invalid_request", "grant type not supported"),
        _ => return oauth_error(400, "unsupported_grant_type", "grant type not supported"),
    };
    issue(world, &org, &user, &client, refresh, now, base_url)
}

/// Mints an access token (and a refresh token when asked) and answers as Salesforce does.
pub fn issue(
    world: &mut World,
    org: &str,
    user: &str,
    client: &str,
    refresh: bool,
    now: Millis,
    base_url: &str,
) -> Reply {
    let random = crate::ids::random(&mut world.rng, 96);
    let access = format!("{}!{random}", &org[..15]);
    let expires = now + world.settings.token_lifetime_seconds as Millis * 1000;
    let o = world.orgs.get_mut(org).expect("org");
    let t = Token {
        user_id: user.to_owned(),
        client_id: client.to_owned(),
        expires,
    };
    // Expired tokens are refused anyway: forget them, so an org's tokens do not grow with every run.
    o.tokens.retain(|_, t| t.expires > now);
    o.tokens.insert(access.clone(), t.clone());
    let instance_url = format!("{base_url}/sf/{}", o.my_domain);
    let id = format!("{base_url}/id/{org}/{user}");
    let issued_at = now.to_string();
    let secret = o
        .apps
        .iter()
        .find(|a| a.client_id == client)
        .and_then(|a| a.client_secret.clone())
        .unwrap_or_default();
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("hmac takes any key");
    mac.update(format!("{id}{issued_at}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut body = json!({
        "access_token": access, "instance_url": instance_url, "id": id, "token_type": "Bearer",
        "issued_at": issued_at, "signature": signature, "scope": "api",
    });
    if refresh {
        let rt = format!("5Aep{}", crate::ids::random(&mut world.rng, 80));
        world
            .orgs
            .get_mut(org)
            .expect("org")
            .refresh_tokens
            .insert(rt.clone(), t);
        body["refresh_token"] = json!(rt);
    }
    Reply::json(200, &body)
}

fn jwt_bearer(
    world: &World,
    route: &Route,
    assertion: Option<&str>,
    now: Millis,
    base_url: &str,
) -> Result<(String, String, String, bool), &'static str> {
    let assertion = assertion.ok_or("invalid assertion")?;
    // The issuer picks the app, and the app's certificate checks the signature.
    let claims: Value = {
        let parts: Vec<&str> = assertion.split('.').collect();
        let payload = parts.get(1).ok_or("invalid assertion")?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| "invalid assertion")?;
        serde_json::from_slice(&bytes).map_err(|_| "invalid assertion")?
    };
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or("invalid assertion")?;
    let (org, app) = find_app(world, route, iss).ok_or("invalid client credentials")?;
    let pem = app.certificate.as_deref().ok_or("invalid assertion")?;
    let key =
        jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| "invalid assertion")?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(assertion, &key, &validation).map_err(|_| "invalid assertion")?;
    // Seconds since the epoch, as a number or (as some clients send it) a string of digits, which
    // Salesforce accepts too.
    let exp = match claims.get("exp") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse::<i64>().ok(),
        _ => None,
    }
    .ok_or("invalid assertion")?;
    if exp * 1000 <= now {
        return Err("expired authorization code");
    }
    let aud = claims.get("aud").and_then(Value::as_str).unwrap_or("");
    let domain = &world.orgs[&org].my_domain;
    let allowed = [
        "https://login.salesforce.com",
        "https://test.salesforce.com",
        base_url,
        &format!("{base_url}/sf/{domain}"),
    ];
    if !allowed.contains(&aud.trim_end_matches('/')) {
        return Err("audience is invalid");
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or("invalid assertion")?;
    let user = user_id(world, &org, sub).ok_or("user hasn't approved this consumer")?;
    Ok((org, user, app.client_id, false))
}

fn session(world: &World, req: &Request, now: Millis) -> Option<(String, String)> {
    let token = req.header("authorization")?.strip_prefix("Bearer ")?.trim();
    world.orgs.values().find_map(|o| {
        let t = o.tokens.get(token)?;
        (t.expires > now).then(|| (o.id.clone(), t.user_id.clone()))
    })
}

fn user_json(world: &World, org: &str, user: &str, base_url: &str) -> Value {
    let o = &world.orgs[org];
    let u = o.users.iter().find(|u| u.id == user);
    let username = u.map(|u| u.username.clone()).unwrap_or_default();
    json!({
        "sub": format!("{base_url}/id/{org}/{user}"), "user_id": user, "organization_id": org,
        "preferred_username": username, "email": username, "name": username,
        "urls": {"rest": format!("{base_url}/sf/{}/services/data/v{{version}}/", o.my_domain)},
    })
}

fn userinfo(world: &World, req: &Request, now: Millis, base_url: &str) -> Reply {
    match session(world, req, now) {
        Some((org, user)) => Reply::json(200, &user_json(world, &org, &user, base_url)),
        None => Reply::new(403, "text/plain", "Bad_OAuth_Token"),
    }
}

/// `GET /id/<org>/<user>`.
pub fn identity(
    world: &mut World,
    req: &Request,
    _route: &Route,
    now: Millis,
    base_url: &str,
) -> Reply {
    match session(world, req, now) {
        Some((org, user)) if req.path.contains(&org) => {
            let mut v = user_json(world, &org, &user, base_url);
            v["id"] = v["sub"].clone();
            v["username"] = v["preferred_username"].clone();
            Reply::json(200, &v)
        }
        _ => Reply::new(403, "text/plain", "Bad_OAuth_Token"),
    }
}
