//! Apply: the plan lowered to steps (`relayform_plan::lower`), run by the vendor-free executor
//! (`relayform_exec::run`) through the real providers, which this module connects: the Salesforce
//! client of each org and the AWS clients of each account, plus clients made on demand for other
//! regions of an account the spec has credentials for (a relay moved to another region leaves its
//! old partner bus behind in the old one).

use relayform_aws::Aws;
use relayform_plan::diff::Observed;
use relayform_plan::plan::Plan;
use relayform_provider::act::{AccountApi, AccountAt, Connect, OrgApi};
use relayform_salesforce::Client;
use relayform_spec::Spec;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::mpsc;

pub(crate) use relayform_exec::{Counts, Options, Progress, Report};
pub(crate) use relayform_provider::act::Scope;

/// The connections apply uses, by spec name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connections {
    pub orgs: BTreeMap<String, Client>,
    pub accounts: BTreeMap<String, Aws>,
    /// How to reach each account of the spec, by account id: for other regions than the spec's.
    pub targets: BTreeMap<String, relayform_aws::Target>,
    /// Orgs and accounts that could not be set up (a secret missing), with why.
    pub failed_orgs: BTreeMap<String, String>,
    pub failed_accounts: BTreeMap<String, String>,
}

/// The real providers behind the executor's [`Connect`].
#[derive(Debug)]
struct Live {
    orgs: HashMap<String, Arc<Client>>,
    /// Clients by account id and region: the spec's accounts, and those made on demand.
    accounts: tokio::sync::Mutex<HashMap<AccountAt, Arc<Aws>>>,
    targets: BTreeMap<String, relayform_aws::Target>,
}

impl Live {
    fn new(spec: &Spec, conn: Connections) -> Live {
        let accounts = conn
            .accounts
            .into_iter()
            .filter_map(|(name, aws)| {
                let a = spec.aws_accounts.get(&name)?;
                let at = AccountAt {
                    account_id: a.account_id.value.clone(),
                    region: a.region.value.clone(),
                };
                Some((at, Arc::new(aws)))
            })
            .collect();
        Live {
            orgs: conn
                .orgs
                .into_iter()
                .map(|(n, c)| (n, Arc::new(c)))
                .collect(),
            accounts: tokio::sync::Mutex::new(accounts),
            targets: conn.targets,
        }
    }
}

#[async_trait::async_trait]
impl Connect for Live {
    fn org(&self, org: &str) -> Result<Arc<dyn OrgApi>, String> {
        self.orgs
            .get(org)
            .map(|c| c.clone() as Arc<dyn OrgApi>)
            .ok_or_else(|| format!("no connection to org `{org}`"))
    }

    async fn account(&self, at: &AccountAt) -> Result<Option<Arc<dyn AccountApi>>, String> {
        let mut accounts = self.accounts.lock().await;
        if let Some(aws) = accounts.get(at) {
            return Ok(Some(aws.clone()));
        }
        let Some(t) = self.targets.get(&at.account_id) else {
            return Ok(None);
        };
        let aws = Arc::new(
            Aws::connect(
                &relayform_aws::Target {
                    region: at.region.clone(),
                    ..t.clone()
                },
                None,
            )
            .await,
        );
        accounts.insert(at.clone(), aws.clone());
        Ok(Some(aws))
    }
}

/// Runs the plan; sends progress as it goes.
pub(crate) fn apply(
    spec: &Spec,
    plan: &Plan,
    observed: &Observed,
    conn: Connections,
    options: Options,
    progress: mpsc::UnboundedSender<Progress>,
    stop: Arc<AtomicBool>,
) -> impl Future<Output = Report> + Send + 'static {
    // Lowered here, before the run: the run owns its program, and borrows nothing of the plan.
    let program = relayform_plan::lower(plan, spec, observed);
    relayform_exec::run(
        program,
        Arc::new(Live::new(spec, conn)),
        options,
        progress,
        stop,
    )
}
