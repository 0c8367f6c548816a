//! `verify`: check a manifest's cosign signatures against a key.

use async_trait::async_trait;
use serde_json::json;

use super::sign::{explain, public_key};
use super::{StepAction, StepContext, StepError, StepOutcome};
use harness_oci::sign::{Verification, signature_tag};
use harness_scenario::{SignatureState, Verify};

#[async_trait]
impl StepAction for Verify {
    fn describe(&self) -> String {
        format!(
            "{}@{} {:?} by {}",
            self.repository, self.digest, self.expect, self.key
        )
    }

    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let digest = ctx.render(&self.digest)?;
        let repository = ctx.isolation.repository(&self.repository);
        let public = public_key(ctx, &self.key)?;
        let verification = ctx
            .registry
            .verify_signature(&repository, &digest, &public)
            .await?;
        let found = match verification {
            Verification::Verified { .. } => SignatureState::Signed,
            Verification::Unsigned => SignatureState::Unsigned,
            Verification::NotVerified { .. } => SignatureState::WrongKey,
        };
        let text = explain(&verification, &signature_tag(&digest)?);
        let observed = json!({
            "repository": repository,
            "digest": digest,
            "key": self.key.to_string(),
            "fingerprint": public.fingerprint(),
            "found": found,
            "verification": verification,
        });
        if found == self.expect {
            Ok(StepOutcome {
                summary: format!("{digest}: {text}"),
                digests: vec![],
                observed: Some(observed),
            })
        } else {
            Err(StepError::Failed {
                message: format!(
                    "expected {digest} to be {:?} by {} ({}), found {found:?}: {text}",
                    self.expect,
                    self.key,
                    public.fingerprint()
                ),
                observed: Some(observed),
            })
        }
    }
}
