//! Calls to the REST data API and the Tooling API, with retries, paging and session renewal.

use crate::auth::TokenSource;
use crate::error::{Error, error, from_response};
use relayform_provider::ErrorKind;
use relayform_provider::{Patience, Secret, endpoint_of};
use serde_json::{Value, json};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to space the retries of throttled and transient calls. How long to go on retrying is the
/// client's [`Patience`]: retries are bounded by time, not by a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The longest wait before attempt `attempt + 1`: the server's `Retry-After` if it gave one
    /// (honoured in full), else exponential from `base_delay`, never past `max_delay`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(16));
        retry_after.unwrap_or(exp.min(self.max_delay))
    }

    /// The wait actually taken: [`RetryPolicy::delay`] with "equal jitter" (half of it fixed, half
    /// drawn at random), so that many clients throttled at once do not come back at once. A
    /// `Retry-After` is a floor the jitter only adds to.
    pub fn jittered(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let d = self.delay(attempt, retry_after);
        let half = d / 2;
        let extra = half.mul_f64(rand::random::<f64>());
        match retry_after {
            Some(_) => d + extra.min(self.base_delay),
            None => half + extra,
        }
    }
}

/// The retries of one call: when the next attempt may start, and what to say when there is none.
/// Shared by the data and Tooling calls and the token requests.
#[derive(Debug)]
pub(crate) struct Budget {
    retry: RetryPolicy,
    begun: Instant,
    deadline: Instant,
}

impl Budget {
    pub(crate) fn new(retry: RetryPolicy, patience: &Patience) -> Self {
        let begun = Instant::now();
        Budget {
            retry,
            begun,
            deadline: begun + patience.total,
        }
    }

    /// The wait before attempt `attempt + 1`, if `err` is worth retrying and that attempt can
    /// still start within the call's time.
    pub(crate) fn wait(&self, err: &Error, attempt: u32) -> Option<Duration> {
        let wait = self
            .retry
            .jittered(attempt, err.retry_after_ms.map(Duration::from_millis));
        (err.is_retryable() && Instant::now() + wait < self.deadline).then_some(wait)
    }

    /// `err` as the call's outcome, saying how long it was retried when it was.
    pub(crate) fn give_up(&self, mut err: Error, attempt: u32) -> Error {
        if err.is_retryable() && attempt > 1 {
            err.message = format!(
                "{} (gave up after {attempt} attempts in {:.1?})",
                err.message,
                self.begun.elapsed()
            );
        }
        err
    }
}

/// One attempt of one call, as observers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: String,
    pub method: &'static str,
    pub path: String,
    pub attempt: u32,
    /// `None` when no response came back.
    pub status: Option<u16>,
    pub elapsed: Duration,
}

/// Sees every attempt of every call: for counting calls, progress and audit logs.
pub trait Observer: Send + Sync + fmt::Debug {
    fn observe(&self, call: &Call);
}

