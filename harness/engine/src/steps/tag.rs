//! `tag`: point more tags at an existing manifest (no blob upload).

use async_trait::async_trait;

use super::{
    StepAction, StepContext, StepDigest, StepError, StepOutcome, join_templates, render_all,
};
use harness_scenario::Tag;

#[async_trait]
impl StepAction for Tag {
    fn describe(&self) -> String {
        format!(
            "{}:{} -> {}",
            self.repository,
            self.from,
            join_templates(&self.tags)
        )
    }

    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let from = ctx.render(&self.from)?;
        let tags = render_all(ctx, &self.tags)?;
        let repository = ctx.isolation.repository(&self.repository);
        ctx.repositories.insert(repository.clone());
        let digest = ctx.registry.tag(&repository, &from, &tags).await?;
        Ok(StepOutcome {
            summary: format!("tagged {digest} as {}", tags.join(", ")),
            digests: vec![StepDigest {
                repository,
                digest,
                tags,
                binding: None,
                blobs_uploaded: None,
                blobs_skipped: None,
            }],
            observed: None,
        })
    }
}
