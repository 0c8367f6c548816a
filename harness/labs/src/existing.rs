//! The `existing` lab: a cluster someone else runs, with Argo CD already
//! installed, and a registry given on the command line.
//!
//! The harness starts and stops nothing here. It checks what it needs
//! (the cluster answers, Argo CD's namespace exists, the Application CRD is
//! served, the registry answers), and creates only namespaced objects it
//! owns, labelled with the run id: the scenarios' Applications and
//! destination namespaces (removed by the runner's cleanup) and, only with
//! `--create-repo-creds`, one `repo-creds` secret scoped to this run's
//! repositories (removed at shutdown). Other Applications are never read
//! for anything but diagnostics of our own, and never written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use serde_json::json;

use super::{BasicAuth, ComponentLog, Lab, LabKind, RegistryEndpoint};
use harness_core::progress::Progress;
use harness_engine::argocd::RUN_ID_LABEL;
use harness_engine::isolation::{Isolation, label_value};

/// Environment variables that give registry credentials (they win over
/// the Docker config).
pub const USERNAME_ENV: &str = "OCI_E2E_REGISTRY_USERNAME";
pub const PASSWORD_ENV: &str = "OCI_E2E_REGISTRY_PASSWORD";

/// How to use an existing cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingLabConfig {
    /// Kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// Context in it (default: its current context).
    pub context: Option<String>,
    /// Where Argo CD runs and Applications live.
    pub argocd_namespace: String,
    /// `host[:port][/prefix]` the harness pushes to (required).
    pub registry: Option<String>,
    /// `host[:port][/prefix]` as Argo CD's repo-server reaches the same
    /// registry, when it differs; without a `/prefix` the push prefix is used.
    pub registry_from_argo: Option<String>,
    /// Speak plain HTTP to the registry (only when asked).
    pub plain_http: bool,
    /// Do not verify the registry's TLS certificate.
    pub insecure_tls: bool,
    /// Create a `repo-creds` secret for this run's repositories (and delete it at the end).
    pub create_repo_creds: bool,
    /// The run id: labels what the lab creates and scopes the secret.
    pub run_id: Option<String>,
    /// Docker config file (default: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
}

impl Default for ExistingLabConfig {
    fn default() -> Self {
        ExistingLabConfig {
            kubeconfig: None,
            context: None,
            argocd_namespace: "argocd".into(),
            registry: None,
            registry_from_argo: None,
            plain_http: false,
            insecure_tls: false,
            create_repo_creds: false,
            run_id: None,
            docker_config: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExistingLabError {
    #[error(
        "--lab existing needs the registry to push to: pass --registry host[:port][/prefix] (and --registry-from-argo when Argo CD reaches it by another address)"
    )]
    NoRegistry,
    #[error(
        "--{flag} {value:?} is not a registry address: {why}; write host[:port][/prefix], e.g. registry.example.com/team/e2e"
    )]
    BadRegistry {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error(
        "cannot load the kubeconfig ({source_desc}): {detail}; pass --kubeconfig FILE and/or --context NAME"
    )]
    Kubeconfig { source_desc: String, detail: String },
    #[error(
        "cannot reach the cluster ({cluster}): {detail}; check the kubeconfig context (kubectl cluster-info)"
    )]
    Unreachable { cluster: String, detail: String },
    #[error(
        "namespace {namespace} does not exist on the cluster: is Argo CD installed there? Pass --argocd-namespace NAME where it runs"
    )]
    NoArgoNamespace { namespace: String },
    #[error(
        "the cluster does not serve Argo CD's Application CRD (applications.argoproj.io/v1alpha1): {detail}; install Argo CD v3.1+ first"
    )]
    NoApplicationCrd { detail: String },
    #[error("{0}")]
    Credentials(String),
    #[error("the registry at {url} does not answer: {detail}; {hint}")]
    RegistryUnreachable {
        url: String,
        detail: String,
        hint: String,
    },
    #[error("{action} the repo-creds secret {name} in namespace {namespace}: {detail}")]
    Secret {
        action: &'static str,
        name: String,
        namespace: String,
        detail: String,
    },
    #[error(
        "--create-repo-creds needs a run id to label and scope the secret (the harness sets it; this is a bug)"
    )]
    NoRunId,
}

/// A connected existing cluster.
pub struct ExistingLab {
    config: ExistingLabConfig,
    client: kube::Client,
    registry: RegistryEndpoint,
    registry_for_argo: String,
    argocd_version: String,
    /// The repo-creds secret this lab created (deleted at shutdown).
    created_secret: Option<String>,
}

