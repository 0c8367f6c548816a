//! `sign`, `verify`, `attach`: keys, signatures, referrers of what this
//! scenario pushed.

use super::*;

impl Loader<'_> {
    /// A repository that an earlier push created (sign, verify, attach and
    /// referrers act on what this scenario pushed).
    pub(super) fn pushed_repository(
        &mut self,
        repository: &Located<String>,
        scope: &Scope,
        key: &str,
    ) -> String {
        let name = self.repository(repository);
        if !scope.repositories.contains(&name) {
            self.error(
                repository.location(),
                format!(
                    "no earlier push step in this scenario pushes repository `{name}`: `{key}` acts on manifests this scenario pushed"
                ),
            );
        }
        name
    }

    /// A manifest digest: `${NAME.digest}` or `sha256:<64 hex>`, never a tag.
    pub(super) fn digest_template(
        &mut self,
        text: &Located<String>,
        scope: &Scope,
        definitions: &Definitions,
        what: &str,
    ) -> Template {
        let template = self.template(text, scope, definitions);
        if let Some(literal) = template.as_literal()
            && !names::is_digest(&literal)
        {
            self.error(
                text.location(),
                format!(
                    "`{literal}` is not a manifest digest: {what} takes `sha256:` and 64 hex digits, usually `${{NAME.digest}}` from a push step's `as:` (tags move, digests do not)"
                ),
            );
        }
        template
    }

    pub(super) fn key_name(&mut self, key: &Located<String>) -> String {
        if let Some(problem) = names::scenario_name_problem(key.value(), "key name") {
            self.error(key.location(), problem);
        }
        key.value().clone()
    }

    /// A cosign public key file, read and parsed now so a bad one is
    /// reported before any lab starts.
    pub(super) fn public_key_file(&mut self, path: &Located<String>) -> SignatureKey {
        let base = self.file.parent().unwrap_or(Path::new(""));
        let resolved = base.join(path.value());
        let pem = match std::fs::read_to_string(&resolved) {
            Ok(pem) => {
                if let Err(problem) = check_public_key_pem(&pem) {
                    self.error(
                        path.location(),
                        format!("{}: {problem}", resolved.display()),
                    );
                }
                pem
            }
            Err(error) => {
                self.error(
                    path.location(),
                    format!(
                        "cannot read public key {} ({error}); `publicKey` is relative to the scenario file's directory",
                        resolved.display()
                    ),
                );
                String::new()
            }
        };
        SignatureKey::PublicKey {
            path: resolved,
            pem,
        }
    }

    pub(super) fn signature_key(
        &mut self,
        at: &serde_saphyr::Location,
        key: Option<&Located<String>>,
        public_key: Option<&Located<String>>,
    ) -> SignatureKey {
        match (key, public_key) {
            (Some(key), None) => SignatureKey::Run(self.key_name(key)),
            (None, Some(path)) => self.public_key_file(path),
            (Some(key), Some(_)) => {
                self.error(
                    at,
                    "`key` and `publicKey` together: give one (a key generated for the run, or a cosign.pub file)",
                );
                SignatureKey::Run(key.value().clone())
            }
            (None, None) => {
                self.error(
                    at,
                    "give `key: NAME` (a key generated for this run) or `publicKey: path/to/cosign.pub`",
                );
                SignatureKey::Run(String::new())
            }
        }
    }

    pub(super) fn required_signature(
        &mut self,
        key: &Located<SignatureKeyFile>,
        revision: &Template,
    ) -> SignatureKey {
        let body = key.value();
        if let Some(literal) = revision.as_literal()
            && !names::is_digest(&literal)
            && names::tag_problem(&literal).is_some()
        {
            self.error(
                key.location(),
                format!(
                    "`requireSignature` needs a revision that names one manifest (a tag or a digest), not `{literal}`: a constraint would let Argo CD pick a manifest nobody verified"
                ),
            );
        }
        self.signature_key(key.location(), body.key.as_ref(), body.public_key.as_ref())
    }

    pub(super) fn sign(
        &mut self,
        sign: &Located<SignFile>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> Sign {
        let body = sign.value();
        Sign {
            repository: self.pushed_repository(&body.repository, scope, "sign"),
            digest: self.digest_template(&body.digest, scope, definitions, "`digest`"),
            key: self.key_name(&body.key),
        }
    }

    pub(super) fn verify(
        &mut self,
        verify: &Located<VerifyFile>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> Verify {
        let body = verify.value();
        Verify {
            repository: self.pushed_repository(&body.repository, scope, "verify"),
            digest: self.digest_template(&body.digest, scope, definitions, "`digest`"),
            key: self.signature_key(
                verify.location(),
                body.key.as_ref(),
                body.public_key.as_ref(),
            ),
            expect: body
                .expect
                .as_ref()
                .map_or(SignatureState::Signed, |e| *e.value()),
        }
    }

    pub(super) fn attach(
        &mut self,
        attach: &Located<AttachFile>,
        scope: &mut Scope,
        definitions: &Definitions,
    ) -> Attach {
        let body = attach.value();
        let repository = self.pushed_repository(&body.repository, scope, "attach");
        let subject = self.digest_template(&body.subject, scope, definitions, "`subject`");
        let artifact_type = self.media_type(&body.artifact_type, "artifactType");
        let media_type = match &body.media_type {
            Some(media_type) => self.media_type(media_type, "mediaType"),
            None => artifact_type.clone(),
        };
        let content = match (&body.source, &body.content) {
            (Some(source), None) => {
                let base = self.file.parent().unwrap_or(Path::new(""));
                let path = base.join(source.value());
                if !path.is_file() {
                    self.error(
                        source.location(),
                        format!(
                            "document {} is not a file (`source` is relative to the scenario file's directory)",
                            path.display()
                        ),
                    );
                }
                AttachContent::File(path)
            }
            (None, Some(content)) => {
                AttachContent::Inline(self.template(content, scope, definitions))
            }
            (Some(_), Some(content)) => {
                self.error(
                    content.location(),
                    "`source` and `content` together: give one (a file, or the document inline)",
                );
                AttachContent::Inline(Template(String::new()))
            }
            (None, None) => {
                self.error(
                    attach.location(),
                    "attach needs `source:` (a file, relative to this file) or `content:` (the document inline)",
                );
                AttachContent::Inline(Template(String::new()))
            }
        };
        let annotations = body
            .annotations
            .iter()
            .map(|(key, value)| (key.clone(), self.template(value, scope, definitions)))
            .collect();
        let bind = body.bind.as_ref().map(|bind| {
            if !template::is_binding_name(bind.value()) {
                self.error(
                    bind.location(),
                    format!(
                        "`as: {}` cannot name a variable: start with a letter, then letters, digits, `_` or `-` (and not `lab`), like `sbom`",
                        bind.value()
                    ),
                );
            }
            bind.value().clone()
        });
        if let Some(bind) = &bind {
            scope.digests.insert(bind.clone());
        }
        Attach {
            repository,
            subject,
            artifact_type,
            media_type,
            content,
            annotations,
            bind,
        }
    }
}

/// The check `harness_oci::sign::PublicKey::from_pem` makes when a `verify`
/// step runs, made here at load time so that a bad key file never reaches a
/// lab (this crate stays free of the registry client).
fn check_public_key_pem(pem: &str) -> Result<(), String> {
    use p256::pkcs8::DecodePublicKey as _;
    p256::ecdsa::VerifyingKey::from_public_key_pem(pem.trim())
        .map(|_| ())
        .map_err(|e| {
            format!(
                "not an ECDSA P-256 public key in PEM (`-----BEGIN PUBLIC KEY-----`, as in \
                 cosign.pub): {e}; make one with `cosign generate-key-pair`"
            )
        })
}
