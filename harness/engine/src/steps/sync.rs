//! `sync`: start a sync operation (for `sync: manual` Applications).

use std::time::Duration;

use async_trait::async_trait;

use super::{StepAction, StepContext, StepError, StepOutcome};
use harness_scenario::SyncApp;

/// How long a sync waits for an operation already in progress.
const WAIT_FOR_RUNNING_OPERATION: Duration = Duration::from_secs(60);

#[async_trait]
impl StepAction for SyncApp {
    fn describe(&self) -> String {
        self.app.clone()
    }

    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let name = ctx.isolation.app(&self.app);
        ctx.argocd
            .sync(&name, ctx.budget(WAIT_FOR_RUNNING_OPERATION))
            .await?;
        Ok(StepOutcome::summary(format!("requested a sync of {name}")))
    }
}