/// `host[:port]` and the optional prefix of `host[:port][/prefix]`.
pub fn split_registry(
    flag: &'static str,
    value: &str,
) -> Result<(String, String), ExistingLabError> {
    let bad = |why: &str| ExistingLabError::BadRegistry {
        flag,
        value: value.to_string(),
        why: why.to_string(),
    };
    if value.contains("://") {
        return Err(bad(
            "leave the scheme out (HTTPS is the default; --plain-http for HTTP)",
        ));
    }
    let trimmed = value.trim().trim_end_matches('/');
    let (host, prefix) = match trimmed.split_once('/') {
        Some((host, prefix)) => (host, prefix.trim_matches('/')),
        None => (trimmed, ""),
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    if host
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')))
    {
        return Err(bad("the host has a character other than [A-Za-z0-9.-:]"));
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && !host.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(bad("the port is not a number"));
    }
    if prefix.split('/').any(|part| {
        !prefix.is_empty()
            && (part.is_empty()
                || part
                    .chars()
                    .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))))
    }) {
        return Err(bad(
            "the prefix must be lowercase path components [a-z0-9._-] separated by /",
        ));
    }
    Ok((host.to_string(), prefix.to_string()))
}

/// The registry as Argo CD reaches it: `--registry-from-argo` (with the
/// push prefix appended when it has none), else the push address.
pub fn registry_for_argo(
    registry: &str,
    from_argo: Option<&str>,
) -> Result<String, ExistingLabError> {
    let (host, prefix) = split_registry("registry", registry)?;
    let push = join_registry(&host, &prefix);
    match from_argo {
        None => Ok(push),
        Some(other) => {
            let (argo_host, argo_prefix) = split_registry("registry-from-argo", other)?;
            let prefix = if argo_prefix.is_empty() {
                prefix
            } else {
                argo_prefix
            };
            Ok(join_registry(&argo_host, &prefix))
        }
    }
}

fn join_registry(host: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{prefix}")
    }
}

/// Where the Docker config lives: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

