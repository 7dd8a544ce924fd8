//! Decoding one parsed file into typed declarations, reporting every problem on the way.
//!
//! The decoder never stops at the first problem: a field that cannot be decoded is reported and left
//! out, and decoding goes on with the rest, so one run shows everything. Checks that need more than one
//! file (references, duplicates, shared names) are in [`crate::check`].

use crate::diagnostic::{Diagnostic, Location};
use crate::model::*;
use crate::rules::{self, EventKind};
use crate::schema::keys;
use crate::yaml::{Document, Path};
use serde_yaml::Value;

/// A node of the document and its path.
#[derive(Debug, Clone)]
pub(crate) struct Node<'v> {
    pub(crate) value: &'v Value,
    pub(crate) path: Path,
}

/// A mapping whose keys were checked against the ones allowed.
#[derive(Debug)]
pub(crate) struct Object<'v> {
    node: Node<'v>,
    /// What the mapping is, for messages: "relay `orders`".
    what: String,
    entries: Vec<(String, Node<'v>)>,
    /// Unknown keys that look like a misspelling of an allowed one: (the allowed key, the index of
    /// the unknown-key diagnostic). A required field missing for that reason is not reported again:
    /// the misspelling is the real cause, and its diagnostic says that the field is needed.
    misspelt: Vec<(&'static str, usize)>,
}

impl<'v> Object<'v> {
    pub(crate) fn get(&self, key: &str) -> Option<Node<'v>> {
        self.entries
            .iter()
            .find(|(k, n)| k == key && !n.value.is_null())
            .map(|(_, n)| n.clone())
    }
}

/// The decoding context of one file: the document and the diagnostics found so far.
#[derive(Debug)]
pub(crate) struct Cx<'d> {
    pub(crate) doc: &'d Document,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Quotes a value for a message, unless it looks like a secret: secrets never reach output.
pub(crate) fn show(s: &str) -> String {
    match rules::looks_like_secret(s) {
        Some(kind) => format!("(a value that looks like {kind}, not shown)"),
        None => format!("`{s}`"),
    }
}

impl<'d> Cx<'d> {
    pub(crate) fn new(doc: &'d Document) -> Self {
        Cx {
            doc,
            diagnostics: Vec::new(),
        }
    }

    pub(crate) fn at(&self, n: &Node<'_>) -> Location {
        self.doc.value_at(&n.path)
    }

    pub(crate) fn key_at(&self, n: &Node<'_>) -> Location {
        self.doc.key_at(&n.path)
    }

    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    fn field_name(n: &Node<'_>) -> String {
        n.path.last_key().unwrap_or("value").to_owned()
    }

    fn wrong_type(&mut self, n: &Node<'_>, expected: &str) {
        let found = type_name(n.value);
        let field = Self::field_name(n);
        let hint = if expected.starts_with("a list") {
            format!("write `{field}: [a, b]`, or one `- item` per line below `{field}:`")
        } else if expected.starts_with("a mapping") {
            format!("write `key: value` lines indented below `{field}:`")
        } else if expected == "a number" {
            format!("remove the quotes: `{field}: 1`")
        } else if expected == "a string" && n.value.is_number() {
            format!("quote the value: `{field}: \"...\"`")
        } else {
            format!("see docs/spec.md for what `{field}` takes")
        };
        let d = Diagnostic::error(
            "wrong-type",
            self.at(n),
            format!("`{field}` must be {expected}, found {found}"),
        )
        .with_hint(hint);
        self.push(d);
    }

