//! `delete`: delete an Application, cascading to what it deployed.

use std::time::Duration;

use async_trait::async_trait;

use super::{StepAction, StepContext, StepError, StepOutcome};
use harness_scenario::Delete;

/// How long a delete step waits for the Application to be gone.
const DELETE_WAIT: Duration = Duration::from_secs(120);

#[async_trait]
impl StepAction for Delete {
    fn describe(&self) -> String {
        self.app.clone()
    }

    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let name = ctx.isolation.app(&self.app);
        ctx.argocd.delete(&name, ctx.budget(DELETE_WAIT)).await?;
        ctx.apps.remove(&name);
        Ok(StepOutcome::summary(format!("deleted Application {name}")))
    }
}