/// Credentials for `host` (`host[:port]`): the environment variables win;
/// then `auths` in the Docker config (`auth`: base64 of `user:pass`, or
/// `username`/`password`). Credential helpers (`credsStore`,
/// `credHelpers`) are not supported: an entry that needs one is an error
/// that says what to do instead. `None`: anonymous.
pub fn registry_credentials(
    host: &str,
    docker_config: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<BasicAuth>, ExistingLabError> {
    match (env(USERNAME_ENV), env(PASSWORD_ENV)) {
        (Some(username), Some(password)) => return Ok(Some(BasicAuth { username, password })),
        (Some(_), None) | (None, Some(_)) => {
            return Err(ExistingLabError::Credentials(format!(
                "set both {USERNAME_ENV} and {PASSWORD_ENV}, or neither (then {} is used)",
                docker_config
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "~/.docker/config.json".into())
            )));
        }
        (None, None) => {}
    }
    let Some(path) = docker_config else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ExistingLabError::Credentials(format!(
                "cannot read the Docker config {}: {e}; fix its permissions or set {USERNAME_ENV}/{PASSWORD_ENV}",
                path.display()
            )));
        }
    };
    let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        ExistingLabError::Credentials(format!(
            "the Docker config {} is not valid JSON ({e}); fix it or set {USERNAME_ENV}/{PASSWORD_ENV}",
            path.display()
        ))
    })?;
    let helper_error = |helper: &str| {
        ExistingLabError::Credentials(format!(
            "the Docker config {} keeps the credentials of {host} in the credential helper docker-credential-{helper}, which this harness does not call; set {USERNAME_ENV} and {PASSWORD_ENV} instead",
            path.display()
        ))
    };
    if let Some(helper) = config
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| h.iter().find(|(key, _)| registry_key(key) == host))
        .and_then(|(_, v)| v.as_str())
    {
        return Err(helper_error(helper));
    }
    let entry = config
        .get("auths")
        .and_then(|a| a.as_object())
        .and_then(|a| a.iter().find(|(key, _)| registry_key(key) == host))
        .map(|(_, v)| v);
    let Some(entry) = entry else {
        return Ok(None);
    };
    if let Some(auth) = entry
        .get("auth")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
    {
        let bad = |why: String| {
            ExistingLabError::Credentials(format!(
                "the Docker config {}: auths.{host}.auth {why}; run `docker login {host}` again or set {USERNAME_ENV}/{PASSWORD_ENV}",
                path.display()
            ))
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| bad(format!("is not base64 ({e})")))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| bad("is not UTF-8 once decoded".into()))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| bad("is not `user:password` once decoded".into()))?;
        return Ok(Some(BasicAuth {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    if let (Some(username), Some(password)) = (
        entry.get("username").and_then(|u| u.as_str()),
        entry.get("password").and_then(|p| p.as_str()),
    ) {
        return Ok(Some(BasicAuth {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    // `docker login` with a credsStore writes an empty entry.
    if let Some(store) = config.get("credsStore").and_then(|s| s.as_str()) {
        return Err(helper_error(store));
    }
    Ok(None)
}

/// `https://host:5000/v1/` -> `host:5000` (keys of `auths` come in many forms).
fn registry_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// The version from an image reference: `quay.io/argoproj/argocd:v3.3.10` -> `v3.3.10`.
pub fn image_tag(image: &str) -> Option<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let (_, tag) = last.split_once(':')?;
    (!tag.is_empty()).then(|| tag.to_string())
}

/// The repo-creds secret a run creates: scoped to the run's repositories
/// (`oci://<argo address>/e2e-<run>`), so other Applications never use it.
pub fn repo_creds_secret(
    namespace: &str,
    run_id: &str,
    registry_for_argo: &str,
    endpoint: &RegistryEndpoint,
) -> Secret {
    let run_component = Isolation::run_repository_component(run_id);
    let name = secret_name(run_id);
    let mut labels = serde_json::Map::new();
    labels.insert(RUN_ID_LABEL.into(), json!(label_value(run_id)));
    let value = oci_repo_creds_secret(
        &name,
        namespace,
        &format!("oci://{registry_for_argo}/{run_component}"),
        endpoint,
        labels,
    );
    // The JSON is a valid Secret by construction.
    serde_json::from_value(value).unwrap_or_default()
}

/// An Argo CD `repo-creds` Secret as users write one for an OCI registry
/// (every lab that writes one goes through here): `url` (a prefix of the
/// Applications' `repoURL`s), `type: oci` (without it Argo CD treats it
/// as git), `username`/`password` when the endpoint has credentials,
/// `insecureOCIForceHttp` for plain HTTP, `insecure` only when
/// verification is skipped on purpose. A CA is not in it: Argo CD takes
/// those from `argocd-tls-certs-cm`. `labels` are added to the
/// secret-type label.
pub fn oci_repo_creds_secret(
    name: &str,
    namespace: &str,
    url: &str,
    endpoint: &RegistryEndpoint,
    mut labels: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let mut data = serde_json::Map::new();
    data.insert("url".into(), json!(url));
    data.insert("type".into(), json!("oci"));
    data.insert("name".into(), json!(name));
    if let Some(auth) = &endpoint.auth {
        data.insert("username".into(), json!(auth.username));
        data.insert("password".into(), json!(auth.password));
    }
    if endpoint.plain_http {
        data.insert("insecureOCIForceHttp".into(), json!("true"));
    }
    if endpoint.insecure_tls {
        data.insert("insecure".into(), json!("true"));
    }
    labels.insert("argocd.argoproj.io/secret-type".into(), json!("repo-creds"));
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "stringData": data,
    })
}

/// `oci-e2e-<run id>`, a DNS-1123 name.
pub fn secret_name(run_id: &str) -> String {
    let label = label_value(run_id)
        .to_ascii_lowercase()
        .replace(['_', '.'], "-");
    let mut name: String = format!("oci-e2e-{label}").chars().take(63).collect();
    while name.ends_with('-') {
        name.pop();
    }
    name
}

impl ExistingLab {
    /// Connects to the cluster and checks everything the runner needs.
    pub async fn connect(
        config: &ExistingLabConfig,
        progress: &Progress,
    ) -> Result<ExistingLab, ExistingLabError> {
        harness_core::init_crypto();
        let registry_arg = config
            .registry
            .as_deref()
            .ok_or(ExistingLabError::NoRegistry)?;
        let (host, prefix) = split_registry("registry", registry_arg)?;
        let registry_for_argo =
            registry_for_argo(registry_arg, config.registry_from_argo.as_deref())?;
        let docker_config = config.docker_config.clone().or_else(default_docker_config);
        let auth = registry_credentials(&host, docker_config.as_deref(), |name| {
            std::env::var(name).ok()
        })?;
        let registry = RegistryEndpoint {
            address: join_registry(&host, &prefix),
            plain_http: config.plain_http,
            insecure_tls: config.insecure_tls,
            ca_pem: None,
            auth,
        };

        let task = progress.task("existing lab: connecting to the cluster");
        let result = Self::check_cluster(config).await;
        let (client, argocd_version) = match result {
            Ok(ok) => {
                task.done(format!(
                    "Argo CD {} in namespace {}",
                    ok.1, config.argocd_namespace
                ));
                ok
            }
            Err(e) => {
                task.fail(e.to_string());
                return Err(e);
            }
        };
        check_registry(&registry).await?;

        let mut lab = ExistingLab {
            config: config.clone(),
            client,
            registry,
            registry_for_argo,
            argocd_version,
            created_secret: None,
        };
        if config.create_repo_creds {
            lab.create_repo_creds().await?;
        }
        Ok(lab)
    }

    async fn check_cluster(
        config: &ExistingLabConfig,
    ) -> Result<(kube::Client, String), ExistingLabError> {
        let options = KubeConfigOptions {
            context: config.context.clone(),
            ..KubeConfigOptions::default()
        };
        let source_desc = match (&config.kubeconfig, &config.context) {
            (Some(path), Some(context)) => format!("{}, context {context}", path.display()),
            (Some(path), None) => format!("{}, current context", path.display()),
            (None, Some(context)) => format!("$KUBECONFIG or ~/.kube/config, context {context}"),
            (None, None) => "$KUBECONFIG or ~/.kube/config, current context".into(),
        };
        let kube_error = |detail: String| ExistingLabError::Kubeconfig {
            source_desc: source_desc.clone(),
            detail,
        };
        let kube_config = match &config.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|e| kube_error(e.to_string()))?;
                kube::Config::from_custom_kubeconfig(file, &options).await
            }
            None => kube::Config::from_kubeconfig(&options).await,
        }
        .map_err(|e| kube_error(e.to_string()))?;
        let cluster = kube_config.cluster_url.to_string();
        let client = kube::Client::try_from(kube_config).map_err(|e| kube_error(e.to_string()))?;
        client
            .apiserver_version()
            .await
            .map_err(|e| ExistingLabError::Unreachable {
                cluster: cluster.clone(),
                detail: e.to_string(),
            })?;

        let namespace = &config.argocd_namespace;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        match namespaces.get_opt(namespace).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(ExistingLabError::NoArgoNamespace {
                    namespace: namespace.clone(),
                });
            }
            Err(e) => {
                return Err(ExistingLabError::Unreachable {
                    cluster,
                    detail: format!("reading namespace {namespace}: {e}"),
                });
            }
        }
        let gvk = GroupVersionKind::gvk(
            harness_engine::argocd::GROUP,
            harness_engine::argocd::VERSION,
            harness_engine::argocd::KIND,
        );
        kube::discovery::pinned_kind(&client, &gvk)
            .await
            .map_err(|e| ExistingLabError::NoApplicationCrd {
                detail: e.to_string(),
            })?;
        let version = argocd_version(&client, namespace).await;
        Ok((client, version))
    }

    async fn create_repo_creds(&mut self) -> Result<(), ExistingLabError> {
        let run_id = self
            .config
            .run_id
            .as_deref()
            .ok_or(ExistingLabError::NoRunId)?;
        let namespace = &self.config.argocd_namespace;
        let secret = repo_creds_secret(namespace, run_id, &self.registry_for_argo, &self.registry);
        let name = secret_name(run_id);
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        // Logged by kind and name only: the object carries the password.
        let params = PostParams::default();
        let request = api.create(&params, &secret);
        harness_core::log::apiserver("create", "Secret", namespace, &name, request)
            .await
            .map_err(|e| ExistingLabError::Secret {
                action: "creating",
                name: name.clone(),
                namespace: namespace.clone(),
                detail: e.to_string(),
            })?;
        self.created_secret = Some(name);
        Ok(())
    }

    /// The repo-creds secret this lab created, if any.
    pub fn created_secret(&self) -> Option<&str> {
        self.created_secret.as_deref()
    }

    pub fn config(&self) -> &ExistingLabConfig {
        &self.config
    }

    /// Deletes what the lab itself created (the repo-creds secret). The
    /// scenarios' Applications and namespaces are the runner's to clean.
    pub async fn shutdown(&self) -> Result<(), ExistingLabError> {
        let Some(name) = &self.created_secret else {
            return Ok(());
        };
        let namespace = &self.config.argocd_namespace;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let params = DeleteParams::default();
        let request = api.delete(name, &params);
        match harness_core::log::apiserver("delete", "Secret", namespace, name, request).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(ExistingLabError::Secret {
                action: "deleting",
                name: name.clone(),
                namespace: namespace.clone(),
                detail: e.to_string(),
            }),
        }
    }

    /// How a person can look at what a kept run left.
    pub fn usage(&self) -> String {
        let secret = match &self.created_secret {
            Some(name) => format!(
                "\n  repo-creds secret {name} kept: kubectl -n {} delete secret {name}",
                self.config.argocd_namespace
            ),
            None => String::new(),
        };
        format!(
            "existing cluster (Argo CD {} in namespace {}), registry {} (Argo CD: {}):\n  the run's Applications: kubectl -n {} get applications -l {RUN_ID_LABEL}{}",
            self.argocd_version,
            self.config.argocd_namespace,
            self.registry.address,
            self.registry_for_argo,
            self.config.argocd_namespace,
            secret,
        )
    }
}