/// A client of one org.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    auth: Arc<dyn TokenSource>,
    version: String,
    retry: RetryPolicy,
    patience: Patience,
    observer: Option<Arc<dyn Observer>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl Client {
    pub fn new(auth: Arc<dyn TokenSource>) -> Self {
        let patience = Patience::default();
        Client {
            http: http_client(&patience),
            auth,
            version: crate::API_VERSION.to_owned(),
            retry: RetryPolicy::default(),
            patience,
            observer: None,
        }
    }

    /// How long one call may take and how long it is retried (the token source has its own).
    pub fn with_patience(mut self, patience: Patience) -> Self {
        self.http = http_client(&patience);
        self.patience = patience;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    fn data(&self) -> String {
        format!("/services/data/v{}", self.version)
    }

    /// One call: renews the session once on 401, retries transient and throttled failures.
    async fn send(
        &self,
        operation: &str,
        method: Method,
        path: &str,
        query: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Option<Value>, Error> {
        let mut stale: Option<Secret> = None;
        let mut renewed = false;
        let mut attempt = 0;
        let budget = Budget::new(self.retry, &self.patience);
        loop {
            attempt += 1;
            let session = self.auth.session(stale.as_ref()).await.map_err(|mut e| {
                e.operation = format!("{operation} (session)");
                e
            })?;
            let url = format!("{}{path}", session.instance_url.trim_end_matches('/'));
            let mut req = match method {
                Method::Get => self.http.get(&url),
                Method::Post => self.http.post(&url),
                Method::Patch => self.http.patch(&url),
                Method::Delete => self.http.delete(&url),
            }
            // Each attempt has its whole `attempt` time (the client's timeout): one cut short by
            // the call's deadline would end in a timeout that says nothing of the real failure.
            .bearer_auth(session.access_token.expose());
            if let Some(q) = query {
                req = req.query(&[("q", q)]);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let started = Instant::now();
            let result = req.send().await;
            let status = result.as_ref().ok().map(|r| r.status().as_u16());
            self.report(
                operation,
                method,
                path,
                query,
                attempt,
                status,
                started.elapsed(),
            );
            let err = match result {
                Err(e) => error(
                    ErrorKind::Transient,
                    operation,
                    transport_failure(&e, &url, started.elapsed()),
                ),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = retry_after_ms(&resp);
                    let text = resp.text().await.unwrap_or_default();
                    if (200..300).contains(&status) {
                        if text.trim().is_empty() {
                            return Ok(None);
                        }
                        return serde_json::from_str(&text).map(Some).map_err(|e| {
                            let mut err = error(
                                ErrorKind::Protocol,
                                operation,
                                format!("the response is not JSON: {e}"),
                            );
                            err.status = Some(status);
                            err
                        });
                    }
                    let (code, message) = vendor_error(&text);
                    let mut err = from_response(operation, status, code, message);
                    err.retry_after_ms = retry_after;
                    err
                }
            };
            if err.kind == ErrorKind::Unauthorized && !renewed {
                // One renewal, and this attempt does not count against the retry budget.
                renewed = true;
                stale = Some(session.access_token);
                attempt -= 1;
                continue;
            }
            // A POST that failed in transit may have been performed: creating or publishing again
            // could do it twice, so the caller decides (a create looks the object up by name first).
            // Throttling means it was not performed: that is retried here.
            let unsafe_to_repeat = method == Method::Post && err.kind == ErrorKind::Transient;
            if let Some(wait) = budget.wait(&err, attempt).filter(|_| !unsafe_to_repeat) {
                tracing::debug!(operation, attempt, ?wait, error = %err, "retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(budget.give_up(err, attempt));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        operation: &str,
        method: Method,
        path: &str,
        soql: Option<&str>,
        attempt: u32,
        status: Option<u16>,
        elapsed: Duration,
    ) {
        // The SOQL of a query (relayform's own: names and ids, never a credential).
        tracing::debug!(
            operation,
            method = method.as_str(),
            path,
            soql,
            attempt,
            status,
            ?elapsed,
            "salesforce call"
        );
        if let Some(o) = &self.observer {
            o.observe(&Call {
                operation: operation.to_owned(),
                method: method.as_str(),
                path: path.to_owned(),
                attempt,
                status,
                elapsed,
            });
        }
    }

    async fn query_all(
        &self,
        operation: &str,
        path: String,
        soql: &str,
    ) -> Result<Vec<Value>, Error> {
        let mut records = Vec::new();
        let mut page = self
            .send(operation, Method::Get, &path, Some(soql), None)
            .await?;
        loop {
            let Some(body) = page else {
                return Err(error(
                    ErrorKind::Protocol,
                    operation,
                    "the query answered nothing",
                ));
            };
            match body.get("records").and_then(Value::as_array) {
                Some(r) => records.extend(r.iter().cloned()),
                None => {
                    return Err(error(
                        ErrorKind::Protocol,
                        operation,
                        "the query response has no records",
                    ));
                }
            }
            let next = body
                .get("nextRecordsUrl")
                .and_then(Value::as_str)
                .filter(|_| body.get("done") != Some(&Value::Bool(true)));
            match next {
                Some(next) => page = self.send(operation, Method::Get, next, None, None).await?,
                None => return Ok(records),
            }
        }
    }

    /// A SOQL query on the data API, every page.
    pub async fn query(&self, soql: &str) -> Result<Vec<Value>, Error> {
        self.query_all("query", format!("{}/query", self.data()), soql)
            .await
    }

    /// A SOQL query on the Tooling API, every page.
    pub async fn tooling_query(&self, soql: &str) -> Result<Vec<Value>, Error> {
        self.query_all(
            "tooling.query",
            format!("{}/tooling/query", self.data()),
            soql,
        )
        .await
    }

    /// POSTs a record and returns the id the response gives.
    async fn create_at(&self, op: String, url: String, body: &Value) -> Result<String, Error> {
        let resp = self.send(&op, Method::Post, &url, None, Some(body)).await?;
        resp.as_ref()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| error(ErrorKind::Protocol, op, "the create response has no id"))
    }

    /// Creates a Tooling record from `{"FullName", "Metadata"}`; returns its id.
    pub async fn tooling_create(&self, sobject: &str, body: &Value) -> Result<String, Error> {
        let url = format!("{}/tooling/sobjects/{sobject}", self.data());
        self.create_at(format!("tooling.create {sobject}"), url, body)
            .await
    }

    pub async fn tooling_get(&self, sobject: &str, id: &str) -> Result<Value, Error> {
        let op = format!("tooling.get {sobject}");
        let resp = self
            .send(
                &op,
                Method::Get,
                &format!("{}/tooling/sobjects/{sobject}/{id}", self.data()),
                None,
                None,
            )
            .await?;
        resp.ok_or_else(|| error(ErrorKind::Protocol, op, "the record came back empty"))
    }

    pub async fn tooling_update(&self, sobject: &str, id: &str, body: &Value) -> Result<(), Error> {
        let url = format!("{}/tooling/sobjects/{sobject}/{id}", self.data());
        self.send(
            &format!("tooling.update {sobject}"),
            Method::Patch,
            &url,
            None,
            Some(body),
        )
        .await
        .map(drop)
    }

    pub async fn tooling_delete(&self, sobject: &str, id: &str) -> Result<(), Error> {
        let url = format!("{}/tooling/sobjects/{sobject}/{id}", self.data());
        self.send(
            &format!("tooling.delete {sobject}"),
            Method::Delete,
            &url,
            None,
            None,
        )
        .await
        .map(drop)
    }

    /// Creates a data-API record (`POST .../sobjects/<Object>`); returns its id.
    pub async fn record_create(&self, sobject: &str, fields: &Value) -> Result<String, Error> {
        let url = format!("{}/sobjects/{sobject}", self.data());
        self.create_at(format!("sobject.create {sobject}"), url, fields)
            .await
    }

    pub async fn record_update(
        &self,
        sobject: &str,
        id: &str,
        fields: &Value,
    ) -> Result<(), Error> {
        let url = format!("{}/sobjects/{sobject}/{id}", self.data());
        self.send(
            &format!("sobject.update {sobject}"),
            Method::Patch,
            &url,
            None,
            Some(fields),
        )
        .await
        .map(drop)
    }

    pub async fn record_delete(&self, sobject: &str, id: &str) -> Result<(), Error> {
        let url = format!("{}/sobjects/{sobject}/{id}", self.data());
        self.send(
            &format!("sobject.delete {sobject}"),
            Method::Delete,
            &url,
            None,
            None,
        )
        .await
        .map(drop)
    }

    /// Publishes a platform event; returns the event's UUID when the org reports it.
    pub async fn publish(&self, event: &str, fields: &Value) -> Result<Option<String>, Error> {
        let op = format!("publish {event}");
        let resp = self
            .send(
                &op,
                Method::Post,
                &format!("{}/sobjects/{event}", self.data()),
                None,
                Some(fields),
            )
            .await?;
        Ok(resp
            .as_ref()
            .and_then(|r| r.get("errors"))
            .and_then(Value::as_array)
            .and_then(|e| {
                e.iter()
                    .find(|x| x.get("statusCode") == Some(&json!("OPERATION_ENQUEUED")))
            })
            .and_then(|x| x.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned))
    }
}

/// The `errorCode` and `message` of Salesforce's error array (or of an OAuth error object).
fn vendor_error(text: &str) -> (Option<String>, String) {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let first = v.as_array().and_then(|a| a.first()).unwrap_or(&v);
    let code = first
        .get("errorCode")
        .or_else(|| first.get("error"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let message = first
        .get("message")
        .or_else(|| first.get("error_description"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let t = text.trim();
            if t.is_empty() {
                "no error body".to_owned()
            } else {
                t.chars().take(200).collect()
            }
        });
    (code, message)
}

/// A response's `Retry-After` (seconds), in milliseconds.
pub(crate) fn retry_after_ms(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| s.saturating_mul(1000))
}

/// The HTTP client for a patience: connect and per-attempt timeouts on every request. One client
/// per patience for the whole process, so every org shares its connection pool and its TLS roots
/// (loading the system's CA bundle once, not once per org).
pub(crate) fn http_client(patience: &Patience) -> reqwest::Client {
    static CLIENTS: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<(Duration, Duration), reqwest::Client>>,
    > = std::sync::LazyLock::new(Default::default);
    let key = (patience.connect, patience.attempt);
    let mut clients = CLIENTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    clients
        .entry(key)
        .or_insert_with(|| {
            reqwest::Client::builder()
                .connect_timeout(patience.connect)
                .timeout(patience.attempt)
                .build()
                .unwrap_or_default()
        })
        .clone()
}

/// What went wrong in transit, naming the endpoint (scheme, host and port only: the path or query
/// could carry data) and how long it was given.
pub(crate) fn transport_failure(e: &reqwest::Error, url: &str, elapsed: Duration) -> String {
    let at = endpoint_of(url);
    if e.is_timeout() {
        format!("{at} did not answer within {:.0?}", elapsed)
    } else if e.is_connect() {
        format!("cannot connect to {at}")
    } else {
        format!("the connection to {at} failed before an answer came")
    }
}
