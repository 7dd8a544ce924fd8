//! Waiting on the vendors: a slot of `--parallelism` held while calling and given back while
//! waiting, polls with backoff up to the wait timeout, and feedback reads shared by every relay
//! waiting in an org.

use crate::Progress;
use crate::run::{FeedbackRead, Run, StepError};
use relayform_provider::act::Feedback;
use relayform_provider::same_id;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How old a feedback read may be and still answer a waiter.
const FEEDBACK_FRESH: Duration = Duration::from_millis(250);

impl Run {
    /// A relay's feedback, from a read of the whole org's no older than [`FEEDBACK_FRESH`] and made
    /// after this run last changed the relay (made now if there is none): relays waiting together
    /// cost one query per poll, not one each.
    pub(crate) async fn relay_feedback(
        &self,
        org: &str,
        relay_id: &str,
    ) -> Result<Feedback, StepError> {
        let touched = self.touched.lock().expect("touched").get(relay_id).copied();
        let cell = self
            .feedback
            .lock()
            .expect("feedback")
            .entry(org.to_owned())
            .or_default()
            .clone();
        let mut read = cell.lock().await;
        if read.as_ref().is_none_or(|(at, _): &FeedbackRead| {
            at.elapsed() > FEEDBACK_FRESH || touched.is_some_and(|t| *at < t)
        }) {
            let rows = self.org(org)?.feedback().await?;
            *read = Some((Instant::now(), rows));
        }
        let rows = read.as_ref().map(|(_, r)| r.as_slice()).unwrap_or_default();
        Ok(rows
            .iter()
            .find(|f| same_id(&f.relay_id, relay_id))
            .cloned()
            .unwrap_or_default())
    }

    /// Polls `check` with backoff until it gives a value or the wait timeout passes.
    pub(crate) async fn wait_for<T, F, Fut>(
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

/// A share of `--parallelism`: held while a step calls an API, given back while it waits.
pub(crate) struct Slot {
    slots: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Slot {
    /// The slot a permit of `slots` already is.
    pub(crate) fn held(slots: Arc<Semaphore>, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            slots,
            permit: Some(permit),
        }
    }

    pub(crate) fn release(&mut self) {
        self.permit = None;
    }

    pub(crate) async fn retake(&mut self) {
        // The semaphore is never closed.
        self.permit = self.slots.clone().acquire_owned().await.ok();
    }
}

/// `500ms`, `90s`, `5m`: as `--wait-timeout` takes them.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
