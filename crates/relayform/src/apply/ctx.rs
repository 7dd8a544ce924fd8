//! What a step finds in the run's context: clients by address, ids made so far or refreshed,
//! relays' whole definitions, shared feedback reads, and waiting with backoff while giving the slot
//! back.

use super::*;

impl Ctx {
    pub(super) fn org_of(&self, address: &Address) -> Result<&Client, String> {
        let org = match address.kind {
            Kind::NamedCredential => relay_of(address).to_owned(),
            _ => self
                .spec
                .relays
                .get(relay_of(address))
                .map(|r| r.org.value.clone())
                .ok_or_else(|| format!("{address} names no relay of the spec"))?,
        };
        self.conn
            .orgs
            .get(&org)
            .ok_or_else(|| format!("no connection to org `{org}`"))
    }

    pub(super) fn account_of(&self, address: &Address) -> Result<&Aws, String> {
        let account = match address.kind {
            Kind::Role | Kind::BusPolicy => relay_of(address).to_owned(),
            _ => self
                .spec
                .relays
                .get(relay_of(address))
                .map(|r| r.aws_account.value.clone())
                .ok_or_else(|| format!("{address} names no relay of the spec"))?,
        };
        self.conn
            .accounts
            .get(&account)
            .ok_or_else(|| format!("no connection to AWS account `{account}`"))
    }

    /// A client for the spec account `account` in `region` (which may not be the account's own).
    pub(super) async fn account_in_region(
        &self,
        account: &str,
        region: &str,
    ) -> Result<Aws, String> {
        let a = self
            .spec
            .aws_accounts
            .get(account)
            .ok_or_else(|| format!("no AWS account `{account}` in the spec"))?;
        if a.region.value == region {
            return self
                .conn
                .accounts
                .get(account)
                .cloned()
                .ok_or_else(|| format!("no connection to AWS account `{account}`"));
        }
        let t = self
            .conn
            .targets
            .get(&a.account_id.value)
            .ok_or_else(|| format!("no connection to AWS account `{account}`"))?;
        Ok(Aws::connect(
            &relayform_aws::Target {
                region: region.to_owned(),
                ..t.clone()
            },
            None,
        )
        .await)
    }

    pub(super) fn desired(&self, address: &Address) -> Result<&Desired, String> {
        self.graph
            .get(address)
            .map(|r| &r.desired)
            .ok_or_else(|| format!("{address} is not in the spec's graph"))
    }

    /// The relay as it was observed before apply.
    pub(super) fn observed_relay(&self, relay: &str) -> Option<&ObservedRelay> {
        let r = self.spec.relays.get(relay)?;
        self.observed
            .orgs
            .get(&r.org.value)?
            .relays
            .iter()
            .find(|x| x.name == r.names.relay)
    }

    /// A name as the org stores it: with its namespace prefix, if the org has one.
    pub(super) fn in_org(&self, org: &str, name: &str) -> String {
        match self
            .observed
            .orgs
            .get(org)
            .and_then(|o| o.namespace.as_deref())
        {
            Some(ns) => format!("{ns}__{name}"),
            None => name.to_owned(),
        }
    }

    /// A relay's whole definition as it stands now: what this run created or last set, else what the
    /// refresh read.
    pub(super) fn relay_definition(&self, relay: &str) -> Result<sf::RelayDefinition, String> {
        if let Some(d) = self.relay_defs.lock().expect("defs").get(relay) {
            return Ok(d.clone());
        }
        let seen = self
            .observed_relay(relay)
            .ok_or_else(|| format!("the relay `{relay}` does not exist"))?;
        // Channel and credential as the spec names them: the plan replaces a relay whose channel or
        // credential differ, so these are the relay's own, in the form a PATCH takes (a query may
        // have returned the channel as its id).
        let r = &self.spec.relays[relay];
        let names = &r.names;
        Ok(sf::RelayDefinition {
            label: seen.label.clone().unwrap_or_else(|| seen.name.clone()),
            channel: self.in_org(&r.org.value, &names::channel_full_name(&names.channel)),
            destination: format!(
                "callout:{}",
                self.in_org(&r.org.value, &names.named_credential)
            ),
            relay_option: seen.relay_option.clone().unwrap_or_default(),
            state: seen.state.clone().unwrap_or_else(|| "STOP".into()),
        })
    }

