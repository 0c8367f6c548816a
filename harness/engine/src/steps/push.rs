//! `push`: pack files as an OCI artifact and push it to the lab registry.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{
    StepAction, StepContext, StepDigest, StepError, StepOutcome, join_templates, render_all,
};
use harness_oci::helm::{self, Chart};
use harness_oci::index::{self, IndexEntry, OciPlatform};
use harness_oci::{self as oci, ArtifactFiles};
use harness_scenario::{IndexVariant, Push, PushContent};

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
        let annotations: BTreeMap<String, String> = self
            .annotations
            .iter()
            .map(|(k, v)| Ok((k.clone(), ctx.render(v)?)))
            .collect::<Result<_, StepError>>()?;
        let tags = render_all(ctx, &self.tags)?;
        let repository = ctx.isolation.repository(&self.repository);
        let packed = match &self.content {
            PushContent::Index(variants) => {
                return push_index(self, ctx, variants, &annotations, tags, repository).await;
            }
            PushContent::Chart(chart) => {
                let directory = chart.directory.clone();
                off_the_runtime(move || {
                    let read = Chart::from_dir(&directory).map_err(|e| {
                        StepError::failed(format!(
                            "reading the chart to push from {}: {e}",
                            directory.display()
                        ))
                    })?;
                    Ok(helm::pack_chart(&read, &annotations)?)
                })
                .await?
            }
            content => {
                let source = FilesSource::of(ctx, content)?;
                let media_type = self.layer_media_type.clone();
                off_the_runtime(move || Ok(oci::pack(&source.read()?, &media_type, &annotations)?))
                    .await?
            }
        };
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

/// Pack each variant, push them by digest and the index under the tags;
/// bind the index's and the variants' digests.
async fn push_index(
    push: &Push,
    ctx: &mut StepContext,
    variants: &[IndexVariant],
    annotations: &BTreeMap<String, String>,
    tags: Vec<String>,
    repository: String,
) -> Result<StepOutcome, StepError> {
    let mut entries = Vec::with_capacity(variants.len());
    for variant in variants {
        let source = FilesSource::of(ctx, &variant.content)?;
        let media_type = push.layer_media_type.clone();
        let artifact =
            off_the_runtime(move || Ok(oci::pack(&source.read()?, &media_type, &BTreeMap::new())?))
                .await?;
        let variant_annotations: BTreeMap<String, String> = variant
            .annotations
            .iter()
            .map(|(k, v)| Ok((k.clone(), ctx.render(v)?)))
            .collect::<Result<_, StepError>>()?;
        entries.push(IndexEntry {
            artifact,
            platform: variant.platform.as_ref().map(|p| OciPlatform {
                architecture: p.architecture.clone(),
                os: p.os.clone(),
                variant: p.variant.clone(),
            }),
            annotations: variant_annotations,
        });
    }
    ctx.repositories.insert(repository.clone());
    let pushed =
        index::push_index(&ctx.registry, &repository, &entries, annotations, &tags).await?;
    let mut digests = vec![StepDigest {
        repository: repository.clone(),
        digest: pushed.digest.clone(),
        tags,
        binding: push.bind.clone(),
        blobs_uploaded: None,
        blobs_skipped: None,
    }];
    if let Some(name) = &push.bind {
        ctx.vars.bind_digest(name.clone(), pushed.digest.clone());
    }
    for (variant, outcome) in variants.iter().zip(&pushed.variants) {
        if let Some(name) = &variant.bind {
            ctx.vars.bind_digest(name.clone(), outcome.digest.clone());
        }
        digests.push(StepDigest {
            repository: repository.clone(),
            digest: outcome.digest.clone(),
            tags: vec![],
            binding: variant.bind.clone(),
            blobs_uploaded: Some(outcome.blobs_uploaded),
            blobs_skipped: Some(outcome.blobs_skipped),
        });
    }
    let bound = push
        .bind
        .as_ref()
        .map(|name| format!(" as {name}"))
        .unwrap_or_default();
    Ok(StepOutcome {
        summary: format!(
            "pushed index {}{bound} of {} variants",
            pushed.digest,
            variants.len()
        ),
        digests,
        observed: None,
    })
}

/// Reading and packing files is blocking work (a directory walk, tar and
/// deflate of up to many MiB): it runs on the blocking pool, never on the
/// async runtime's workers.
async fn off_the_runtime<T, F>(work: F) -> Result<T, StepError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StepError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StepError::failed(format!("packing the artifact failed: {e}")))?
}

/// Where a push's files come from: a `source` directory (read when packed,
/// off the runtime) or inline `files`, rendered now (templates need the
/// step's variables).
enum FilesSource {
    Directory(std::path::PathBuf),
    Rendered(ArtifactFiles),
}

impl FilesSource {
    fn of(ctx: &StepContext, content: &PushContent) -> Result<Self, StepError> {
        match content {
            PushContent::Directory(dir) => Ok(FilesSource::Directory(dir.clone())),
            PushContent::Files(files) => {
                let mut rendered = BTreeMap::new();
                for (path, content) in files {
                    rendered.insert(path.clone(), ctx.render(content)?.into_bytes());
                }
                Ok(FilesSource::Rendered(ArtifactFiles(rendered)))
            }
            PushContent::Chart(_) | PushContent::Index(_) => Err(StepError::failed(
                "a chart or an index cannot be a variant's content (the scenario loader rejects this)",
            )),
        }
    }

    /// The files (blocking: reads a directory).
    fn read(self) -> Result<ArtifactFiles, StepError> {
        match self {
            FilesSource::Directory(dir) => ArtifactFiles::from_dir(&dir).map_err(|e| {
                StepError::failed(format!(
                    "reading the files to push from {}: {e}",
                    dir.display()
                ))
            }),
            FilesSource::Rendered(files) => Ok(files),
        }
    }
}
