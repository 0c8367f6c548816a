//! `attach`: a document (an SBOM) attached to a pushed manifest as an OCI
//! 1.1 referrer; and the probe of `expect: {referrers: ...}`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::json;

use super::{StepAction, StepContext, StepDigest, StepError, StepOutcome};
use crate::expect::{Observation, Seen};
use harness_oci::RegistryClient;
use harness_oci::referrers::Attachment;
use harness_scenario::{Attach, AttachContent};

#[async_trait]
impl StepAction for Attach {
    fn describe(&self) -> String {
        format!(
            "{} to {}@{}",
            self.artifact_type, self.repository, self.subject
        )
    }

    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let subject = ctx.render(&self.subject)?;
        let content = match &self.content {
            AttachContent::File(path) => std::fs::read(path).map_err(|e| {
                StepError::failed(format!("cannot read the document {}: {e}", path.display()))
            })?,
            AttachContent::Inline(text) => ctx.render(text)?.into_bytes(),
        };
        let annotations: BTreeMap<String, String> = self
            .annotations
            .iter()
            .map(|(k, v)| Ok((k.clone(), ctx.render(v)?)))
            .collect::<Result<_, StepError>>()?;
        let repository = ctx.isolation.repository(&self.repository);
        ctx.repositories.insert(repository.clone());
        let attachment = Attachment {
            artifact_type: self.artifact_type.clone(),
            media_type: self.media_type.clone(),
            content,
            annotations,
        };
        let attached = ctx
            .registry
            .attach(&repository, &subject, &attachment)
            .await?;
        if let Some(name) = &self.bind {
            ctx.vars.bind_digest(name.clone(), attached.digest.clone());
        }
        Ok(StepOutcome {
            summary: format!(
                "attached {} {} to {subject} through {}",
                self.artifact_type, attached.digest, attached.via
            ),
            digests: vec![StepDigest {
                repository,
                digest: attached.digest.clone(),
                tags: vec![],
                binding: self.bind.clone(),
                blobs_uploaded: None,
                blobs_skipped: None,
            }],
            observed: Some(json!(attached)),
        })
    }
}

/// One look at the referrers of `subject`: holds when exactly `count` of
/// them (of `artifact_type`, if given) are listed.
pub(crate) async fn probe_referrers(
    registry: &RegistryClient,
    repository: &str,
    subject: &str,
    artifact_type: Option<&str>,
    count: u32,
) -> Observation<Seen> {
    let of_type = artifact_type
        .map(|t| format!(" of type {t}"))
        .unwrap_or_default();
    match registry.referrers(repository, subject, artifact_type).await {
        Ok(found) => {
            let n = found.manifests.len();
            let seen = Seen {
                summary: format!(
                    "{n} referrer(s){of_type} of {subject} (through {})",
                    found.via
                ),
                problems: if n == count as usize {
                    vec![]
                } else {
                    vec![format!("referrers{of_type}: expected {count}, found {n}")]
                },
                diff: None,
                observed: json!({"count": n, "via": found.via, "manifests": found.manifests}),
            };
            if n == count as usize {
                Observation::holds(seen)
            } else {
                Observation::fails(seen)
            }
        }
        Err(error) => Observation::fails(Seen {
            summary: format!("could not list the referrers: {error}"),
            problems: vec![error.to_string()],
            diff: None,
            observed: json!({"error": error.to_string()}),
        }),
    }
}