/// A GET of `/v2/`: any HTTP answer (401 included) means it is there.
async fn check_registry(endpoint: &RegistryEndpoint) -> Result<(), ExistingLabError> {
    let host = endpoint.address.split('/').next().unwrap_or_default();
    let scheme = if endpoint.plain_http { "http" } else { "https" };
    let url = format!("{scheme}://{host}/v2/");
    let client = endpoint
        .http_client_builder()
        .and_then(|b| {
            b.timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())
        })
        .map_err(|detail| ExistingLabError::RegistryUnreachable {
            url: url.clone(),
            detail,
            hint: "this is a bug in the harness".into(),
        })?;
    let started = std::time::Instant::now();
    let answer = client.get(&url).send().await;
    tracing::debug!(
        op = "checking the registry answers",
        url = %url,
        http_status = answer.as_ref().ok().map(|r| r.status().as_u16()),
        status = if answer.is_ok() { "ok" } else { "error" },
        duration_ms = harness_core::log::millis_since(started),
        "registry request"
    );
    match answer {
        Ok(_) => Ok(()),
        Err(e) => {
            let detail = error_chain(&e);
            let hint = if endpoint.plain_http {
                "check the address; drop --plain-http if it speaks HTTPS"
            } else if detail.contains("certificate") || detail.contains("Certificate") {
                "pass --insecure-tls for a self-signed certificate"
            } else {
                "check the address; pass --plain-http if it speaks plain HTTP"
            };
            Err(ExistingLabError::RegistryUnreachable {
                url,
                detail,
                hint: hint.into(),
            })
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Argo CD's version: the repo-server's (or controller's) image tag, else
/// the `app.kubernetes.io/version` label on them or on `argocd-cm`, else `unknown`.
async fn argocd_version(client: &kube::Client, namespace: &str) -> String {
    const VERSION_LABEL: &str = "app.kubernetes.io/version";
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    if let Ok(Some(deployment)) = deployments.get_opt("argocd-repo-server").await {
        let spec = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref());
        if let Some(tag) = spec
            .and_then(|s| {
                s.containers
                    .iter()
                    .find(|c| c.name == "argocd-repo-server")
                    .or(s.containers.first())
            })
            .and_then(|c| c.image.as_deref())
            .and_then(image_tag)
        {
            return tag;
        }
        if let Some(v) = deployment
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(VERSION_LABEL))
        {
            return v.clone();
        }
    }
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    if let Ok(Some(set)) = statefulsets.get_opt("argocd-application-controller").await
        && let Some(tag) = set
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.as_deref())
            .and_then(image_tag)
    {
        return tag;
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    if let Ok(Some(cm)) = config_maps.get_opt("argocd-cm").await
        && let Some(v) = cm
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(VERSION_LABEL))
    {
        return v.clone();
    }
    "unknown".into()
}

#[async_trait]
impl Lab for ExistingLab {
    fn kind(&self) -> &'static str {
        LabKind::Existing.as_str()
    }
    fn registry(&self) -> &RegistryEndpoint {
        &self.registry
    }
    fn registry_for_argo(&self) -> &str {
        &self.registry_for_argo
    }
    fn kube(&self) -> kube::Client {
        self.client.clone()
    }
    fn argocd_namespace(&self) -> &str {
        &self.config.argocd_namespace
    }
    fn argocd_version(&self) -> &str {
        &self.argocd_version
    }
    /// Logs of the components' pods; when there are none (Argo CD runs as
    /// processes, e.g. a kept local lab) a note that says where to look.
    async fn component_logs(&self, lines: usize) -> Vec<ComponentLog> {
        crate::argocd_pod_logs(&self.client, &self.config.argocd_namespace, lines).await
    }
}