    /// A mapping with only the `allowed` keys.
    pub(crate) fn object<'v>(
        &mut self,
        n: &Node<'v>,
        what: impl Into<String>,
        allowed: &[&'static str],
    ) -> Option<Object<'v>> {
        let what = what.into();
        let Value::Mapping(map) = n.value else {
            self.wrong_type(n, "a mapping");
            return None;
        };
        let mut entries = Vec::new();
        let mut misspelt = Vec::new();
        for (k, v) in map {
            let Some(key) = k.as_str() else {
                let d = Diagnostic::error(
                    "wrong-type",
                    self.at(n),
                    format!(
                        "{what} has a key that is {}, keys must be strings",
                        type_name(k)
                    ),
                );
                self.push(d);
                continue;
            };
            let child = Node {
                value: v,
                path: n.path.key(key),
            };
            if !allowed.contains(&key) {
                let meant = rules::did_you_mean(key, allowed.iter().copied());
                let hint = match meant {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the keys of {what} are: {}", allowed.join(", ")),
                };
                if let Some(s) = meant {
                    misspelt.push((s, self.diagnostics.len()));
                }
                let d = Diagnostic::error(
                    "unknown-key",
                    self.key_at(&child),
                    format!("unknown key `{key}` in {what}"),
                )
                .with_hint(hint);
                self.push(d);
                continue;
            }
            entries.push((key.to_owned(), child));
        }
        Some(Object {
            node: n.clone(),
            what,
            entries,
            misspelt,
        })
    }

    /// A field that must be there.
    pub(crate) fn required<'v>(
        &mut self,
        o: &Object<'v>,
        key: &str,
        hint: &str,
    ) -> Option<Node<'v>> {
        let found = o.get(key);
        if found.is_none()
            && let Some(&(_, i)) = o.misspelt.iter().find(|(m, _)| *m == key)
            && let Some(d) = self.diagnostics.get_mut(i)
        {
            d.hint = Some(format!("did you mean `{key}`? {} needs it: {hint}", o.what));
        } else if found.is_none() {
            let at = if o.node.path == Path::root() {
                Location::new(self.doc.file.clone(), 1, 1)
            } else {
                self.key_at(&o.node)
            };
            let d = Diagnostic::error(
                "missing-field",
                at,
                format!("{} is missing `{key}`", o.what),
            )
            .with_hint(hint);
            self.push(d);
        }
        found
    }

    pub(crate) fn string(&mut self, n: &Node<'_>) -> Option<Located<String>> {
        match n.value {
            Value::String(s) => Some(Located::new(s.clone(), self.at(n))),
            _ => {
                self.wrong_type(n, "a string");
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, n: &Node<'_>) -> Option<bool> {
        match n.value {
            Value::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(n, "`true` or `false`");
                None
            }
        }
    }

    /// One of a fixed set of words.
    pub(crate) fn word(&mut self, n: &Node<'_>, allowed: &[&'static str]) -> Option<&'static str> {
        let s = self.string(n)?;
        if let Some(w) = allowed.iter().find(|w| **w == s.value) {
            return Some(w);
        }
        let mut d = Diagnostic::error(
            "invalid-value",
            s.at,
            format!(
                "{} is not a valid `{}`: expected one of {}",
                show(&s.value),
                Self::field_name(n),
                allowed.join(", ")
            ),
        );
        if let Some(m) = rules::did_you_mean(&s.value, allowed.iter().copied()) {
            d = d.with_hint(format!("did you mean `{m}`?"));
        }
        self.push(d);
        None
    }

    pub(crate) fn list<'v>(&mut self, n: &Node<'v>) -> Option<Vec<Node<'v>>> {
        match n.value {
            Value::Sequence(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, value)| Node {
                        value,
                        path: n.path.index(i),
                    })
                    .collect(),
            ),
            _ => {
                self.wrong_type(n, "a list");
                None
            }
        }
    }

    /// A mapping from spec names (orgs, accounts, relays) to declarations.
    fn named<'v>(&mut self, n: &Node<'v>, kind: &str) -> Vec<(String, Node<'v>)> {
        let Value::Mapping(map) = n.value else {
            if !n.value.is_null() {
                self.wrong_type(n, &format!("a mapping of {kind} names to {kind}s"));
            }
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let name = match k {
                Value::String(s) => s.clone(),
                Value::Number(num) => num.to_string(),
                other => {
                    let d = Diagnostic::error(
                        "invalid-name",
                        self.at(n),
                        format!("a {kind} name must be a string, found {}", type_name(other)),
                    );
                    self.push(d);
                    continue;
                }
            };
            let child = Node {
                value: v,
                path: n.path.key(&name),
            };
            if let Err(why) = rules::spec_name(&name) {
                let d = Diagnostic::error(
                    "invalid-name",
                    self.key_at(&child),
                    format!("{kind} name {} is not valid: {why}", show(&name)),
                )
                .with_hint(
                    "names start with a letter and have letters, digits, `_` and `-` (64 at most)",
                );
                self.push(d);
                continue;
            }
            out.push((name, child));
        }
        out
    }

    /// A string checked by a rule; a failure is reported with `code` and `hint`.
    fn checked(
        &mut self,
        n: &Node<'_>,
        code: &'static str,
        what: &str,
        rule: impl Fn(&str) -> Result<(), String>,
        hint: &str,
    ) -> Option<Located<String>> {
        let s = self.string(n)?;
        if let Err(why) = rule(&s) {
            let d = Diagnostic::error(
                code,
                s.at,
                format!("{what} {} is not valid: {why}", show(&s.value)),
            )
            .with_hint(hint);
            self.push(d);
            return None;
        }
        Some(s)
    }

    fn labels(&mut self, n: &Node<'_>) -> Labels {
        let mut labels = Labels::new();
        let Value::Mapping(map) = n.value else {
            self.wrong_type(n, "a mapping of label names to values");
            return labels;
        };
        for (k, v) in map {
            let key = match k {
                Value::String(s) => s.clone(),
                other => {
                    let d = Diagnostic::error(
                        "wrong-type",
                        self.at(n),
                        format!("label names must be strings, found {}", type_name(other)),
                    );
                    self.push(d);
                    continue;
                }
            };
            let child = Node {
                value: v,
                path: n.path.key(&key),
            };
            let key_ok = !key.is_empty()
                && key.len() <= 63
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
                && key.starts_with(|c: char| c.is_ascii_alphanumeric());
            if !key_ok {
                let d = Diagnostic::error("invalid-name", self.key_at(&child), format!("label name {} is not valid", show(&key)))
                    .with_hint("label names start with a letter or digit and have letters, digits and `._/-` (63 at most)");
                self.push(d);
                continue;
            }
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(num) => num.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    self.wrong_type(&child, "a string, number or boolean");
                    continue;
                }
            };
            labels.insert(key, value);
        }
        labels
    }

    /// A secret reference: `{env: NAME}` or `{file: PATH}`. A plain string here is a secret written
    /// into the spec: refused, and never echoed.
    fn secret(&mut self, n: &Node<'_>) -> Option<SecretRef> {
        let field = Self::field_name(n);
        if let Value::String(_) = n.value {
            let d = Diagnostic::error(
                "literal-secret",
                self.at(n),
                format!("`{field}` holds a secret written into the spec; specs hold references to secrets, never their values"),
            )
            .with_hint(format!(
                "write `{field}: {{env: VARIABLE}}` or `{field}: {{file: path}}`, and rotate this secret: it has been written to a file"
            ));
            self.push(d);
            return None;
        }
        let o = self.object(n, format!("secret reference `{field}`"), keys::SECRET_REF)?;
        match (o.get("env"), o.get("file")) {
            (Some(env), None) => {
                let v = self.checked(
                    &env,
                    "invalid-value",
                    "environment variable",
                    rules::env_var,
                    "for example `SF_CLIENT_SECRET`",
                )?;
                Some(SecretRef::Env(v.value))
            }
            (None, Some(file)) => Some(SecretRef::File(self.string(&file)?.value)),
            _ => {
                let d = Diagnostic::error(
                    "invalid-value",
                    self.at(n),
                    format!("secret reference `{field}` needs exactly one of `env` and `file`"),
                )
                .with_hint(format!("for example `{field}: {{env: SF_CLIENT_SECRET}}`"));
                self.push(d);
                None
            }
        }
    }
}

