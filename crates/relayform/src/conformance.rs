//! `relayform conformance`: asks a sandbox org and an AWS account the questions the vendors'
//! documentation leaves open (`../shared/reference/vendor-rules.md`, section 7), with temporary
//! objects of its own, and prints the answers with the simulator settings that reproduce them.
//!
//! Every object it makes is named `rfconf_<id>` (Salesforce) or `rfconf-<id>` (AWS) and recorded
//! before anything else happens to it; whatever happens next (an answer that cannot be had, a refused
//! call, Ctrl-C), what was recorded is deleted again, newest first, and the report says what, if
//! anything, could not be. Pointed at the simulator (embedded, or served and reached as a real org),
//! the answers are the simulator's own settings: that is how CI checks both.

use crate::cli::ConformanceArgs;
use crate::engine;
use anyhow::{Context, bail};
use relayform_aws::Aws;
use relayform_aws::ops as aws_ops;
use relayform_aws::probe;
use relayform_provider::ErrorKind;
use relayform_salesforce::Client;
use relayform_salesforce::ops as sf;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One answer: the question, what the org or account did, and the simulator setting that does the
/// same (`None` when the question could not be asked).
#[derive(Debug, Clone)]
struct Answer {
    question: &'static str,
    answer: String,
    setting: Option<(&'static str, Value)>,
}

/// Something conformance made, to delete again.
#[derive(Debug, Clone)]
enum Temp {
    Tooling(&'static str, String),
    Bus(String, String),
    Rule {
        region: String,
        bus: String,
        rule: String,
        target: &'static str,
    },
    Role(String),
    PartnerBus(String),
    /// A log group and its resource policy.
    LogGroup(String, String),
    /// A data record (object, id).
    Record(String, String),
}

#[derive(Default)]
struct Made(Mutex<Vec<Temp>>);

impl Made {
    fn add(&self, t: Temp) {
        self.0.lock().expect("made").push(t);
    }
    fn all(&self) -> Vec<Temp> {
        self.0.lock().expect("made").clone()
    }
}

struct Ctx {
    sf: Client,
    aws: Aws,
    /// The account in another region, for the cross-region question.
    aws_other: Aws,
    account_id: String,
    region: String,
    other_region: String,
    event: Option<String>,
    /// A change event a relay of the org carries (`AccountChangeEvent`), for the CDC question.
    change_event: Option<String>,
    id: String,
    wait: Duration,
    made: Arc<Made>,
    /// The org's namespace prefix, read first: full names and references in a namespaced org carry
    /// it, and a PATCH must name the prefixed full name.
    namespace: Mutex<Option<String>>,
}

impl Ctx {
    /// A name as the org stores it (with its namespace prefix, if it has one).
    fn in_org(&self, name: &str) -> String {
        match self.namespace.lock().expect("namespace").as_deref() {
            Some(ns) => format!("{ns}__{name}"),
            None => name.to_owned(),
        }
    }
}

const ROLE_POLICY: &str = "rfconf-put";

pub(crate) fn run(
    args: &ConformanceArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let loaded = crate::commands::load(&args.paths, err)?;
    let spec = loaded.spec;
    let Some(org) = spec.orgs.get(&args.org) else {
        bail!(
            "--org {}: the spec has no such org (it has: {})",
            args.org,
            spec.orgs.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    let Some(account) = spec.aws_accounts.get(&args.aws) else {
        bail!(
            "--aws {}: the spec has no such AWS account (it has: {})",
            args.aws,
            spec.aws_accounts
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    // The event to relay: given, or the first platform event a relay of the org carries.
    let event = args.event.clone().or_else(|| {
        spec.relays
            .values()
            .filter(|r| r.org.value == args.org)
            .flat_map(|r| r.events.iter())
            .find(|e| e.value.ends_with("__e"))
            .map(|e| e.value.clone())
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let sim = engine::embedded(
            &spec,
            &args.simulator_state,
            args.simulator_settings.as_deref(),
            None,
        )
        .await?;
        let patience = args
            .call_timeout
            .map(relayform_provider::Patience::per_attempt)
            .unwrap_or_default();
        let conn = engine::connect(&spec, sim.as_ref(), patience).await;
        // One that could not be set up (a secret missing) says why, as plan does.
        let sf = match conn.orgs.get(&args.org) {
            Some(c) => c.clone(),
            None => bail!("{}", conn.failed_orgs[&args.org]),
        };
        let aws = match conn.accounts.get(&args.aws) {
            Some(a) => a.clone(),
            None => bail!("{}", conn.failed_accounts[&args.aws]),
        };
        aws.pin(&account.account_id.value)
            .await
            .map_err(|e| anyhow::anyhow!("cannot use AWS account `{}`: {e}", args.aws))?;
        let region = account.region.value.clone();
        let other_region = if region == "us-east-1" {
            "us-west-2"
        } else {
            "us-east-1"
        }
        .to_owned();
        let target = conn.targets[&account.account_id.value].clone();
        let aws_other = Aws::connect(
            &relayform_aws::Target {
                region: other_region.clone(),
                ..target
            },
            None,
        )
        .await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let ctx = Ctx {
            sf,
            aws,
            aws_other,
            account_id: account.account_id.value.clone(),
            region,
            other_region,
            event,
            change_event: spec
                .relays
                .values()
                .filter(|r| r.org.value == args.org)
                .flat_map(|r| r.events.iter())
                .find(|e| e.value.ends_with("ChangeEvent"))
                .map(|e| e.value.clone()),
            id: format!("{:06x}", (nanos >> 8) & 0xff_ffff),
            wait: args.wait_timeout,
            made: Arc::default(),
            namespace: Mutex::new(None),
        };
        writeln!(
            err,
            "asking org `{}` ({}) and AWS account {} ({}); temporary objects are named rfconf_{} / rfconf-{}",
            args.org,
            match &org.connection {
                relayform_spec::OrgConnection::Simulator => "embedded simulator".to_owned(),
                relayform_spec::OrgConnection::Remote { instance_url, .. } =>
                    instance_url.value.clone(),
            },
            ctx.account_id,
            ctx.region,
            ctx.id,
            ctx.id
        )?;
        let answers = Arc::new(Mutex::new(Vec::new()));
        let asked = tokio::select! {
            r = ask(&ctx, &answers) => r.map_err(|e| e.to_string()),
            _ = tokio::signal::ctrl_c() => Err("interrupted (Ctrl-C)".to_owned()),
        };
        let left = cleanup(&ctx).await;
        let answers = answers.lock().expect("answers").clone();
        if let Some(sim) = sim {
            sim.shutdown()
                .await
                .context("cannot save the embedded simulator's state")?;
        }
        report(&answers, &asked, &left, args.json, out)?;
        Ok(if asked.is_ok() && left.is_empty() { 0 } else { 1 })
    })
}

fn report(
    answers: &[Answer],
    asked: &Result<(), String>,
    left: &[String],
    as_json: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let settings: serde_json::Map<String, Value> = answers
        .iter()
        .filter_map(|a| a.setting.clone())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    if as_json {
        let doc = json!({
            "format_version": 2,
            "answers": answers.iter().map(|a| json!({
                "question": a.question,
                "answer": a.answer,
                "setting": a.setting.as_ref().map(|(k, v)| json!({k.to_owned(): v})),
            })).collect::<Vec<_>>(),
            "settings": settings,
            "complete": asked.is_ok(),
            "stopped_by": asked.as_ref().err(),
            "left_behind": left,
        });
        return writeln!(out, "{doc:#}");
    }
    let width = answers.iter().map(|a| a.question.len()).max().unwrap_or(0);
    for a in answers {
        writeln!(out, "{:width$}  {}", a.question, a.answer)?;
    }
    if let Err(e) = asked {
        writeln!(out, "\nstopped before every question was asked: {e}")?;
    }
    if left.is_empty() {
        writeln!(out, "\nEvery temporary object was deleted.")?;
    } else {
        writeln!(
            out,
            "\nCould not delete (delete these by hand): {}",
            left.join("; ")
        )?;
    }
    writeln!(
        out,
        "\nSimulator settings that reproduce these answers (for `sim serve --config` or `--simulator-settings`):\nsettings:"
    )?;
    for (k, v) in &settings {
        let shown = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        writeln!(out, "  {k}: {shown}")?;
    }
    Ok(())
}

type Answers = Arc<Mutex<Vec<Answer>>>;

fn say(answers: &Answers, question: &'static str, answer: String, setting: (&'static str, Value)) {
    answers.lock().expect("answers").push(Answer {
        question,
        answer,
        setting: Some(setting),
    });
}

fn unasked(answers: &Answers, question: &'static str, why: String) {
    answers.lock().expect("answers").push(Answer {
        question,
        answer: format!("not asked: {why}"),
        setting: None,
    });
}

/// Polls `check` every `step` until it gives a value or `wait` passes.
async fn poll<T, F, Fut>(wait: Duration, mut check: F) -> anyhow::Result<Option<(T, Duration)>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        if let Some(v) = check().await? {
            return Ok(Some((v, start.elapsed())));
        }
        if start.elapsed() >= wait {
            return Ok(None);
        }
        tokio::time::sleep(pause.min(wait.saturating_sub(start.elapsed()))).await;
        pause = (pause * 3 / 2).min(Duration::from_secs(10));
    }
}

/// How far a new relay's partner source got within the wait.
enum Registration {
    /// Salesforce did not fill `RemoteResource`.
    NotNamed(String),
    /// AWS did not show the named source.
    NotVisible(String),
    /// AWS shows it, in `state`, `lag` after Salesforce named it.
    Visible {
        source: String,
        state: String,
        lag: Duration,
    },
}

/// Waits for Salesforce to name a relay's partner source, then for AWS to show it.
async fn partner_source(ctx: &Ctx, relay: &str) -> anyhow::Result<Registration> {
    let named = poll(ctx.wait, || async {
        Ok(feedback(ctx, relay).await?.remote_resource)
    })
    .await?;
    let Some((source, _)) = named else {
        return Ok(Registration::NotNamed(format!(
            "Salesforce did not register the partner source within {}s",
            ctx.wait.as_secs()
        )));
    };
    let visible = poll(ctx.wait, || async {
        Ok(probe::source_state(&ctx.aws, &source).await?)
    })
    .await?;
    Ok(match visible {
        None => Registration::NotVisible(format!(
            "AWS did not show {source} within {}s",
            ctx.wait.as_secs()
        )),
        Some((state, lag)) => Registration::Visible { source, state, lag },
    })
}

/// Waits until the relay's feedback says RUNNING; false if it does not within the wait.
async fn until_running(ctx: &Ctx, relay: &str) -> anyhow::Result<bool> {
    let ran = poll(ctx.wait, || async {
        let f = feedback(ctx, relay).await?;
        Ok((f.status.as_deref() == Some("RUNNING")).then_some(()))
    })
    .await?;
    Ok(ran.is_some())
}

fn seconds(d: Duration) -> u64 {
    d.as_secs_f64().round() as u64
}

async fn feedback(ctx: &Ctx, relay: &str) -> anyhow::Result<sf::Feedback> {
    Ok(sf::feedback_all(&ctx.sf)
        .await?
        .into_iter()
        .find(|(id, _)| sf::same_id(id, relay))
        .map(|(_, f)| f)
        .unwrap_or_default())
}

async fn create(
    ctx: &Ctx,
    sobject: &'static str,
    full_name: &str,
    metadata: Value,
) -> anyhow::Result<String> {
    let id = ctx
        .sf
        .tooling_create(
            sobject,
            &json!({"FullName": full_name, "Metadata": metadata}),
        )
        .await
        .with_context(|| format!("cannot create the temporary {sobject} {full_name}"))?;
    ctx.made.add(Temp::Tooling(sobject, id.clone()));
    Ok(id)
}

async fn ask(ctx: &Ctx, answers: &Answers) -> anyhow::Result<()> {
    let org = ctx
        .sf
        .query("SELECT Id, NamespacePrefix FROM Organization")
        .await?;
    *ctx.namespace.lock().expect("namespace") = org
        .first()
        .and_then(|o| o.get("NamespacePrefix"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let name = format!("Rfconf_{}", ctx.id);
    let channel = format!("{name}__chn");
    let endpoint = relayform_spec::names::named_credential_endpoint(&ctx.account_id, &ctx.region);

    // Q: does the Tooling face of NamedCredential have Endpoint?
    create(
        ctx,
        "NamedCredential",
        &name,
        sf::named_credential_definition(&name, &endpoint),
    )
    .await?;
    let q = "NamedCredential.Endpoint on the Tooling API";
    match ctx
        .sf
        .tooling_query(&format!(
            "SELECT Id, Endpoint FROM NamedCredential WHERE DeveloperName = '{name}'"
        ))
        .await
    {
        Ok(_) => say(
            answers,
            q,
            "queryable".into(),
            ("tooling_named_credential_endpoint", json!("present")),
        ),
        Err(e) if e.code.as_deref() == Some("INVALID_FIELD") => say(
            answers,
            q,
            "INVALID_FIELD (only the data API has it)".into(),
            ("tooling_named_credential_endpoint", json!("absent")),
        ),
        Err(e) => return Err(e.into()),
    }

    let channel_id = create(
        ctx,
        "PlatformEventChannel",
        &channel,
        sf::channel_definition("event", &name),
    )
    .await?;
    if let Some(event) = &ctx.event {
        create(
            ctx,
            "PlatformEventChannelMember",
            &relayform_spec::names::channel_member(&name, event),
            json!({"eventChannel": channel, "selectedEntity": event}),
        )
        .await?;
    }
    let def = sf::RelayDefinition {
        label: name.clone(),
        channel: ctx.in_org(&channel),
        destination: format!("callout:{}", ctx.in_org(&name)),
        relay_option: r#"{"ReplayRecovery":"EARLIEST"}"#.into(),
        state: "STOP".into(),
    };
    let created = Instant::now();
    let relay = create(ctx, "EventRelayConfig", &name, def.metadata()).await?;

    // Q: in what form does a relay query give its channel?
    let rows = ctx
        .sf
        .tooling_query(&format!(
            "SELECT EventChannel FROM EventRelayConfig WHERE DeveloperName = '{name}'"
        ))
        .await?;
    let seen = rows
        .first()
        .and_then(|r| r.get("EventChannel"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let q = "EventRelayConfig.EventChannel in a query";
    if sf::same_id(&seen, &channel_id) {
        say(
            answers,
            q,
            format!("the channel's id ({seen})"),
            ("relay_event_channel", json!("id")),
        );
    } else {
        say(
            answers,
            q,
            format!("the full name ({seen})"),
            ("relay_event_channel", json!("full_name")),
        );
    }

    // Q: is a partial PATCH refused, or are the fields it leaves out kept or reset?
    let q = "a Tooling PATCH without the whole definition";
    let partial = ctx
        .sf
        .tooling_update(
            "EventRelayConfig",
            &relay,
            &json!({"Metadata": {"state": "STOP"}}),
        )
        .await;
    match partial {
        Err(e) if e.kind == ErrorKind::Rejected => say(
            answers,
            q,
            format!(
                "refused ({}): the PATCH is the whole definition",
                e.code.unwrap_or_default()
            ),
            ("tooling_patch", json!("replace")),
        ),
        Err(e) => return Err(e.into()),
        Ok(()) => {
            let rec = ctx.sf.tooling_get("EventRelayConfig", &relay).await?;
            let kept = rec["RelayOption"]
                .as_str()
                .is_some_and(|o| o.contains("EARLIEST"));
            if kept {
                say(
                    answers,
                    q,
                    "accepted; relayOption left out was kept".into(),
                    ("tooling_patch", json!("merge")),
                );
            } else {
                say(
                    answers,
                    q,
                    "accepted; relayOption left out went back to its default (LATEST)".into(),
                    ("tooling_patch", json!("replace")),
                );
            }
            // Whatever it did, the relay is EARLIEST again for what follows.
            sf::update(
                &ctx.sf,
                "EventRelayConfig",
                &relay,
                &ctx.in_org(&name),
                def.metadata(),
            )
            .await?;
        }
    }

    // Q: can a relay's label change?
    let q = "a PATCH that changes a relay's label";
    let relabelled = sf::RelayDefinition {
        label: format!("{name} relabelled"),
        ..def.clone()
    };
    match sf::update(
        &ctx.sf,
        "EventRelayConfig",
        &relay,
        &ctx.in_org(&name),
        relabelled.metadata(),
    )
    .await
    {
        Err(e) if e.kind == ErrorKind::Rejected => say(
            answers,
            q,
            format!("refused ({})", e.code.unwrap_or_default()),
            ("relay_label_update", json!("reject")),
        ),
        Err(e) => return Err(e.into()),
        Ok(()) => {
            let rec = ctx.sf.tooling_get("EventRelayConfig", &relay).await?;
            if rec["MasterLabel"].as_str() == Some(relabelled.label.as_str()) {
                say(
                    answers,
                    q,
                    "accepted and applied".into(),
                    ("relay_label_update", json!("accept")),
                );
            } else {
                say(
                    answers,
                    q,
                    "answered 204, label unchanged".into(),
                    ("relay_label_update", json!("ignore")),
                );
            }
        }
    }

    // Q: how long until Salesforce names the partner source, and until AWS shows it?
    let (source, state, lag) = match partner_source(ctx, &relay).await? {
        Registration::NotNamed(why) => {
            unasked(answers, "seconds until RemoteResource is filled", why);
            return Ok(());
        }
        Registration::NotVisible(why) => {
            unasked(answers, "seconds until AWS shows the partner source", why);
            return Ok(());
        }
        Registration::Visible { source, state, lag } => (source, state, lag),
    };
    let named_after = created.elapsed().saturating_sub(lag);
    say(
        answers,
        "seconds until RemoteResource is filled",
        format!("{}", seconds(named_after)),
        ("partner_source_delay_seconds", json!(seconds(named_after))),
    );
    say(
        answers,
        "seconds until AWS shows the partner source",
        format!("{} (then {state})", seconds(lag)),
        ("source_visibility_lag_seconds", json!(seconds(lag))),
    );

    // Q: a relay set running while its source is still PENDING.
    let q = "a relay set running before its source is associated";
    let running = sf::RelayDefinition {
        state: "RUN".into(),
        ..def.clone()
    };
    sf::update(
        &ctx.sf,
        "EventRelayConfig",
        &relay,
        &ctx.in_org(&name),
        running.metadata(),
    )
    .await?;
    let settled = poll(ctx.wait, || async {
        let f = feedback(ctx, &relay).await?;
        Ok(match f.status.as_deref() {
            Some("RUNNING") => Some(("RUNNING".to_owned(), f)),
            Some("ERROR") => Some(("ERROR".to_owned(), f)),
            _ => None,
        })
    })
    .await?;
    match settled {
        None => unasked(
            answers,
            q,
            format!(
                "the relay reached neither RUNNING nor ERROR within {}s",
                ctx.wait.as_secs()
            ),
        ),
        Some(((status, f), took)) => {
            say(
                answers,
                "seconds until a state change shows in the feedback",
                format!("{}", seconds(took)),
                ("state_change_delay_seconds", json!(seconds(took))),
            );
            if status == "RUNNING" {
                say(
                    answers,
                    q,
                    "RUNNING (AWS drops what it relays meanwhile)".into(),
                    ("pending_source_delivery", json!("drop")),
                );
            } else {
                say(
                    answers,
                    q,
                    format!(
                        "ERROR ({})",
                        f.error_code.unwrap_or_else(|| "no code".into())
                    ),
                    ("pending_source_delivery", json!("error")),
                );
            }
        }
    }
    // Associate, so that the partner bus and the relay go cleanly.
    aws_ops::associate(&ctx.aws, &source, &aws_ops::Tags::managed()).await?;
    ctx.made.add(Temp::PartnerBus(source.clone()));

    // Q: the envelopes of a relayed platform event and CDC update, read back from a log group.
    let group = envelope(ctx, answers, &relay, &source).await?;
    cdc_envelope(ctx, answers, &name, group.as_ref()).await?;

    // Q: a target on a bus in another region, without a policy on that bus.
    let bus = format!("rfconf-{}", ctx.id);
    let here_arn = probe::create_bus(&ctx.aws, &bus).await?;
    ctx.made.add(Temp::Bus(ctx.region.clone(), bus.clone()));
    let there_arn = probe::create_bus(&ctx.aws_other, &bus).await?;
    ctx.made
        .add(Temp::Bus(ctx.other_region.clone(), bus.clone()));
    let role = format!("rfconf-{}", ctx.id);
    let partition = relayform_spec::rules::partition(&ctx.region).unwrap_or("aws");
    let trust = relayform_plan::policy::forwarding_trust(partition, &ctx.region, &ctx.account_id);
    let permission = relayform_plan::policy::forwarding_permission(&there_arn);
    ctx.made.add(Temp::Role(role.clone()));
    aws_ops::put_role(
        &ctx.aws,
        &role,
        &trust.to_string(),
        ROLE_POLICY,
        &permission.to_string(),
        &aws_ops::Tags::managed(),
    )
    .await?;
    let role_arn = format!("arn:{partition}:iam::{}:role/{role}", ctx.account_id);
    ctx.made.add(Temp::Rule {
        region: ctx.region.clone(),
        bus: bus.clone(),
        rule: bus.clone(),
        target: "other-region",
    });
    let q = "a target on a bus in another region, with no policy there";
    let put = aws_ops::put_forwarding(
        &ctx.aws,
        &aws_ops::Forwarding {
            bus: &bus,
            rule: &bus,
            target_id: "other-region",
            destination_arn: &there_arn,
            role_arn: &role_arn,
            tags: &aws_ops::Tags::managed(),
        },
    )
    .await;
    match put {
        Err(e) if e.code.as_deref() == Some("AccessDeniedException") => say(
            answers,
            q,
            "AccessDeniedException at PutTargets".into(),
            ("receiver_bus_policy", json!("enforce")),
        ),
        Err(e) => return Err(e.into()),
        Ok(()) => say(
            answers,
            q,
            "accepted".into(),
            ("receiver_bus_policy", json!("ignore")),
        ),
    }
    let _ = here_arn;

    // Q: DeleteEventBus while the bus has a rule.
    let q = "DeleteEventBus on a bus that has rules";
    match aws_ops::delete_bus(&ctx.aws, &bus).await {
        Err(e) if matches!(e.kind, ErrorKind::Rejected | ErrorKind::Conflict) => say(
            answers,
            q,
            format!("refused ({})", e.code.unwrap_or_default()),
            ("delete_bus_with_rules", json!("refuse")),
        ),
        Err(e) => return Err(e.into()),
        Ok(()) => say(
            answers,
            q,
            "deleted, rules and all".into(),
            ("delete_bus_with_rules", json!("cascade")),
        ),
    }
    Ok(())
}

/// The log group relayed events are read back from (made once): its name and ARN.
async fn log_group(ctx: &Ctx) -> anyhow::Result<(String, String)> {
    let group = format!("/aws/events/rfconf-{}", ctx.id);
    let policy = format!("rfconf-{}", ctx.id);
    ctx.made.add(Temp::LogGroup(group.clone(), policy.clone()));
    let arn = probe::create_log_group(&ctx.aws, &group, &policy).await?;
    Ok((group, arn))
}

/// A rule on a partner bus sending everything to the log group.
async fn capture(ctx: &Ctx, source: &str, group_arn: &str, n: u8) -> anyhow::Result<()> {
    let rule = format!("rfconf-{}-capture{n}", ctx.id);
    ctx.made.add(Temp::Rule {
        region: ctx.region.clone(),
        bus: source.to_owned(),
        rule: rule.clone(),
        target: "capture",
    });
    probe::capture(&ctx.aws, source, &rule, group_arn).await?;
    Ok(())
}

fn keys(v: &Value) -> String {
    v.as_object()
        .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "none".into())
}

/// Relays one platform event through the temporary relay to a log group on its partner bus, and
/// describes the envelope it arrives in. Returns the log group, once made.
async fn envelope(
    ctx: &Ctx,
    answers: &Answers,
    relay: &str,
    source: &str,
) -> anyhow::Result<Option<(String, String)>> {
    let q = "the envelope of a relayed platform event";
    let Some(event) = ctx.event.clone() else {
        unasked(
            answers,
            q,
            "no platform event to relay (give one with --event)".into(),
        );
        return Ok(None);
    };
    let (group, group_arn) = log_group(ctx).await?;
    capture(ctx, source, &group_arn, 1).await?;
    // Once the relay runs with its source active, publish and wait for the event to arrive.
    if !until_running(ctx, relay).await? {
        unasked(
            answers,
            q,
            format!("the relay did not run within {}s", ctx.wait.as_secs()),
        );
        return Ok(Some((group, group_arn)));
    }
    ctx.sf
        .publish(&event, &json!({}))
        .await
        .with_context(|| format!("cannot publish {event}"))?;
    let arrived = poll(ctx.wait, || async {
        let messages = probe::log_messages(&ctx.aws, &group).await?;
        Ok(messages.into_iter().next())
    })
    .await?;
    let Some((message, took)) = arrived else {
        unasked(
            answers,
            q,
            format!(
                "the event did not reach the log group within {}s",
                ctx.wait.as_secs()
            ),
        );
        return Ok(Some((group, group_arn)));
    };
    let env: Value = serde_json::from_str(&message).unwrap_or(Value::Null);
    let mut facts = vec![
        format!(
            "source {}",
            if env["source"] == source {
                "is the partner source".to_owned()
            } else {
                format!("{}", env["source"])
            }
        ),
        format!("detail-type {}", env["detail-type"]),
        format!("detail keys: {}", keys(&env["detail"])),
        format!("resources {}", env["resources"]),
        format!("time {}", env["time"]),
        format!("after {}s", seconds(took)),
    ];
    if env["detail"].get("payload").is_none() {
        facts.push("no detail.payload".into());
    }
    answers.lock().expect("answers").push(Answer {
        question: q,
        answer: facts.join("; "),
        setting: None,
    });
    Ok(Some((group, group_arn)))
}

/// Deletes what conformance made, newest first; returns what could not be deleted.
async fn cleanup(ctx: &Ctx) -> Vec<String> {
    let mut left = Vec::new();
    for t in ctx.made.all().into_iter().rev() {
        let (what, r) = match &t {
            Temp::Tooling(sobject, id) => (
                format!("{sobject} {id}"),
                sf::delete(&ctx.sf, sobject, id).await,
            ),
            Temp::Rule {
                region,
                bus,
                rule,
                target,
            } => {
                let aws = if *region == ctx.region {
                    &ctx.aws
                } else {
                    &ctx.aws_other
                };
                (
                    format!("rule {rule} on {bus} ({region})"),
                    aws_ops::delete_forwarding(aws, bus, rule, target).await,
                )
            }
            Temp::Record(object, id) => (
                format!("{object} {id}"),
                match ctx.sf.record_delete(object, id).await {
                    Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
                    other => other,
                },
            ),
            Temp::LogGroup(group, policy) => (
                format!("log group {group}"),
                probe::delete_log_group(&ctx.aws, group, policy).await,
            ),
            Temp::Bus(region, bus) => {
                let aws = if *region == ctx.region {
                    &ctx.aws
                } else {
                    &ctx.aws_other
                };
                (
                    format!("event bus {bus} ({region})"),
                    aws_ops::delete_bus(aws, bus).await,
                )
            }
            Temp::PartnerBus(source) => (
                format!("partner event bus {source}"),
                aws_ops::delete_bus(&ctx.aws, source).await,
            ),
            Temp::Role(role) => (
                format!("IAM role {role}"),
                aws_ops::delete_role(&ctx.aws, role, ROLE_POLICY).await,
            ),
        };
        if let Err(e) = r {
            left.push(format!("{what}: {e}"));
        }
    }
    left
}

/// Relays a change data capture UPDATE (a record of the entity created, then changed) through a
/// second temporary relay on a data channel, and describes its envelope.
async fn cdc_envelope(
    ctx: &Ctx,
    answers: &Answers,
    credential: &str,
    group: Option<&(String, String)>,
) -> anyhow::Result<()> {
    let q = "the envelope of a relayed CDC update";
    let Some(event) = ctx.change_event.clone() else {
        unasked(
            answers,
            q,
            "no relay of the org carries a change event (such as AccountChangeEvent)".into(),
        );
        return Ok(());
    };
    let Some((group, group_arn)) = group.cloned() else {
        unasked(
            answers,
            q,
            "the platform event's log group was not made".into(),
        );
        return Ok(());
    };
    let stem = event.trim_end_matches("ChangeEvent");
    let entity = match stem.strip_suffix("__") {
        Some(custom) => format!("{custom}__c"),
        None => stem.to_owned(),
    };
    let name = format!("Rfconf_{}_cdc", ctx.id);
    let channel = format!("{name}__chn");
    create(
        ctx,
        "PlatformEventChannel",
        &channel,
        sf::channel_definition("data", &name),
    )
    .await?;
    create(
        ctx,
        "PlatformEventChannelMember",
        &relayform_spec::names::channel_member(&name, &event),
        json!({"eventChannel": channel, "selectedEntity": event}),
    )
    .await?;
    let def = sf::RelayDefinition {
        label: name.clone(),
        channel: ctx.in_org(&channel),
        destination: format!("callout:{}", ctx.in_org(credential)),
        relay_option: r#"{"ReplayRecovery":"LATEST"}"#.into(),
        state: "STOP".into(),
    };
    let relay = create(ctx, "EventRelayConfig", &name, def.metadata()).await?;
    let source = match partner_source(ctx, &relay).await? {
        Registration::Visible { source, .. } => source,
        Registration::NotNamed(why) | Registration::NotVisible(why) => {
            unasked(answers, q, why);
            return Ok(());
        }
    };
    aws_ops::associate(&ctx.aws, &source, &aws_ops::Tags::managed()).await?;
    ctx.made.add(Temp::PartnerBus(source.clone()));
    capture(ctx, &source, &group_arn, 2).await?;
    let running = sf::RelayDefinition {
        state: "RUN".into(),
        ..def
    };
    sf::update(
        &ctx.sf,
        "EventRelayConfig",
        &relay,
        &ctx.in_org(&name),
        running.metadata(),
    )
    .await?;
    if !until_running(ctx, &relay).await? {
        unasked(answers, q, "the CDC relay did not run".into());
        return Ok(());
    }
    let name_field = if matches!(entity.as_str(), "Contact" | "Lead") {
        "LastName"
    } else {
        "Name"
    };
    let record = match ctx
        .sf
        .record_create(&entity, &json!({name_field: format!("rfconf {}", ctx.id)}))
        .await
    {
        Ok(id) => id,
        Err(e) => {
            unasked(answers, q, format!("cannot create a {entity} record: {e}"));
            return Ok(());
        }
    };
    ctx.made.add(Temp::Record(entity.clone(), record.clone()));
    ctx.sf
        .record_update(
            &entity,
            &record,
            &json!({name_field: format!("rfconf {} updated", ctx.id)}),
        )
        .await?;
    let arrived = poll(ctx.wait, || async {
        let messages = probe::log_messages(&ctx.aws, &group).await?;
        Ok(messages
            .into_iter()
            .filter_map(|m| serde_json::from_str::<Value>(&m).ok())
            .find(|env| {
                env["detail-type"] == event.as_str()
                    && env["detail"]["payload"]["ChangeEventHeader"]["changeType"] == "UPDATE"
            }))
    })
    .await?;
    let Some((env, took)) = arrived else {
        unasked(
            answers,
            q,
            format!("no UPDATE arrived within {}s", ctx.wait.as_secs()),
        );
        return Ok(());
    };
    let header = &env["detail"]["payload"]["ChangeEventHeader"];
    let changed = &header["changedFields"];
    let changed_form = match changed.as_array().and_then(|a| a.first()) {
        Some(Value::String(f)) if f.starts_with("0x") => "bitmaps".to_owned(),
        Some(Value::String(_)) => format!("field names ({changed})"),
        _ => format!("{changed}"),
    };
    let facts = [
        format!("detail-type {}", env["detail-type"]),
        format!("detail keys: {}", keys(&env["detail"])),
        format!("payload keys: {}", keys(&env["detail"]["payload"])),
        format!("changedFields as {changed_form}"),
        format!("after {}s", seconds(took)),
    ];
    answers.lock().expect("answers").push(Answer {
        question: q,
        answer: facts.join("; "),
        setting: None,
    });
    Ok(())
}
