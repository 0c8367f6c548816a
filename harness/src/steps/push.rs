//! `push`: pack files as an OCI artifact and push it to the lab registry.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{
    StepAction, StepContext, StepDigest, StepError, StepOutcome, join_templates, render_all,
};
use crate::oci::{self, ArtifactFiles};
use crate::scenario::{Push, PushContent};

#[async_trait]
impl StepAction for Push {
    fn describe(&self) -> String {
        if self.tags.is_empty() {
            format!("{} (by digest)", self.repository)
        } else {
            format!("{}:{}", self.repository, join_templates(&self.tags))
        }
    }

    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let files = match &self.content {
            PushContent::Directory(dir) => ArtifactFiles::from_dir(dir).map_err(|e| {
                StepError::failed(format!(
                    "reading the files to push from {}: {e}",
                    dir.display()
                ))
            })?,
            PushContent::Files(files) => {
                let mut rendered = BTreeMap::new();
                for (path, content) in files {
                    rendered.insert(path.clone(), ctx.render(content)?.into_bytes());
                }
                ArtifactFiles(rendered)
            }
        };
        let annotations: BTreeMap<String, String> = self
            .annotations
            .iter()
            .map(|(k, v)| Ok((k.clone(), ctx.render(v)?)))
            .collect::<Result<_, StepError>>()?;
        let tags = render_all(ctx, &self.tags)?;
        let packed = oci::pack(&files, &self.layer_media_type, &annotations)?;
        let repository = ctx.isolation.repository(&self.repository);
        ctx.repositories.insert(repository.clone());
        let pushed = ctx.registry.push(&repository, &packed, &tags).await?;
        if let Some(name) = &self.bind {
            ctx.vars.bind_digest(name.clone(), pushed.digest.clone());
        }
        let bound = self
            .bind
            .as_ref()
            .map(|name| format!(" as {name}"))
            .unwrap_or_default();
        Ok(StepOutcome {
            summary: format!(
                "pushed {}{bound} ({} blobs uploaded, {} skipped)",
                pushed.digest, pushed.blobs_uploaded, pushed.blobs_skipped
            ),
            digests: vec![StepDigest {
                repository,
                digest: pushed.digest,
                tags,
                binding: self.bind.clone(),
                blobs_uploaded: Some(pushed.blobs_uploaded),
                blobs_skipped: Some(pushed.blobs_skipped),
            }],
            observed: None,
        })
    }
}