/// What one file declares, before cross-file checks.
#[derive(Debug, Default)]
pub(crate) struct FileDecls {
    /// Every org, account and relay name declared, including those whose declaration has errors (so
    /// that references to them are not reported a second time as undeclared).
    pub(crate) declared: Vec<(Kind, String, Location)>,
    pub(crate) orgs: Vec<Org>,
    pub(crate) aws_accounts: Vec<AwsAccount>,
    pub(crate) relays: Vec<RelayDecl>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Org,
    AwsAccount,
    Relay,
}

/// A relay as written: references not yet resolved, names not yet derived.
#[derive(Debug)]
pub(crate) struct RelayDecl {
    pub(crate) name: String,
    pub(crate) at: Location,
    pub(crate) org: Option<Located<String>>,
    pub(crate) aws_account: Option<Located<String>>,
    pub(crate) channel_type: Option<ChannelType>,
    pub(crate) events: Vec<Located<String>>,
    pub(crate) error_recovery: Option<ErrorRecovery>,
    pub(crate) state: RelayState,
    pub(crate) ensure: Ensure,
    pub(crate) destination: Option<DestinationDecl>,
    pub(crate) names: NameOverrides,
}

#[derive(Debug)]
pub(crate) enum DestinationDecl {
    /// A bus name in the relay's own account and region.
    Name(Located<String>),
    /// A full ARN, already split.
    Arn(Located<Destination>),
}

#[derive(Debug, Default)]
pub(crate) struct NameOverrides {
    pub(crate) relay: Option<Located<String>>,
    pub(crate) channel: Option<Located<String>>,
    pub(crate) named_credential: Option<Located<String>>,
    pub(crate) role: Option<Located<String>>,
}

pub(crate) const SUPPORTED_VERSIONS: &[u64] = &[1];

/// Decodes one file.
pub(crate) fn file(cx: &mut Cx<'_>) -> FileDecls {
    let mut out = FileDecls::default();
    let root = Node {
        value: &cx.doc.value,
        path: Path::root(),
    };
    if root.value.is_null() {
        let d = Diagnostic::error("missing-field", Location::new(cx.doc.file.clone(), 1, 1), "the spec file is empty")
            .with_hint("a spec file starts with `version: 1`, then declares `orgs`, `aws_accounts` and `relays`");
        cx.push(d);
        return out;
    }
    let Some(top) = cx.object(&root, "the spec", keys::TOP) else {
        return out;
    };
    if let Some(v) = cx.required(&top, "version", "start the file with `version: 1`") {
        let supported = SUPPORTED_VERSIONS
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        match v.value.as_u64() {
            Some(n) if SUPPORTED_VERSIONS.contains(&n) => {}
            None if v
                .value
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .is_some() =>
            {
                cx.wrong_type(&v, "a number");
                return out;
            }
            _ => {
                let written = match &v.value {
                    Value::Number(n) => format!("`{n}`"),
                    Value::String(s) => show(s),
                    other => type_name(other).to_owned(),
                };
                let d = Diagnostic::error(
                    "unsupported-version",
                    cx.at(&v),
                    format!("spec version {written} is not supported; this relayform reads version {supported}"),
                )
                .with_hint("write `version: 1` (a number, not a string), or use the relayform release that reads this version");
                cx.push(d);
                return out;
            }
        }
    }
    if let Some(n) = top.get("orgs") {
        for (name, node) in cx.named(&n, "org") {
            out.declared
                .push((Kind::Org, name.clone(), cx.key_at(&node)));
            if let Some(org) = org(cx, name, &node) {
                out.orgs.push(org);
            }
        }
    }
    if let Some(n) = top.get("aws_accounts") {
        for (name, node) in cx.named(&n, "aws account") {
            out.declared
                .push((Kind::AwsAccount, name.clone(), cx.key_at(&node)));
            if let Some(acct) = aws_account(cx, name, &node) {
                out.aws_accounts.push(acct);
            }
        }
    }
    if let Some(n) = top.get("relays") {
        for (name, node) in cx.named(&n, "relay") {
            out.declared
                .push((Kind::Relay, name.clone(), cx.key_at(&node)));
            if let Some(r) = relay(cx, name, &node) {
                out.relays.push(r);
            }
        }
    }
    out
}

