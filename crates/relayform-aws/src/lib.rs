//! relayform's connection to AWS: IAM, STS and EventBridge clients for one account and region, with
//! the credentials a spec names, an optional endpoint (the simulator, or a local emulator), the account
//! checked before anything else is done, errors classified as the engine needs them, and every call
//! reported.
//!
//! # Design
//!
//! - **Credentials as the spec says**: static keys (the simulator), the SDK's default chain, a named
//!   profile, or a role assumed with STS from either. Nothing is read from the environment that the SDK
//!   would not read itself, and secrets stay [`Secret`]s.
//! - **Account pinning**: [`Aws::pin`] asks STS who the credentials belong to and refuses another account
//!   than the spec's, before the engine changes anything.
//! - **Every call is observable**: an SDK interceptor reports each attempt (service, operation, HTTP
//!   status) to an [`Observer`] and as a `tracing` event.
//! - **Nothing waits for ever**: the target's [`Patience`] sets the SDK's connect, per-attempt and
//!   whole-call timeouts. The SDK's standard retry (jittered backoff, `x-amz-retry-after`) retries
//!   until the whole-call timeout rather than for three attempts, from a retry budget per account and
//!   region large enough for a throttle storm; a failure in transit names the endpoint.
//! - **Errors are classified** ([`classify`]) into the provider contract's [`ErrorKind`]s, keeping the
//!   AWS error code and message.
//! - **Reading and changing** are [`observe`] (the refresh, within a fixed call budget) and [`ops`] (one
//!   change at a time, converging: creates adopt, deletes of what is gone succeed).

pub mod observe;
pub mod ops;
pub mod probe;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_eventbridge::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_eventbridge::config::timeout::TimeoutConfig;
use aws_sdk_eventbridge::config::{
    ConfigBag, Intercept, RuntimeComponents, interceptors::FinalizerInterceptorContextRef,
};
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
pub use relayform_provider::{Error, ErrorKind, Patience, Secret, endpoint_of};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where AWS credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Fixed keys (the simulator's demo keys, or keys handed over by a secret store).
    Static {
        access_key_id: String,
        secret_access_key: Secret,
    },
    /// The SDK's default chain: environment, shared files, SSO cache, container and instance roles.
    DefaultChain,
    /// A named profile of the shared config files.
    Profile(String),
    /// A role assumed with STS, from the default chain or `source_profile`.
    AssumeRole {
        role_arn: String,
        external_id: Option<String>,
        session_name: Option<String>,
        source_profile: Option<String>,
    },
}

/// One account and region to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub region: String,
    /// Another endpoint for all three services (the simulator, a local emulator).
    pub endpoint_url: Option<String>,
    pub credentials: Credentials,
    /// The shared config file to read profiles from, instead of `~/.aws/config`.
    pub config_file: Option<PathBuf>,
    /// Timeouts and how long to retry: every call is bounded by it.
    pub patience: Patience,
}

/// One attempt of one AWS call, as observers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub service: String,
    pub operation: String,
    /// `None` when no response came back.
    pub status: Option<u16>,
}

/// Sees every attempt of every AWS call.
pub trait Observer: Send + Sync + fmt::Debug {
    fn observe(&self, call: &Call);
}

/// Retry tokens per account and region: a throttled retry costs 5 and a failed or timed-out one
/// 14 (the SDK's costs); a success gives one back. The SDK's 500 run dry in a long throttle storm,
/// and every later call fails unretried; the time bound of [`Patience`] limits each call instead.
const RETRY_TOKENS: usize = 10_000;

/// The SDK's timeouts from a patience: connect, each attempt, and the whole call.
fn timeouts(p: &Patience) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(p.connect)
        .operation_attempt_timeout(p.attempt)
        // Retries start within `total`; the last has its whole attempt time, as on the Salesforce side.
        .operation_timeout(p.total + p.attempt)
        .build()
}

/// The SDK's standard retries: exponential with jitter, honouring `x-amz-retry-after`, up to 5 s
/// apart (the SDK's 20 s left a throttled plan's last calls waiting while the quota had room: under
/// a quota of 50 a second, a plan took 1.02–1.22× its calls ÷ quota, and 0.93–1.02× with 5 s); the
/// number of attempts is not what bounds them, the patience's total is. (Its adaptive
/// mode was tried: its client-side rate limiter, fed by a handful of calls, held retries 18 s apart
/// under a 30 % storm, four times slower to converge.)
fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(5))
}

