//! Sessions and where they come from.

use crate::client::{Budget, RetryPolicy, http_client, retry_after_ms, transport_failure};
use crate::error::{Error, error};
use relayform_provider::ErrorKind;
use relayform_provider::{Patience, Secret};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;
use tokio::sync::Mutex;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An access token and the instance URL it is good for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub access_token: Secret,
    pub instance_url: String,
}

/// Hands out sessions. `stale` is a token the API has just refused (401): a source that can renew
/// returns a fresh session instead of it; one that cannot returns an `Unauthorized` error.
pub trait TokenSource: Send + Sync + fmt::Debug {
    fn session<'a>(&'a self, stale: Option<&'a Secret>) -> BoxFuture<'a, Result<Session, Error>>;
}

/// A fixed session (an access token from elsewhere). It cannot be renewed.
#[derive(Debug)]
pub struct StaticToken(pub Session);

impl TokenSource for StaticToken {
    fn session<'a>(&'a self, stale: Option<&'a Secret>) -> BoxFuture<'a, Result<Session, Error>> {
        Box::pin(async move {
            if stale == Some(&self.0.access_token) {
                return Err(error(
                    ErrorKind::Unauthorized,
                    "session",
                    "the access token was refused and cannot be renewed; get a new one",
                ));
            }
            Ok(self.0.clone())
        })
    }
}

/// An OAuth 2.0 grant at the token endpoint.
#[derive(Debug, Clone)]
pub enum Grant {
    ClientCredentials {
        client_id: String,
        client_secret: Secret,
    },
    RefreshToken {
        client_id: String,
        client_secret: Option<Secret>,
        refresh_token: Secret,
    },
    /// The JWT bearer flow: an assertion signed (RS256) with the connected app's private key.
    JwtBearer {
        client_id: String,
        username: String,
        /// The PEM private key (PKCS#1 or PKCS#8).
        private_key: Secret,
        /// The assertion's audience: `https://login.salesforce.com`, `https://test.salesforce.com`, or
        /// the login host the token endpoint is under.
        audience: String,
    },
    /// The username-password flow (being retired by Salesforce; kept for simulators and old orgs).
    Password {
        client_id: String,
        client_secret: Secret,
        username: String,
        password: Secret,
    },
}

/// Sessions from an OAuth token endpoint, cached and renewed when refused.
#[derive(Debug)]
pub struct OAuth {
    token_url: String,
    grant: Grant,
    http: reqwest::Client,
    patience: Patience,
    retry: RetryPolicy,
    cached: Mutex<Option<Session>>,
}

impl OAuth {
    /// `login_url` is the org's My Domain URL (or a login host); the token endpoint is under it.
    pub fn new(login_url: &str, grant: Grant) -> Self {
        let patience = Patience::default();
        OAuth {
            token_url: format!("{}/services/oauth2/token", login_url.trim_end_matches('/')),
            grant,
            http: http_client(&patience),
            patience,
            retry: RetryPolicy::default(),
            cached: Mutex::new(None),
        }
    }