fn org(cx: &mut Cx<'_>, name: String, n: &Node<'_>) -> Option<Org> {
    let what = format!("org `{name}`");
    let o = cx.object(n, &what, keys::ORG)?;
    let at = cx.key_at(n);
    let simulator = o
        .get("simulator")
        .and_then(|s| cx.boolean(&s))
        .unwrap_or(false);
    let org_id = o.get("org_id").and_then(|v| {
        cx.checked(
            &v,
            "invalid-org-id",
            "org id",
            rules::org_id,
            "copy the id from Setup → Company Information, or leave `org_id` out",
        )
    });
    let labels = o.get("labels").map(|l| cx.labels(&l)).unwrap_or_default();
    let connection = if simulator {
        for key in ["instance_url", "auth"] {
            if let Some(extra) = o.get(key) {
                let d = Diagnostic::error(
                    "conflicting-fields",
                    cx.key_at(&extra),
                    format!("{what} is on the embedded simulator, so it takes no `{key}`"),
                )
                .with_hint("remove `simulator: true` to reach a real org, or remove this key");
                cx.push(d);
            }
        }
        OrgConnection::Simulator
    } else {
        let hint = "a real org needs `instance_url` (its My Domain URL) and `auth`; or write `simulator: true`";
        let url = cx
            .required(&o, "instance_url", hint)
            .and_then(|u| instance_url(cx, &u));
        let auth = cx
            .required(&o, "auth", hint)
            .and_then(|a| salesforce_auth(cx, &a));
        OrgConnection::Remote {
            instance_url: url?,
            auth: auth?,
        }
    };
    Some(Org {
        name,
        at,
        connection,
        org_id,
        labels,
    })
}

/// A URL of the form `scheme://host[:port][/]`, as relayform uses it.
struct HttpUrl {
    https: bool,
    /// The host is this machine: an IP in 127.0.0.0/8, `::1`, or `localhost`.
    loopback: bool,
    /// `scheme://host[:port]` as the URL parser understood it: what relayform connects to.
    origin: String,
}

/// Parses `s` once with a real URL parser (the WHATWG rules that reqwest and the AWS SDK follow) and
/// says what is wrong with it, if anything. Characters the parser would drop or reinterpret (tab,
/// newline, backslash) are refused outright, so the host checked is the host connected to.
fn http_url(s: &str) -> Result<HttpUrl, String> {
    if s.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err("it contains a space, tab, newline, control character or backslash".into());
    }
    if !(s.starts_with("https://") || s.starts_with("http://")) {
        return Err("it must start with `https://`".into());
    }
    let url = url::Url::parse(s).map_err(|e| format!("it is not a URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("it must be only `https://host`, with no path, query or user".into());
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err("it must be only `https://host`, with no path, query or user".into());
    }
    let loopback = match url.host() {
        None => return Err("it has no host".into()),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
    };
    Ok(HttpUrl {
        https: url.scheme() == "https",
        loopback,
        origin: url.origin().ascii_serialization(),
    })
}

/// A URL for a diagnostic: without its userinfo and query (either can hold a credential), and
/// `show`n like any other value.
fn show_url(s: &str) -> String {
    let mut shown = s.to_owned();
    if let Some(q) = shown.find(['?', '#']) {
        shown.truncate(q);
        shown.push_str("?…");
    }
    let authority_start = shown.find("://").map_or(0, |i| i + 3);
    let authority_end = shown[authority_start..]
        .find('/')
        .map_or(shown.len(), |i| authority_start + i);
    if let Some(at) = shown[authority_start..authority_end].rfind('@') {
        shown.replace_range(authority_start..authority_start + at, "***");
    }
    // Control characters shown as escapes, not written to the terminal.
    let shown: String = shown
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    show(&shown)
}

fn instance_url(cx: &mut Cx<'_>, n: &Node<'_>) -> Option<Located<String>> {
    let url = cx.string(n)?;
    let hint = "use the org's My Domain URL, e.g. `https://acme.my.salesforce.com`";
    let parsed = match http_url(&url) {
        Err(why) => {
            cx.push(
                Diagnostic::error(
                    "invalid-url",
                    url.at.clone(),
                    format!("instance_url {} is not valid: {why}", show_url(&url)),
                )
                .with_hint(hint),
            );
            return None;
        }
        Ok(u) => u,
    };
    if !parsed.https && !parsed.loopback {
        cx.push(Diagnostic::error("invalid-url", url.at.clone(), format!("instance_url {} uses plain http", show_url(&url)))
            .with_hint("Salesforce is reached over https; plain http is only for servers on this machine (127.0.0.1, ::1, localhost)"));
        return None;
    }
    if [
        "https://login.salesforce.com",
        "https://test.salesforce.com",
    ]
    .contains(&parsed.origin.as_str())
    {
        cx.push(
            Diagnostic::warning(
                "generic-login-url",
                url.at.clone(),
                format!(
                    "instance_url {} is the generic login host, not the org's own",
                    show_url(&url)
                ),
            )
            .with_hint(format!(
                "{hint}; orgs may block logins through the generic hosts"
            )),
        );
    }
    Some(Located {
        value: parsed.origin,
        at: url.at,
    })
}

