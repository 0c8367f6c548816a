//! `sign`: a cosign-compatible signature of a pushed manifest with a key
//! generated for the run; and the signature gate of `app: {requireSignature}`.

use async_trait::async_trait;
use serde_json::json;

use super::{StepAction, StepContext, StepError, StepOutcome};
use harness_oci::sign::{PublicKey, SigningKey, Verification, signature_tag};
use harness_scenario::{Sign, SignatureKey};

#[async_trait]
impl StepAction for Sign {
    fn describe(&self) -> String {
        format!("{}@{} with key {}", self.repository, self.digest, self.key)
    }

    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let digest = ctx.render(&self.digest)?;
        let repository = ctx.isolation.repository(&self.repository);
        let key = run_key(ctx, &self.key).clone();
        ctx.repositories.insert(repository.clone());
        let signed = ctx.registry.sign(&repository, &digest, &key).await?;
        Ok(StepOutcome {
            summary: format!(
                "signed {digest} with key {} ({}): {} at tag {}",
                self.key,
                key.public_key().fingerprint(),
                signed.signature_manifest,
                signed.tag
            ),
            digests: vec![],
            observed: Some(json!({
                "repository": repository,
                "digest": digest,
                "key": self.key,
                "publicKey": key.public_key().to_pem(),
                "signature": signed,
            })),
        })
    }
}

/// The run key called `name`, generated on first use.
pub(super) fn run_key<'a>(ctx: &'a mut StepContext, name: &str) -> &'a SigningKey {
    ctx.signing_keys
        .entry(name.to_string())
        .or_insert_with(SigningKey::generate)
}

/// The public half of a run key, or a cosign public key read at load time.
pub(super) fn public_key(
    ctx: &mut StepContext,
    key: &SignatureKey,
) -> Result<PublicKey, StepError> {
    match key {
        SignatureKey::Run(name) => Ok(run_key(ctx, name).public_key()),
        SignatureKey::PublicKey { path, pem } => PublicKey::from_pem(pem)
            .map_err(|e| StepError::failed(format!("{}: {e}", path.display()))),
    }
}

/// What a verification found, in words.
pub(super) fn explain(verification: &Verification, tag: &str) -> String {
    match verification {
        Verification::Verified { signatures } => {
            format!("{signatures} valid signature(s) at tag {tag}")
        }
        Verification::Unsigned => format!("no cosign signature (nothing at tag {tag})"),
        Verification::NotVerified { reasons } => format!(
            "signatures at tag {tag}, but none valid for it with this key: {}",
            reasons.join("; ")
        ),
    }
}

/// The gate of `requireSignature`: resolve `revision` (a tag or digest) in
/// `repository` (mapped) to a digest and return it only when a signature
/// by `key` verifies for it; Argo CD is then pointed at that digest, so a
/// tag moved after the check cannot slip an unverified manifest in.
pub(super) async fn require_signature(
    ctx: &mut StepContext,
    app: &str,
    repository: &str,
    revision: &str,
    key: &SignatureKey,
) -> Result<String, StepError> {
    let public = public_key(ctx, key)?;
    let digest = ctx.registry.resolve(repository, revision).await?;
    let tag = signature_tag(&digest)?;
    let verification = ctx
        .registry
        .verify_signature(repository, &digest, &public)
        .await?;
    if verification.is_verified() {
        return Ok(digest);
    }
    let at = if revision == digest {
        digest.clone()
    } else {
        format!("{revision} ({digest})")
    };
    Err(StepError::Failed {
        message: format!(
            "refusing to point Application {app} at {repository}@{at}: requireSignature wants a signature by {key} ({}), and the registry has {}; sign that digest (a `sign` step, or `cosign sign --key`) or drop `requireSignature`",
            public.fingerprint(),
            explain(&verification, &tag)
        ),
        observed: Some(json!({"digest": digest, "verification": verification})),
    })
}