    /// How long one token request may take and how long it is retried.
    pub fn with_patience(mut self, patience: Patience) -> Self {
        self.http = http_client(&patience);
        self.patience = patience;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// A token request creates nothing, so it is repeated whatever went wrong in transit, and when
    /// the endpoint is throttled or failing, within the patience's time.
    async fn fetch(&self) -> Result<Session, Error> {
        let budget = Budget::new(self.retry, &self.patience);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match self.fetch_once().await {
                Ok(s) => return Ok(s),
                Err(e) => e,
            };
            if let Some(wait) = budget.wait(&err, attempt) {
                tracing::debug!(operation = "oauth.token", attempt, ?wait, error = %err, "retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(budget.give_up(err, attempt));
        }
    }

    async fn fetch_once(&self) -> Result<Session, Error> {
        let op = "oauth.token";
        let mut form: Vec<(&str, &str)> = Vec::new();
        let assertion;
        match &self.grant {
            Grant::JwtBearer {
                client_id,
                username,
                private_key,
                audience,
            } => {
                assertion = jwt_assertion(client_id, username, private_key, audience)?;
                form.extend([
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.expose()),
                ]);
            }
            Grant::ClientCredentials {
                client_id,
                client_secret,
            } => {
                form.extend([
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", client_secret.expose()),
                ]);
            }
            Grant::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => {
                form.extend([
                    ("grant_type", "refresh_token"),
                    ("client_id", client_id),
                    ("refresh_token", refresh_token.expose()),
                ]);
                if let Some(s) = client_secret {
                    form.push(("client_secret", s.expose()));
                }
            }
            Grant::Password {
                client_id,
                client_secret,
                username,
                password,
            } => {
                form.extend([
                    ("grant_type", "password"),
                    ("client_id", client_id),
                    ("client_secret", client_secret.expose()),
                    ("username", username),
                    ("password", password.expose()),
                ]);
            }
        }
        let started = Instant::now();
        let resp = self
            .http
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                error(
                    ErrorKind::Transient,
                    op,
                    format!(
                        "token endpoint: {}",
                        transport_failure(&e, &self.token_url, started.elapsed())
                    ),
                )
            })?;
        let status = resp.status().as_u16();
        let retry_after_ms = retry_after_ms(&resp);
        let text = resp.text().await.map_err(|e| {
            error(
                ErrorKind::Transient,
                op,
                format!(
                    "token endpoint: {}",
                    transport_failure(&e, &self.token_url, started.elapsed())
                ),
            )
        })?;
        let body: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            // A gateway's or load balancer's page in front of a failing or throttled endpoint.
            Err(_) if status == 429 || status >= 500 => serde_json::Value::Null,
            Err(e) => {
                let mut err = error(
                    ErrorKind::Protocol,
                    op,
                    format!("the token endpoint did not answer JSON: {e}"),
                );
                err.status = Some(status);
                return Err(err);
            }
        };
        if !(200..300).contains(&status) {
            let code = body
                .get("error")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            let message = body
                .get("error_description")
                .and_then(|v| v.as_str())
                .unwrap_or("the token request was refused")
                .to_owned();
            // RFC 6749's `temporarily_unavailable`, a 429 or a 5xx: the endpoint is busy or failing,
            // not refusing these credentials.
            let kind = if status == 429 || code.as_deref() == Some("temporarily_unavailable") {
                ErrorKind::Throttled
            } else if status >= 500 {
                ErrorKind::Transient
            } else {
                ErrorKind::Unauthorized
            };
            return Err(Error {
                status: Some(status),
                code,
                retry_after_ms,
                ..error(kind, op, message)
            });
        }
        let field = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        match (field("access_token"), field("instance_url")) {
            (Some(token), Some(instance_url)) => Ok(Session {
                access_token: Secret::new(token),
                instance_url,
            }),
            _ => Err(error(
                ErrorKind::Protocol,
                op,
                "the token response lacks access_token or instance_url",
            )),
        }
    }
}

/// A JWT bearer assertion, valid for three minutes, signed with `private_key`.
fn jwt_assertion(
    client_id: &str,
    username: &str,
    private_key: &Secret,
    audience: &str,
) -> Result<Secret, Error> {
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose().as_bytes()).map_err(|_| {
            error(
                ErrorKind::Rejected,
                "oauth.token (jwt)",
                "the private key is not an RSA key in PEM form (PKCS#1 or PKCS#8)",
            )
        })?;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        + 180;
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": username,
        "aud": audience.trim_end_matches('/'),
        "exp": exp,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .map(Secret::new)
    .map_err(|e| {
        error(
            ErrorKind::Rejected,
            "oauth.token (jwt)",
            format!("cannot sign the assertion: {e}"),
        )
    })
}

/// Sessions from the `sf` CLI's login for an alias or username: `sf org display --json` for the
/// instance (and, from CLIs that still print it there, the token), `sf org auth show-access-token
/// --json` for the token otherwise. The CLI keeps and refreshes the credentials; relayform only asks
/// it for a current access token.
#[derive(Debug)]
pub struct SfCli {
    program: String,
    alias: String,
    /// How long one `sf` command may run before it is killed (the CLI can refresh its token
    /// over the network).
    patience: Patience,
    cached: Mutex<Option<Session>>,
}

impl SfCli {
    /// `program` is the `sf` executable (a path, or a name looked up on `PATH`).
    pub fn new(program: impl Into<String>, alias: impl Into<String>) -> Self {
        SfCli {
            program: program.into(),
            alias: alias.into(),
            patience: Patience::default(),
            cached: Mutex::new(None),
        }
    }