fn salesforce_auth(cx: &mut Cx<'_>, n: &Node<'_>) -> Option<SalesforceAuth> {
    let o = cx.object(n, "`auth`", keys::AUTH)?;
    let methods: Vec<_> = keys::AUTH
        .iter()
        .filter_map(|k| o.get(k).map(|n| (*k, n)))
        .collect();
    let [(method, m)] = methods.as_slice() else {
        let d = Diagnostic::error(
            "invalid-value",
            cx.at(n),
            format!("`auth` needs exactly one method, found {}", methods.len()),
        )
        .with_hint(format!("the methods are: {}", keys::AUTH.join(", ")));
        cx.push(d);
        return None;
    };
    let need = "see docs/spec.md for the fields of each auth method";
    let (method, m) = (*method, m.clone());
    Some(match method {
        "jwt_bearer" => {
            let o = cx.object(&m, "`jwt_bearer`", keys::JWT_BEARER)?;
            let client_id = cx
                .required(&o, "client_id", need)
                .and_then(|v| cx.string(&v));
            let username = cx
                .required(&o, "username", need)
                .and_then(|v| cx.string(&v));
            let key = cx
                .required(&o, "private_key", need)
                .and_then(|v| cx.secret(&v));
            let login_url = o.get("login_url").and_then(|v| instance_url(cx, &v));
            SalesforceAuth::JwtBearer {
                client_id: client_id?.value,
                username: username?.value,
                private_key: key?,
                login_url: login_url.map(|l| l.value),
            }
        }
        "client_credentials" => {
            let o = cx.object(&m, "`client_credentials`", keys::CLIENT_CREDENTIALS)?;
            let client_id = cx
                .required(&o, "client_id", need)
                .and_then(|v| cx.string(&v));
            let secret = cx
                .required(&o, "client_secret", need)
                .and_then(|v| cx.secret(&v));
            SalesforceAuth::ClientCredentials {
                client_id: client_id?.value,
                client_secret: secret?,
            }
        }
        "refresh_token" => {
            let o = cx.object(&m, "`refresh_token`", keys::REFRESH_TOKEN)?;
            let client_id = cx
                .required(&o, "client_id", need)
                .and_then(|v| cx.string(&v));
            let secret = o.get("client_secret").map(|v| cx.secret(&v));
            let token = cx
                .required(&o, "refresh_token", need)
                .and_then(|v| cx.secret(&v));
            SalesforceAuth::RefreshToken {
                client_id: client_id?.value,
                client_secret: match secret {
                    Some(s) => Some(s?),
                    None => None,
                },
                refresh_token: token?,
            }
        }
        "sf_cli" => {
            let o = cx.object(&m, "`sf_cli`", keys::SF_CLI)?;
            let alias = cx
                .required(
                    &o,
                    "alias",
                    "the alias or username that `sf org list` shows",
                )
                .and_then(|v| cx.string(&v));
            SalesforceAuth::SfCli {
                alias: alias?.value,
            }
        }
        _ => SalesforceAuth::AccessToken {
            token: cx.secret(&m)?,
        },
    })
}

fn aws_account(cx: &mut Cx<'_>, name: String, n: &Node<'_>) -> Option<AwsAccount> {
    let what = format!("aws account `{name}`");
    let o = cx.object(n, &what, keys::AWS_ACCOUNT)?;
    let at = cx.key_at(n);
    let account_id = cx
        .required(
            &o,
            "account_id",
            "the 12-digit AWS account id, quoted: `account_id: \"123456789012\"`",
        )
        .and_then(|v| account_id(cx, &v));
    let region = cx
        .required(
            &o,
            "region",
            "the AWS region of the partner event source, e.g. `region: eu-west-1`",
        )
        .and_then(|v| region(cx, &v));
    let simulator = o
        .get("simulator")
        .and_then(|s| cx.boolean(&s))
        .unwrap_or(false);
    let labels = o.get("labels").map(|l| cx.labels(&l)).unwrap_or_default();
    let connection = if simulator {
        for key in ["credentials", "endpoint_url"] {
            if let Some(extra) = o.get(key) {
                cx.push(
                    Diagnostic::error(
                        "conflicting-fields",
                        cx.key_at(&extra),
                        format!("{what} is on the embedded simulator, so it takes no `{key}`"),
                    )
                    .with_hint("remove `simulator: true` to reach real AWS, or remove this key"),
                );
            }
        }
        AwsConnection::Simulator
    } else {
        let credentials = match o.get("credentials") {
            None => Some(AwsCredentials::DefaultChain),
            Some(c) => aws_credentials(cx, &c),
        };
        let endpoint_url = o.get("endpoint_url").and_then(|u| {
            let url = cx.string(&u)?;
            let hint = "an endpoint URL is `https://host[:port]`, e.g. for a local emulator `http://127.0.0.1:4566`";
            match http_url(&url) {
                Err(why) => {
                    cx.push(Diagnostic::error("invalid-url", url.at.clone(), format!("endpoint_url {} is not valid: {why}", show_url(&url)))
                        .with_hint(hint));
                    None
                }
                Ok(u) if !u.https && !u.loopback => {
                    cx.push(Diagnostic::error("invalid-url", url.at.clone(), format!("endpoint_url {} uses plain http", show_url(&url)))
                        .with_hint("AWS is reached over https, and so is any endpoint off this machine; plain http is only for servers on this machine (127.0.0.1, ::1, localhost)"));
                    None
                }
                Ok(u) => Some(Located { value: u.origin, at: url.at }),
            }
        });
        AwsConnection::Remote {
            credentials: credentials?,
            endpoint_url,
        }
    };
    Some(AwsAccount {
        name,
        at,
        account_id: account_id?,
        region: region?,
        connection,
        labels,
    })
}

