//! Fixtures shared by integration tests (each test file that needs them
//! says `mod common;`; each uses only some of them).
#![allow(dead_code)]

pub mod report_fixture;
pub mod request_recorder;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use harness_labs::{ComponentLog, Lab, LabKind, RegistryEndpoint};
use harness_testkit::registry_process::{RegistryOptions, RegistryProcess};

/// A real registry and no cluster: steps that need Kubernetes fail with a
/// connection error, which is what these tests use as their failure.
pub struct RegistryOnlyLab {
    registry: RegistryProcess,
    endpoint: RegistryEndpoint,
    kube: kube::Client,
}

impl RegistryOnlyLab {
    pub async fn start(dir: &Path) -> Arc<Self> {
        harness_core::init_crypto();
        let registry = RegistryProcess::start(RegistryOptions::new(dir.join("registry")))
            .await
            .expect("start docker-registry");
        let endpoint = registry.endpoint();
        Self::with_endpoint(registry, endpoint)
    }

    /// The lab of `registry`, reached at `endpoint` (a proxy in front of it).
    pub fn with_endpoint(registry: RegistryProcess, endpoint: RegistryEndpoint) -> Arc<Self> {
        // Port 1 on loopback: nothing listens, connections are refused at once.
        let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        let kube = kube::Client::try_from(config).expect("kube client");
        Arc::new(RegistryOnlyLab {
            registry,
            endpoint,
            kube,
        })
    }
}

#[async_trait]
impl Lab for RegistryOnlyLab {
    fn kind(&self) -> &'static str {
        LabKind::Existing.as_str()
    }
    fn registry(&self) -> &RegistryEndpoint {
        &self.endpoint
    }
    fn registry_for_argo(&self) -> &str {
        &self.endpoint.address
    }
    fn kube(&self) -> kube::Client {
        self.kube.clone()
    }
    fn argocd_namespace(&self) -> &str {
        "argocd"
    }
    fn argocd_version(&self) -> &str {
        "none"
    }
    async fn component_logs(&self, _lines: usize) -> Vec<ComponentLog> {
        let tail = std::fs::read_to_string(self.registry.log_path()).unwrap_or_default();
        vec![ComponentLog {
            component: "docker-registry".into(),
            tail,
        }]
    }
}

/// Pushes a one-ConfigMap artifact to `repository` under `v1` and returns
/// its digest: the subject that signature and referrer tests attach to.
pub async fn push_subject(client: &harness_oci::RegistryClient, repository: &str) -> String {
    let files = [(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )]
    .into_iter()
    .collect();
    let packed = harness_oci::pack(
        &files,
        harness_oci::DEFAULT_LAYER_MEDIA_TYPE,
        &std::collections::BTreeMap::new(),
    )
    .unwrap();
    client
        .push(repository, &packed, &["v1".to_string()])
        .await
        .unwrap()
        .digest
}

/// A scenario whose expectation is wrong on purpose: the ConfigMap says
/// 1.0.0, the expectation 9.9.9.
pub const WRONG_EXPECTATION: &str = r#"name: must-fail-wrong-data
steps:
  - push:
      files:
        cm.yaml: |
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: wrong-config}
          data: {version: "1.0.0"}
      repository: wrong
      tags: [v1]
      as: v1
  - app: {name: wrong, repository: wrong, revision: v1}
  - expect: {app: wrong, sync: Synced, health: Healthy, revision: "${v1.digest}"}
  - expect:
      resource: {apiVersion: v1, kind: ConfigMap, namespace: wrong, name: wrong-config}
      matches: {data: {version: "9.9.9"}}
      within: 5s
  - name: never runs (the run stops at the first failure)
    expect: {app: wrong, sync: Synced}
finally:
  - delete: {app: wrong}
"#;

/// Loads `yaml` as a scenario file in a fresh directory (which `prepare`
/// may fill first: fixtures the file points at); errors as
/// `line:column: message`, one per diagnostic.
pub fn load_scenario(
    yaml: &str,
    prepare: impl FnOnce(&Path),
) -> Result<harness_scenario::Scenario, Vec<String>> {
    let directory = tempfile::tempdir().expect("temporary directory");
    prepare(directory.path());
    let path = directory.path().join("scenario.yaml");
    std::fs::write(&path, yaml).expect("write scenario");
    harness_scenario::load_file(&path).map_err(|diagnostics| {
        diagnostics
            .iter()
            .map(|d| {
                let location = d.location.as_ref().expect("located");
                format!("{}:{}: {}", location.line, location.column, d.message)
            })
            .collect()
    })
}

/// Every error of `errors` starts with its expected `line:column: ` and
/// contains its expected message, in order, and there are no others.
pub fn assert_errors(errors: &[String], expected: &[(&str, &str)]) {
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for ((at, message), error) in expected.iter().zip(errors) {
        assert!(
            error.starts_with(at) && error.contains(message),
            "want {at}{message}\ngot {errors:#?}"
        );
    }
}

/// A scenario whose wait runs into the scenario's own timeout: the expect
/// is cut short at the deadline (step 5), step 6 never runs, `finally` does.
pub const TIMES_OUT: &str = r#"name: must-fail-scenario-timeout
timeout: 12s
steps:
  - push:
      files: {cm.yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"}
      repository: late
      tags: [v1]
      as: v1
  - app: {name: late, repository: late, revision: v1}
  - expect: {app: late, sync: Synced, revision: "${v1.digest}"}
  - expect: {app: late, sync: Synced, revision: "${v1.digest}", for: 4s}
  - name: never true, and longer than the scenario has left
    expect: {app: late, sync: OutOfSync, within: 10s}
  - expect: {app: late, sync: Synced}
finally:
  - delete: {app: late}
"#;

/// The `kind` objects (Application, AppProject...) in Argo CD's namespace of
/// `lab`.
pub fn argo_objects(lab: &dyn Lab, kind: &str) -> kube::Api<kube::api::DynamicObject> {
    let resource = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "argoproj.io",
        "v1alpha1",
        kind,
    ));
    kube::Api::namespaced_with(lab.kube(), lab.argocd_namespace(), &resource)
}

/// The names of the `kind` objects in Argo CD's namespace of `lab`.
pub async fn argo_object_names(lab: &dyn Lab, kind: &str) -> Vec<String> {
    argo_objects(lab, kind)
        .list(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("list {kind}s: {e}"))
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect()
}

/// "name: headline" of each scenario of `summary` that did not pass.
pub fn not_passed(summary: &harness_engine::outcome::RunSummary) -> Vec<String> {
    summary
        .scenarios
        .iter()
        .filter(|s| s.status != harness_engine::runner::ScenarioStatus::Passed)
        .map(|s| {
            format!(
                "{}: {}",
                s.name,
                s.failure.as_ref().map(|f| f.headline()).unwrap_or_default()
            )
        })
        .collect()
}