/// High enough never to be what stops retrying within [`Patience::total`].
const MAX_ATTEMPTS: u32 = 50;

/// AWS errors are the contract's [`Error`], with `system` = `AWS`.
const SYSTEM: &str = "AWS";

/// The class of an AWS error code (with its HTTP status for codes it does not know).
pub fn kind_of(code: Option<&str>, status: Option<u16>) -> ErrorKind {
    match code.unwrap_or("") {
        "ResourceNotFoundException" | "NoSuchEntity" => ErrorKind::NotFound,
        "ResourceAlreadyExistsException" | "EntityAlreadyExists" => ErrorKind::Conflict,
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => ErrorKind::Throttled,
        "InternalException"
        | "ServiceFailure"
        | "ConcurrentModificationException"
        | "ConcurrentModification" => ErrorKind::Transient,
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "AccessDenied"
        | "AccessDeniedException"
        | "MissingAuthenticationTokenException"
        | "MissingAuthenticationToken"
        | "SignatureDoesNotMatch" => ErrorKind::Unauthorized,
        "" if status.is_some_and(|s| s >= 500) => ErrorKind::Transient,
        "" if status.is_none() => ErrorKind::Transient,
        _ => ErrorKind::Rejected,
    }
}

/// Classifies an SDK error.
pub fn classify<E, R>(operation: &str, e: &SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    let (status, code, message) = match e {
        SdkError::ServiceError(ctx) => {
            let err = ctx.err();
            (
                None,
                err.code().map(str::to_owned),
                err.message().unwrap_or("no message").to_owned(),
            )
        }
        SdkError::TimeoutError(_) => (
            None,
            None,
            "no success within the time allowed (the attempts timed out, or were throttled or failing throughout)".to_owned(),
        ),
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => (
            None,
            None,
            "the request could not be sent (connection failed)".to_owned(),
        ),
        // Neither a connection nor a timeout: perhaps no credentials could be had.
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_)
            if credentials_failure(e).is_some() =>
        {
            (
                Some(0),
                Some("NoCredentials".to_owned()),
                credentials_failure(e).unwrap_or_default(),
            )
        }
        SdkError::DispatchFailure(_) => (
            None,
            None,
            "the request could not be sent (connection failed)".to_owned(),
        ),
        SdkError::ResponseError(_) => (None, None, "the response could not be read".to_owned()),
        SdkError::ConstructionFailure(_) => (
            Some(0),
            None,
            "the request could not be built (check region and endpoint)".to_owned(),
        ),
        _ => (None, None, e.to_string()),
    };
    let kind = match (e, status, code.as_deref()) {
        (_, _, Some("NoCredentials")) => ErrorKind::Unauthorized,
        (SdkError::ResponseError(_), ..) => ErrorKind::Protocol,
        (SdkError::ConstructionFailure(_), ..) => ErrorKind::Rejected,
        _ => kind_of(code.as_deref(), status),
    };
    Error {
        status: status.filter(|s| *s != 0),
        code,
        ..Error::new(SYSTEM, kind, operation, message)
    }
}

/// When a request was never sent because no credentials could be had (no such profile, an SSO
/// session expired, nothing in the chain): what the SDK's provider said, and what to run. `None`
/// for a failure of the connection itself.
fn credentials_failure<E, R>(e: &SdkError<E, R>) -> Option<String>
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    let mut chain = aws_smithy_types::error::display::DisplayErrorContext(e).to_string();
    // The chain of messages, without the Debug dump the SDK appends (" (DispatchFailure(...))").
    if let Some(i) = chain
        .find(" (DispatchFailure(")
        .or_else(|| chain.find(" (ConstructionFailure("))
    {
        chain.truncate(i);
    }
    let chain = chain
        .trim_start_matches("dispatch failure: ")
        .trim_start_matches("other: ")
        .to_owned();
    let lower = chain.to_ascii_lowercase();
    if !(lower.contains("credentials") || lower.contains("identity") || lower.contains("profile")) {
        return None;
    }
    let hint = if lower.contains("sso") || lower.contains("token") && lower.contains("expired") {
        "hint: the SSO session is missing or expired: run `aws sso login --profile <profile>` (the spec's `credentials: {profile: ...}`), then try again"
    } else if lower.contains("profile") {
        "hint: check the profile name in the spec's `credentials: {profile: ...}` (or AWS_PROFILE) against `aws configure list-profiles`"
    } else {
        "hint: no credentials were found: set `credentials` for this account in the spec (a profile, or a role to assume), or provide the SDK's usual ones (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, `aws sso login`)"
    };
    Some(format!(
        "no AWS credentials could be loaded, so nothing was sent: {chain}\n{hint}"
    ))
}