fn account_id(cx: &mut Cx<'_>, n: &Node<'_>) -> Option<Located<String>> {
    // Unquoted, YAML reads an account id as a number (serde_yaml keeps leading zeros by reading those
    // as strings): accept 12-digit numbers, and check the digits of either form.
    let (text, at) = match n.value {
        Value::Number(num) => (num.to_string(), cx.at(n)),
        _ => {
            let s = cx.string(n)?;
            (s.value, s.at)
        }
    };
    if let Err(why) = rules::account_id(&text) {
        let hint = "an AWS account id is 12 digits, best quoted: `\"123456789012\"`";
        cx.push(
            Diagnostic::error(
                "invalid-account-id",
                at,
                format!("account id {} is not valid: {why}", show(&text)),
            )
            .with_hint(hint),
        );
        return None;
    }
    Some(Located::new(text, at))
}

fn region(cx: &mut Cx<'_>, n: &Node<'_>) -> Option<Located<String>> {
    let r = cx.string(n)?;
    if rules::partition(&r).is_none() {
        let hint = match rules::did_you_mean(&r, rules::REGIONS.iter().map(|(r, _)| *r)) {
            Some(s) => format!("did you mean `{s}`?"),
            None => "see `aws account list-regions` for your account's regions, e.g. `us-east-1`, `eu-west-1`".into(),
        };
        cx.push(
            Diagnostic::error(
                "invalid-region",
                r.at.clone(),
                format!("{} is not an AWS region", show(&r)),
            )
            .with_hint(hint),
        );
        return None;
    }
    Some(r)
}

fn aws_credentials(cx: &mut Cx<'_>, n: &Node<'_>) -> Option<AwsCredentials> {
    let hint = "write `credentials: default_chain`, `credentials: {profile: NAME}` or `credentials: {assume_role: {role_arn: ARN}}`";
    if let Value::String(s) = n.value {
        if s == "default_chain" {
            return Some(AwsCredentials::DefaultChain);
        }
        cx.push(
            Diagnostic::error(
                "invalid-value",
                cx.at(n),
                format!("{} is not a way to get AWS credentials", show(s)),
            )
            .with_hint(hint),
        );
        return None;
    }
    let o = cx.object(n, "`credentials`", keys::AWS_CREDENTIALS)?;
    match (o.get("profile"), o.get("assume_role")) {
        (Some(p), None) => Some(AwsCredentials::Profile(cx.string(&p)?.value)),
        (None, Some(r)) => {
            let o = cx.object(&r, "`assume_role`", keys::ASSUME_ROLE)?;
            let arn = cx
                .required(
                    &o,
                    "role_arn",
                    "the ARN of the role to assume, `arn:aws:iam::<account>:role/<name>`",
                )
                .and_then(|v| {
                    cx.checked(
                        &v,
                        "invalid-value",
                        "role ARN",
                        |s| {
                            let ok = s.starts_with("arn:aws")
                                && s.contains(":iam::")
                                && s.contains(":role/");
                            if ok {
                                Ok(())
                            } else {
                                Err("a role ARN is `arn:aws:iam::<account>:role/<name>`".into())
                            }
                        },
                        "copy the role's ARN from the IAM console",
                    )
                });
            let opt =
                |cx: &mut Cx<'_>, k: &str| o.get(k).and_then(|v| cx.string(&v)).map(|v| v.value);
            let external_id = opt(cx, "external_id");
            let session_name = opt(cx, "session_name");
            let source_profile = opt(cx, "source_profile");
            Some(AwsCredentials::AssumeRole {
                role_arn: arn?.value,
                external_id,
                session_name,
                source_profile,
            })
        }
        _ => {
            cx.push(
                Diagnostic::error(
                    "invalid-value",
                    cx.at(n),
                    "`credentials` needs exactly one of `profile` and `assume_role`",
                )
                .with_hint(hint),
            );
            None
        }
    }
}

