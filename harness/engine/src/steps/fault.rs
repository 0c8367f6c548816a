//! `fault`: stop, start or restart a lab component. What the step stops
//! is remembered so that the runner starts it again after `finally`.

use async_trait::async_trait;

use super::{StepAction, StepContext, StepError, StepOutcome};
use harness_scenario::{Fault, FaultAction};

#[async_trait]
impl StepAction for Fault {
    fn describe(&self) -> String {
        format!("{} {}", self.action.as_str(), self.component)
    }

    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let done = ctx
            .lab
            .fault(self.component, self.action)
            .await
            .map_err(StepError::failed)?;
        match self.action {
            FaultAction::Stop => {
                ctx.stopped.insert(self.component);
            }
            FaultAction::Start | FaultAction::Restart => {
                ctx.stopped.remove(&self.component);
            }
        }
        Ok(StepOutcome::summary(done))
    }
}