#[derive(Debug)]
struct Reporter {
    observer: Option<Arc<dyn Observer>>,
    service: &'static str,
    region: String,
}

/// When the current attempt started, kept in the attempt's config bag.
#[derive(Debug, Clone)]
struct AttemptStart(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for AttemptStart {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl Intercept for Reporter {
    fn name(&self) -> &'static str {
        "relayform-observer"
    }

    fn read_before_attempt(
        &self,
        _context: &aws_sdk_eventbridge::config::interceptors::BeforeTransmitInterceptorContextRef<
            '_,
        >,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptStart(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_default();
        let status = context.response().map(|r| r.status().as_u16());
        let attempt = cfg
            .load::<aws_smithy_runtime_api::client::retries::RequestAttempts>()
            .map(|a| a.attempts());
        let elapsed = cfg.load::<AttemptStart>().map(|s| s.0.elapsed());
        tracing::debug!(
            service = self.service,
            operation,
            region = self.region,
            attempt,
            status,
            ?elapsed,
            "aws call"
        );
        if let Some(o) = &self.observer {
            o.observe(&Call {
                service: self.service.to_owned(),
                operation,
                status,
            });
        }
        Ok(())
    }
}

/// Clients for one account and region.
#[derive(Debug, Clone)]
pub struct Aws {
    pub events: aws_sdk_eventbridge::Client,
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    /// CloudWatch Logs: only `conformance` uses it, to read relayed events back.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub region: String,
    /// The endpoint override, if any (the simulator, a local emulator).
    pub endpoint_url: Option<String>,
    /// The profile the credentials come from, when the spec names one (for messages).
    pub profile: Option<String>,
}

impl Aws {
    /// Builds the clients. No call is made yet.
    pub async fn connect(target: &Target, observer: Option<Arc<dyn Observer>>) -> Aws {
        let files = || {
            target.config_file.as_ref().map(|file| {
                aws_runtime::env_config::file::EnvConfigFiles::builder()
                    .with_file(
                        aws_runtime::env_config::file::EnvConfigFileKind::Config,
                        file,
                    )
                    .build()
            })
        };
        let base = || {
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new(target.region.clone()))
                .timeout_config(timeouts(&target.patience))
                .retry_config(retries());
            if let Some(url) = &target.endpoint_url {
                loader = loader.endpoint_url(url);
            }
            if let Some(files) = files() {
                loader = loader.profile_files(files);
            }
            loader
        };
        // A profile the spec names is the credentials, as `aws --profile NAME` makes it: keys in
        // the environment (which come first in the SDK's default chain) do not override it.
        let profile = |name: &str| {
            // Its own calls (SSO, STS for a role profile) are bounded as every other call is.
            let calls = aws_config::provider_config::ProviderConfig::default()
                .with_region(Some(Region::new(target.region.clone())))
                .with_timeout_config(timeouts(&target.patience));
            let mut p = aws_config::profile::ProfileFileCredentialsProvider::builder()
                .configure(&calls)
                .profile_name(name);
            if let Some(files) = files() {
                p = p.profile_files(files);
            }
            p.build()
        };
        let loader = match &target.credentials {
            Credentials::Static {
                access_key_id,
                secret_access_key,
            } => base().credentials_provider(aws_sdk_sts::config::Credentials::new(
                access_key_id,
                secret_access_key.expose(),
                None,
                None,
                "relayform",
            )),
            Credentials::DefaultChain => base(),
            Credentials::Profile(name) => base()
                .profile_name(name)
                .credentials_provider(profile(name)),
            Credentials::AssumeRole {
                role_arn,
                external_id,
                session_name,
                source_profile,
            } => {
                let source = match source_profile {
                    Some(p) => base().profile_name(p).credentials_provider(profile(p)),
                    None => base(),
                };
                let source = source.load().await;
                let mut provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
                    .session_name(session_name.clone().unwrap_or_else(|| "relayform".into()))
                    .configure(&source);
                if let Some(id) = external_id {
                    provider = provider.external_id(id);
                }
                base().credentials_provider(provider.build().await)
            }
        };
        let conf = loader.load().await;
        // Every attempt is a `tracing` event, observed or not.
        let reporter = |service: &'static str| Reporter {
            observer: observer.clone(),
            service,
            region: target.region.clone(),
        };
        // One retry budget for the clients of this account and region, sized for throttling.
        let partition = RetryPartition::custom(format!("relayform-{}", target.region))
            .token_bucket(TokenBucket::new(RETRY_TOKENS))
            .build();
        let events = aws_sdk_eventbridge::config::Builder::from(&conf)
            .retry_partition(partition.clone())
            .interceptor(reporter("events"));
        let iam = aws_sdk_iam::config::Builder::from(&conf)
            .retry_partition(partition.clone())
            .interceptor(reporter("iam"));
        let sts = aws_sdk_sts::config::Builder::from(&conf)
            .retry_partition(partition.clone())
            .interceptor(reporter("sts"));
        let logs = aws_sdk_cloudwatchlogs::config::Builder::from(&conf)
            .retry_partition(partition)
            .interceptor(reporter("logs"));
        Aws {
            events: aws_sdk_eventbridge::Client::from_conf(events.build()),
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs.build()),
            region: target.region.clone(),
            endpoint_url: target.endpoint_url.clone(),
            profile: match &target.credentials {
                Credentials::Profile(p) => Some(p.clone()),
                Credentials::AssumeRole { source_profile, .. } => source_profile.clone(),
                _ => None,
            },
        }
    }

    /// [`classify`], and a failure in transit names the endpoint it could not get an answer from.
    pub fn classify<E, R>(&self, operation: &str, e: &SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let mut err = classify(operation, e);
        if err.code.as_deref() == Some("NoCredentials")
            && let Some(p) = &self.profile
        {
            err.message = err.message.replace("<profile>", p);
            if !err.message.contains("SSO") {
                err.message.push_str(&format!(
                    " (the spec names profile `{p}`: is it in ~/.aws/config or AWS_CONFIG_FILE?)"
                ));
            }
        }
        if matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_))
            && err.kind == ErrorKind::Transient
        {
            err.message = format!("{} ({})", err.message, self.endpoint(operation));
        }
        err
    }

    /// The endpoint an operation (`events:PutRule`) goes to: the override, or the service's
    /// regional endpoint (IAM's is global).
    pub fn endpoint(&self, operation: &str) -> String {
        if let Some(url) = &self.endpoint_url {
            return endpoint_of(url);
        }
        match operation.split(':').next().unwrap_or_default() {
            "iam" => "https://iam.amazonaws.com".to_owned(),
            service => format!("https://{service}.{}.amazonaws.com", self.region),
        }
    }

    /// The account the credentials belong to.
    pub async fn caller_account(&self) -> Result<String, Error> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| self.classify("sts:GetCallerIdentity", &e))?;
        out.account().map(str::to_owned).ok_or_else(|| {
            Error::new(
                SYSTEM,
                ErrorKind::Protocol,
                "sts:GetCallerIdentity",
                "the answer names no account",
            )
        })
    }

    /// Checks that the credentials are for `expected`; refuses any other account.
    pub async fn pin(&self, expected: &str) -> Result<(), Error> {
        let actual = self.caller_account().await?;
        if actual == expected {
            return Ok(());
        }
        Err(Error {
            code: Some("AccountMismatch".into()),
            ..Error::new(
                SYSTEM,
                ErrorKind::Unauthorized,
                "sts:GetCallerIdentity",
                format!(
                    "the credentials are for account {actual}, but the spec says {expected}; nothing was changed in either"
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(
            kind_of(Some("ResourceNotFoundException"), Some(400)),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind_of(Some("NoSuchEntity"), Some(404)),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind_of(Some("EntityAlreadyExists"), Some(409)),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind_of(Some("DeleteConflict"), Some(409)),
            ErrorKind::Rejected
        );
        assert_eq!(
            kind_of(Some("ThrottlingException"), Some(400)),
            ErrorKind::Throttled
        );
        assert_eq!(
            kind_of(Some("InternalException"), Some(500)),
            ErrorKind::Transient
        );
        assert_eq!(
            kind_of(Some("LimitExceededException"), Some(400)),
            ErrorKind::Rejected
        );
        assert_eq!(
            kind_of(Some("UnrecognizedClientException"), Some(403)),
            ErrorKind::Unauthorized
        );
        assert_eq!(kind_of(None, Some(503)), ErrorKind::Transient);
        assert_eq!(kind_of(None, None), ErrorKind::Transient);
    }
}