fn relay(cx: &mut Cx<'_>, name: String, n: &Node<'_>) -> Option<RelayDecl> {
    let what = format!("relay `{name}`");
    let o = cx.object(n, &what, keys::RELAY)?;
    let at = cx.key_at(n);
    let org = cx
        .required(
            &o,
            "org",
            "name the org this relay reads events from, as declared under `orgs`",
        )
        .and_then(|v| cx.string(&v));
    let aws_account = cx
        .required(
            &o,
            "aws_account",
            "name the AWS account events are relayed to, as declared under `aws_accounts`",
        )
        .and_then(|v| cx.string(&v));
    let channel_type = o
        .get("channel_type")
        .and_then(|v| cx.word(&v, &["event", "data"]))
        .map(|w| match w {
            "event" => ChannelType::Event,
            _ => ChannelType::Data,
        });
    let events = cx
        .required(
            &o,
            "events",
            "list the events to relay, e.g. `events: [Order_Placed__e]`",
        )
        .map(|v| events(cx, &v, channel_type))
        .unwrap_or_default();
    let error_recovery = cx
        .required(
            &o,
            "error_recovery",
            "write `error_recovery: earliest` to replay what was published during an outage (up to 72 hours), or `latest` to skip it; there is no default because `latest` loses events",
        )
        .and_then(|v| cx.word(&v, &["earliest", "latest"]))
        .map(|w| if w == "earliest" { ErrorRecovery::Earliest } else { ErrorRecovery::Latest });
    let state = o
        .get("state")
        .and_then(|v| cx.word(&v, &["running", "paused", "stopped"]))
        .map_or(RelayState::Running, |w| match w {
            "running" => RelayState::Running,
            "paused" => RelayState::Paused,
            _ => RelayState::Stopped,
        });
    let ensure = o
        .get("ensure")
        .and_then(|v| cx.word(&v, &["present", "absent"]))
        .map_or(Ensure::Present, |w| {
            if w == "present" {
                Ensure::Present
            } else {
                Ensure::Absent
            }
        });
    let destination = o.get("destination_bus").and_then(|v| destination(cx, &v));
    let names = o
        .get("names")
        .map(|v| name_overrides(cx, &v, &what))
        .unwrap_or_default();
    // An inferred channel type comes from the events; an explicit one is checked against them there.
    let inferred = events.iter().find_map(|e| match rules::event_name(e) {
        Ok(EventKind::Platform) => Some(ChannelType::Event),
        Ok(EventKind::Change) => Some(ChannelType::Data),
        Err(_) => None,
    });
    Some(RelayDecl {
        name,
        at,
        org,
        aws_account,
        channel_type: channel_type.or(inferred),
        events,
        error_recovery,
        state,
        ensure,
        destination,
        names,
    })
}

fn events(
    cx: &mut Cx<'_>,
    n: &Node<'_>,
    channel_type: Option<ChannelType>,
) -> Vec<Located<String>> {
    let Some(items) = cx.list(n) else {
        return Vec::new();
    };
    if items.is_empty() {
        cx.push(
            Diagnostic::error(
                "invalid-value",
                cx.at(n),
                "`events` is empty: a relay carries at least one event",
            )
            .with_hint("list the events to relay, e.g. `events: [Order_Placed__e]`"),
        );
    }
    let mut out: Vec<Located<String>> = Vec::new();
    // Each valid event with its kind.
    let mut kinds: Vec<(EventKind, Located<String>)> = Vec::new();
    for item in &items {
        let Some(e) = cx.string(item) else { continue };
        if let Some(first) = out.iter().find(|f| f.value == e.value) {
            let d = Diagnostic::error(
                "duplicate-event",
                e.at.clone(),
                format!(
                    "event {} is listed twice (first at {}:{})",
                    show(&e.value),
                    first.at.line,
                    first.at.column
                ),
            )
            .with_hint("list each event once");
            cx.push(d);
            continue;
        }
        match rules::event_name(&e) {
            Ok(kind) => kinds.push((kind, e.clone())),
            Err(why) => cx.push(
                Diagnostic::error(
                    "invalid-event-name",
                    e.at.clone(),
                    format!("{} is not an event name: {why}", show(&e.value)),
                )
                .with_hint("use the event's API name as Setup shows it"),
            ),
        }
        out.push(e);
    }
    let has = |kind| kinds.iter().any(|(k, _)| *k == kind);
    if has(EventKind::Platform) && has(EventKind::Change) {
        cx.push(
            Diagnostic::error(
                "mixed-event-kinds",
                cx.key_at(n),
                "this relay mixes platform events (`__e`) and change events (`ChangeEvent`); a channel carries one kind",
            )
            .with_hint("split them into two relays: one for the platform events, one for the change events"),
        );
        return out;
    }
    let Some(ct) = channel_type else { return out };
    let (wrong, kind_name, hint) = match ct {
        ChannelType::Event => (
            EventKind::Change,
            "a change event",
            "change events need `channel_type: data` (or leave `channel_type` out: it follows from the events)",
        ),
        ChannelType::Data => (
            EventKind::Platform,
            "a platform event",
            "platform events need `channel_type: event` (or leave `channel_type` out: it follows from the events)",
        ),
    };
    for (_, e) in kinds.iter().filter(|(k, _)| *k == wrong) {
        cx.push(
            Diagnostic::error(
                "wrong-channel-type",
                e.at.clone(),
                format!(
                    "{} is {kind_name}, but the relay's channel_type is `{}`",
                    show(&e.value),
                    ct.as_str()
                ),
            )
            .with_hint(hint),
        );
    }
    out
}

