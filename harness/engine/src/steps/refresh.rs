//! `refresh`: set the refresh annotation on an Application.

use async_trait::async_trait;

use super::{StepAction, StepContext, StepError, StepOutcome};
use harness_scenario::Refresh;

#[async_trait]
impl StepAction for Refresh {
    fn describe(&self) -> String {
        format!("{}{}", self.app, if self.hard { " (hard)" } else { "" })
    }

    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let name = ctx.isolation.app(&self.app);
        ctx.argocd.refresh(&name, self.hard).await?;
        Ok(StepOutcome::summary(format!(
            "requested a {} refresh of {name}",
            if self.hard { "hard" } else { "normal" }
        )))
    }
}