    /// PATCHes a relay with its whole definition, changed by `edit`.
    pub(super) async fn patch_relay(
        &self,
        address: &Address,
        relay: &str,
        edit: impl FnOnce(&mut sf::RelayDefinition),
    ) -> Result<(), Failure> {
        let mut def = self.relay_definition(relay)?;
        edit(&mut def);
        let r = &self.spec.relays[relay];
        sf::update(
            self.org_of(address)?,
            "EventRelayConfig",
            &self.relay_id(relay)?,
            &self.in_org(&r.org.value, &r.names.relay),
            def.metadata(),
        )
        .await
        .map_err(e)?;
        self.relay_defs
            .lock()
            .expect("defs")
            .insert(relay.to_owned(), def);
        Ok(())
    }

    pub(super) fn channel_id(&self, relay: &str) -> Result<String, String> {
        if let Some(id) = self.channel_ids.lock().expect("ids").get(relay) {
            return Ok(id.clone());
        }
        let r = &self.spec.relays[relay];
        self.observed
            .orgs
            .get(&r.org.value)
            .and_then(|o| o.channels.iter().find(|c| c.name == r.names.channel))
            .map(|c| c.id.clone())
            .ok_or_else(|| format!("the channel of relay `{relay}` does not exist"))
    }

    pub(super) fn relay_id(&self, relay: &str) -> Result<String, String> {
        if let Some(id) = self.relay_ids.lock().expect("ids").get(relay) {
            return Ok(id.clone());
        }
        self.observed_relay(relay)
            .map(|r| r.id.clone())
            .ok_or_else(|| format!("the relay `{relay}` does not exist"))
    }

    /// A relay's feedback, from a read of the whole org's no older than [`FEEDBACK_FRESH`] (made now
    /// if there is none): relays waiting together cost one query per poll, not one each.
    pub(super) async fn relay_feedback(
        &self,
        relay: &str,
        relay_id: &str,
    ) -> Result<sf::Feedback, StepError> {
        let org = &self.spec.relays[relay].org.value;
        let cell = self
            .feedback
            .get(org)
            .ok_or_else(|| format!("no org `{org}`"))?
            .clone();
        let mut read = cell.lock().await;
        if read
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() > FEEDBACK_FRESH)
        {
            let client = self
                .conn
                .orgs
                .get(org)
                .ok_or_else(|| format!("no connection to org `{org}`"))?;
            let rows = sf::feedback_all(client).await.map_err(e)?;
            *read = Some((Instant::now(), rows));
        }
        let rows = read.as_ref().map(|(_, r)| r.as_slice()).unwrap_or_default();
        Ok(rows
            .iter()
            .find(|(id, _)| sf::same_id(id, relay_id))
            .map(|(_, f)| f.clone())
            .unwrap_or_default())
    }

    /// Polls `check` with backoff until it gives a value or the wait timeout passes.
    pub(super) async fn wait_for<T, F, Fut>(
        &self,
        slot: &mut Slot,
        step: &str,
        what: &str,
        mut check: F,
    ) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, StepError>>,
    {
        let started = Instant::now();
        let mut pause = self.options.first_poll;
        let mut told = None::<Instant>;
        loop {
            if let Some(v) = check().await? {
                return Ok(v);
            }
            if self.stop.load(Ordering::SeqCst) {
                return Err(format!("interrupted while waiting for {what}").into());
            }
            let waited = started.elapsed();
            if waited >= self.options.wait_timeout {
                return Err(StepError::Pending(format!(
                    "still waiting for {what} after {} (--wait-timeout)",
                    human(self.options.wait_timeout)
                )));
            }
            if told.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                told = Some(Instant::now());
                let _ =
                    self.progress
                        .send(Progress::Waiting(step.to_owned(), what.to_owned(), waited));
            }
            // Waiting takes no slot: other changes go on meanwhile.
            slot.release();
            tokio::time::sleep(pause.min(self.options.wait_timeout.saturating_sub(waited))).await;
            slot.retake().await;
            pause = (pause * 3 / 2).min(self.options.max_poll);
        }
    }
}

/// `500ms`, `90s`, `5m`: as `--wait-timeout` takes them.
pub(super) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl Slot {
    pub(super) async fn take(slots: Arc<Semaphore>) -> Slot {
        let mut s = Slot {
            slots,
            permit: None,
        };
        s.retake().await;
        s
    }

    pub(super) fn release(&mut self) {
        self.permit = None;
    }

    pub(super) async fn retake(&mut self) {
        // The semaphore is never closed.
        self.permit = self.slots.clone().acquire_owned().await.ok();
    }
}