fn destination(cx: &mut Cx<'_>, n: &Node<'_>) -> Option<DestinationDecl> {
    let s = cx.string(n)?;
    let hint = "name a custom event bus in the relay's account and region (`orders`), or give its ARN (`arn:aws:events:<region>:<account>:event-bus/<name>`)";
    if s.starts_with("arn:") {
        return match rules::bus_arn(&s) {
            Ok((region, account_id, bus_name)) => Some(DestinationDecl::Arn(Located::new(
                Destination {
                    account_id,
                    region,
                    bus_name,
                },
                s.at,
            ))),
            Err(why) => {
                cx.push(
                    Diagnostic::error(
                        "invalid-bus",
                        s.at,
                        format!("destination bus ARN {} is not valid: {why}", show(&s.value)),
                    )
                    .with_hint(hint),
                );
                None
            }
        };
    }
    if let Err(why) = rules::bus_name(&s) {
        cx.push(
            Diagnostic::error(
                "invalid-bus",
                s.at,
                format!("destination bus {} is not valid: {why}", show(&s.value)),
            )
            .with_hint(hint),
        );
        return None;
    }
    Some(DestinationDecl::Name(s))
}

fn name_overrides(cx: &mut Cx<'_>, n: &Node<'_>, what: &str) -> NameOverrides {
    let Some(o) = cx.object(n, format!("`names` of {what}"), keys::NAMES) else {
        return NameOverrides::default();
    };
    let api = |max: usize| move |s: &str| rules::api_name(s, max);
    let api_hint = "Salesforce API names have letters, digits and single `_`, start with a letter and do not end with `_`";
    let relay = o
        .get("relay")
        .and_then(|v| cx.checked(&v, "invalid-api-name", "relay name", api(80), api_hint));
    let channel = o.get("channel").and_then(|v| {
        let s = cx.string(&v)?;
        let bare = s.strip_suffix("__chn").unwrap_or(&s).to_owned();
        if let Err(why) = rules::api_name(&bare, 80) {
            cx.push(
                Diagnostic::error(
                    "invalid-api-name",
                    s.at,
                    format!("channel name {} is not valid: {why}", show(&s.value)),
                )
                .with_hint(api_hint),
            );
            return None;
        }
        Some(Located::new(bare, s.at))
    });
    let named_credential = o.get("named_credential").and_then(|v| {
        cx.checked(
            &v,
            "invalid-api-name",
            "named credential name",
            api(80),
            api_hint,
        )
    });
    let role = o.get("role").and_then(|v| {
        cx.checked(
            &v,
            "invalid-role-name",
            "IAM role name",
            rules::role_name,
            "IAM role names have 1 to 64 of letters, digits and `+=,.@_-`",
        )
    });
    NameOverrides {
        relay,
        channel,
        named_credential,
        role,
    }
}

/// Reports strings anywhere in the document that look like credentials, and secret-named keys that
/// hold plain strings, except where [`Cx::secret`] has already refused them.
pub(crate) fn secrets(cx: &mut Cx<'_>) {
    fn walk(cx: &mut Cx<'_>, n: Node<'_>, in_labels: bool) {
        match n.value {
            Value::Mapping(map) => {
                for (k, v) in map {
                    let Some(key) = k.as_str() else { continue };
                    let child = Node {
                        value: v,
                        path: n.path.key(key),
                    };
                    // A credential can stand where a name goes too (an org, a label key).
                    if let Some(kind) = rules::looks_like_secret(key) {
                        let at = cx.doc.key_at(&child.path);
                        cx.push(Diagnostic::error("literal-secret", at, format!("this key looks like {kind}; secrets never go into a spec"))
                            .with_hint("a name or label key is no place for a credential; remove it, and rotate it"));
                    }
                    let lower = key.to_ascii_lowercase();
                    let secret_key = ["password", "secret", "token", "private_key", "access_key"]
                        .iter()
                        .any(|s| lower.contains(s));
                    if secret_key && !in_labels && matches!(v, Value::String(s) if !s.is_empty()) {
                        if !cx
                            .diagnostics
                            .iter()
                            .any(|d| d.code == "literal-secret" && d.location == cx.at(&child))
                        {
                            cx.push(Diagnostic::error("literal-secret", cx.at(&child), format!("`{key}` holds a secret written into the spec"))
                                .with_hint("specs hold references to secrets (`{env: VARIABLE}` or `{file: path}`), never their values; rotate this secret"));
                        }
                        continue;
                    }
                    walk(cx, child, in_labels || key == "labels");
                }
            }
            Value::Sequence(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(
                        cx,
                        Node {
                            value: v,
                            path: n.path.index(i),
                        },
                        in_labels,
                    );
                }
            }
            Value::String(s) => {
                if let Some(kind) = rules::looks_like_secret(s)
                    && !cx
                        .diagnostics
                        .iter()
                        .any(|d| d.code == "literal-secret" && d.location == cx.at(&n))
                {
                    cx.push(Diagnostic::error("literal-secret", cx.at(&n), format!("this value looks like {kind}; secrets never go into a spec"))
                            .with_hint("reference it instead (`{env: VARIABLE}` or `{file: path}`) where the spec takes a secret, and rotate it"));
                }
            }
            _ => {}
        }
    }
    let root = Node {
        value: &cx.doc.value,
        path: Path::root(),
    };
    walk(cx, root, false);
}
