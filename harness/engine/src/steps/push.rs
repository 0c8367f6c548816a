//! `push`: pack files as an OCI artifact and push it to the lab registry.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{
    StepAction, StepContext, StepDigest, StepError, StepOutcome, join_templates, render_all,
};
use harness_oci::helm::{self, Chart};
use harness_oci::index::{self, IndexEntry, OciPlatform};
use harness_oci::{self as oci, ArtifactFiles, Blob, LayerSpec, ManifestSpec};
use harness_scenario::{
    IndexVariant, InlineFile, Layer, LayerContent, Push, PushContent, Symlinks,
};

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
                let repositories = render_all(ctx, &chart.dependency_repositories)?;
                off_the_runtime(move || {
                    let mut read = Chart::from_dir(&directory).map_err(|e| {
                        StepError::failed(format!(
                            "reading the chart to push from {}: {e}",
                            directory.display()
                        ))
                    })?;
                    if read.metadata.dependencies.len() != repositories.len() {
                        return Err(StepError::failed(format!(
                            "{}/Chart.yaml changed since the scenario was loaded: its `dependencies:` are not the ones checked",
                            directory.display()
                        )));
                    }
                    for (dependency, repository) in
                        read.metadata.dependencies.iter_mut().zip(repositories)
                    {
                        dependency.repository = repository;
                    }
                    Ok(helm::pack_chart(&read, &annotations)?)
                })
                .await?
            }
            PushContent::Layers(layers) => {
                let mut sources = Vec::with_capacity(layers.len());
                for layer in layers {
                    sources.push((LayerSource::of(ctx, &layer.content)?, layer.clone()));
                }
                let config = self.config.clone();
                let artifact_type = self.artifact_type.clone();
                off_the_runtime(move || {
                    let layers = sources
                        .into_iter()
                        .map(|(source, layer)| source.pack(&layer))
                        .collect::<Result<Vec<_>, StepError>>()?;
                    Ok(oci::pack_manifest(ManifestSpec {
                        config: config.map(|c| Blob::new(c.media_type, c.content.into_bytes())),
                        artifact_type,
                        layers,
                        annotations,
                    })?)
                })
                .await?
            }
            content => {
                let source = FilesSource::of(ctx, content, self.symlinks)?;
                let media_type = self.layer_media_type.clone();
                let config = self.config.clone();
                let artifact_type = self.artifact_type.clone();
                off_the_runtime(move || {
                    Ok(oci::pack_manifest(ManifestSpec {
                        config: config.map(|c| Blob::new(c.media_type, c.content.into_bytes())),
                        artifact_type,
                        layers: vec![oci::files_layer(&source.read()?, &media_type)?],
                        annotations,
                    })?)
                })
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
        let source = FilesSource::of(ctx, &variant.content, push.symlinks)?;
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
    Directory(std::path::PathBuf, Symlinks),
    Rendered(ArtifactFiles),
}

impl FilesSource {
    fn of(ctx: &StepContext, content: &PushContent, symlinks: Symlinks) -> Result<Self, StepError> {
        match content {
            PushContent::Directory(dir) => Ok(FilesSource::Directory(dir.clone(), symlinks)),
            PushContent::Files(files) => Ok(FilesSource::Rendered(render_files(ctx, files)?)),
            PushContent::Chart(_) | PushContent::Index(_) | PushContent::Layers(_) => {
                Err(StepError::failed(
                    "a chart, an index or layers cannot be a variant's content (the scenario loader rejects this)",
                ))
            }
        }
    }

    /// The files (blocking: reads a directory).
    fn read(self) -> Result<ArtifactFiles, StepError> {
        match self {
            FilesSource::Directory(dir, symlinks) => ArtifactFiles::from_dir(&dir, symlinks)
                .map_err(|e| {
                    StepError::failed(format!(
                        "reading the files to push from {}: {e}",
                        dir.display()
                    ))
                }),
            FilesSource::Rendered(files) => Ok(files),
        }
    }
}

/// Inline files with their templates rendered; symlinks as written.
fn render_files(
    ctx: &StepContext,
    files: &BTreeMap<String, InlineFile>,
) -> Result<ArtifactFiles, StepError> {
    let mut rendered = ArtifactFiles::default();
    for (path, file) in files {
        match file {
            InlineFile::Text(content) => rendered.insert(path.clone(), ctx.render(content)?),
            InlineFile::Symlink { symlink } => rendered.insert_symlink(path.clone(), symlink),
        }
    }
    Ok(rendered)
}

/// One layer of a `layers:` push, ready to pack off the runtime.
enum LayerSource {
    Files(FilesSource),
    Raw(Vec<u8>),
}

impl LayerSource {
    fn of(ctx: &StepContext, content: &LayerContent) -> Result<Self, StepError> {
        Ok(match content {
            LayerContent::Directory { path, symlinks } => {
                LayerSource::Files(FilesSource::Directory(path.clone(), *symlinks))
            }
            LayerContent::Files(files) => {
                LayerSource::Files(FilesSource::Rendered(render_files(ctx, files)?))
            }
            LayerContent::Raw(text) => LayerSource::Raw(text.clone().into_bytes()),
        })
    }

    /// The layer's blob, with exactly the annotations written for it.
    fn pack(self, layer: &Layer) -> Result<LayerSpec, StepError> {
        let blob = match self {
            LayerSource::Files(files) => oci::files_layer(&files.read()?, &layer.media_type)?.blob,
            LayerSource::Raw(bytes) => Blob::new(layer.media_type.clone(), bytes),
        };
        Ok(LayerSpec {
            blob,
            annotations: layer.annotations.clone(),
        })
    }
}