    pub fn with_patience(mut self, patience: Patience) -> Self {
        self.patience = patience;
        self
    }

    /// Runs `sf <args> --target-org <alias> --json` and returns its JSON answer with whether it
    /// succeeded. The answer may hold the access token: it is parsed, never echoed.
    async fn run(&self, op: &str, args: &[&str]) -> Result<(serde_json::Value, bool), Error> {
        let run = tokio::process::Command::new(&self.program)
            .args(args)
            .args(["--target-org", &self.alias, "--json"])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let limit = self.patience.attempt;
        let out = tokio::time::timeout(limit, run)
            .await
            .map_err(|_| {
                error(
                    ErrorKind::Transient,
                    op,
                    format!(
                        "the sf CLI (`{}`) did not finish within {limit:.0?} and was stopped",
                        self.program
                    ),
                )
            })?
            .map_err(|e| {
                error(
                    ErrorKind::Unauthorized,
                    op,
                    if e.kind() == std::io::ErrorKind::NotFound {
                        format!(
                            "the sf CLI (`{}`) is not installed or not on PATH; install @salesforce/cli and `sf org login web --alias {}`, or use another auth method",
                            self.program, self.alias
                        )
                    } else {
                        format!("cannot run the sf CLI (`{}`): {e}", self.program)
                    },
                )
            })?;
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| {
            error(
                ErrorKind::Protocol,
                op,
                format!(
                    "the sf CLI did not answer JSON (exit status {})",
                    out.status
                ),
            )
        })?;
        Ok((body, out.status.success()))
    }

    fn no_login(&self, op: &str, body: &serde_json::Value) -> Error {
        let message = body
            .get("message")
            .and_then(|v| v.as_str())
            .unwrap_or("no access token in its answer");
        error(
            ErrorKind::Unauthorized,
            op,
            format!(
                "the sf CLI has no usable login for `{}`: {message}\nhint: `sf org login web --alias {}`",
                self.alias, self.alias
            ),
        )
    }

    /// The instance URL from `sf org display`, and the access token: from the same answer where the
    /// CLI still prints it, else (current CLIs print `[REDACTED]` there) from
    /// `sf org auth show-access-token`.
    async fn fetch(&self) -> Result<Session, Error> {
        let op = "sf org display";
        let (body, ok) = self.run(op, &["org", "display"]).await?;
        let field = |b: &serde_json::Value, k: &str| {
            b["result"]
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let Some(instance_url) = field(&body, "instanceUrl").filter(|_| ok) else {
            return Err(self.no_login(op, &body));
        };
        let usable = |t: &String| !t.is_empty() && !t.contains("REDACTED") && !t.contains(' ');
        let token = match field(&body, "accessToken").filter(usable) {
            Some(t) => t,
            None => {
                let op = "sf org auth show-access-token";
                let (shown, ok) = self.run(op, &["org", "auth", "show-access-token"]).await?;
                field(&shown, "accessToken")
                    .filter(|t| ok && usable(t))
                    .ok_or_else(|| self.no_login(op, &shown))?
            }
        };
        Ok(Session {
            access_token: Secret::new(token),
            instance_url,
        })
    }
}

impl TokenSource for SfCli {
    fn session<'a>(&'a self, stale: Option<&'a Secret>) -> BoxFuture<'a, Result<Session, Error>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            match cached.as_ref() {
                Some(s) if stale != Some(&s.access_token) => return Ok(s.clone()),
                _ => {}
            }
            let fresh = self.fetch().await?;
            if stale == Some(&fresh.access_token) {
                return Err(error(
                    ErrorKind::Unauthorized,
                    "sf org display",
                    format!(
                        "the sf CLI's session for `{}` was refused; log in again: `sf org login web --alias {}`",
                        self.alias, self.alias
                    ),
                ));
            }
            *cached = Some(fresh.clone());
            Ok(fresh)
        })
    }
}

impl TokenSource for OAuth {
    fn session<'a>(&'a self, stale: Option<&'a Secret>) -> BoxFuture<'a, Result<Session, Error>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            match cached.as_ref() {
                Some(s) if stale != Some(&s.access_token) => return Ok(s.clone()),
                _ => {}
            }
            let fresh = self.fetch().await?;
            *cached = Some(fresh.clone());
            Ok(fresh)
        })
    }
}
