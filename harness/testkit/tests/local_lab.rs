//! The local lab for real: real etcd, kube-apiserver, kwok, registry,
//! redis and Argo CD processes. Binaries come from the tool cache
//! (`cargo xtask test` provisions them first).

use std::path::Path;
use std::time::Duration;

use harness_core::process;
use harness_core::progress::Progress;
use harness_engine::lab::Lab;
use harness_labs::local::{self, LocalLab, LocalLabConfig};
use harness_labs::session;

async fn config(root: &Path, detached: bool) -> LocalLabConfig {
    harness_core::init_crypto();
    let binaries = session::local_binaries(&Progress::new(), harness_labs::ARGOCD_VERSION)
        .await
        .expect("provision the local lab's tools");
    LocalLabConfig {
        binaries,
        labs_root: root.to_path_buf(),
        detached,
        reconciliation: Duration::from_secs(10),
        argocd_version: harness_labs::ARGOCD_VERSION.to_string(),
        registry: Default::default(),
        seeds: harness_labs::local::seed::seeds_dir_from_env(
            &harness_tools::cache::default_cache_root(),
        ),
    }
}

fn leftovers(root: &Path) -> Vec<(u32, String)> {
    process::find_by_cmdline(root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_comes_up_detects_a_crash_and_leaves_nothing_behind() {
    let root = tempfile::tempdir().unwrap();
    let cfg = config(root.path(), false).await;
    let lab = LocalLab::up(&cfg, &Progress::new())
        .await
        .expect("local lab starts");

    // The real apiserver, at the pinned version.
    let version = lab
        .kube()
        .apiserver_version()
        .await
        .expect("apiserver answers");
    assert_eq!(
        version.git_version,
        harness_tools::versions::KUBERNETES_VERSION
    );
    // Argo CD's default project exists (we create it: no argocd-server here).
    let projects = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        lab.kube(),
        "argocd",
        &kube::discovery::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "argoproj.io",
            "v1alpha1",
            "AppProject",
        )),
    );
    assert!(
        projects.get_opt("default").await.unwrap().is_some(),
        "AppProject default exists"
    );
    // The start's timeline names every component, each ready after it was
    // started; what needs nothing else started before the apiserver was
    // ready, and what needs the apiserver only after.
    let phases = &lab.state().startup;
    let names: std::collections::BTreeSet<&str> = phases.iter().map(|p| p.name.as_str()).collect();
    // From the lab's seed unless OCI_E2E_LAB_SEED turns it off (the seed
    // itself has its own test below).
    let seeded = cfg.seeds.is_some();
    assert_eq!(
        names,
        [
            "argocd-application-controller",
            "argocd-configuration",
            "argocd-repo-server",
            "etcd",
            "kube-apiserver",
            "kube-apiserver (default roles)",
            "kube-controller-manager",
            "kwok",
            "redis",
            "registry",
        ]
        .into_iter()
        .chain(seeded.then_some("seed copied"))
        .collect(),
        "{phases:?}"
    );
    let phase = |name: &str| phases.iter().find(|p| p.name == name).unwrap();
    assert!(
        phases.iter().all(|p| p.started_ms <= p.ready_ms),
        "{phases:?}"
    );
    let apiserver_ready = phase("kube-apiserver").ready_ms;
    for early in ["etcd", "registry", "redis"] {
        assert!(
            phase(early).started_ms < apiserver_ready,
            "{early}: {phases:?}"
        );
    }
    for late in ["kube-controller-manager", "kwok", "argocd-configuration"] {
        assert!(
            phase(late).started_ms >= apiserver_ready,
            "{late}: {phases:?}"
        );
    }
    let configured = phase("argocd-configuration").ready_ms;
    for late in [
        "kube-controller-manager",
        "kwok",
        "argocd-repo-server",
        "argocd-application-controller",
    ] {
        assert!(phase(late).started_ms >= configured, "{late}: {phases:?}");
    }

    // Creating objects that exist applies them instead of failing.
    let doc = |value: &str| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "oci-e2e-create-twice", "namespace": "default"},
            "data": {"value": value}
        })
    };
    harness_labs::kubeutil::create_documents(&lab.kube(), &[doc("first")], "default")
        .await
        .expect("created");
    harness_labs::kubeutil::create_documents(&lab.kube(), &[doc("second")], "default")
        .await
        .expect("created again: applied");
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(lab.kube(), "default");
    let cm = cms
        .get("oci-e2e-create-twice")
        .await
        .expect("the ConfigMap");
    assert_eq!(cm.data.unwrap()["value"], "second");

    // The registry answers where the lab says it is.
    let v2 = reqwest::get(format!("http://{}/v2/", lab.registry().address))
        .await
        .expect("registry answers");
    assert!(v2.status().is_success());

    // `lab down` leaves a lab that a live harness (this test) is using alone.
    let stopped = local::down(root.path(), &Progress::new())
        .await
        .expect("lab down");
    assert!(
        stopped.is_empty(),
        "lab down touched a lab in use: {stopped:?}"
    );
    assert!(lab.state().children.iter().all(|c| process::alive(c.pid)));
    assert_eq!(local::status(root.path()).in_use.len(), 1);

    // A component that dies is noticed and named.
    let children = lab.state().children.clone();
    let repo = children
        .iter()
        .find(|c| c.name == "argocd-repo-server")
        .expect("repo-server child");
    unsafe {
        libc::kill(repo.pid as i32, libc::SIGKILL);
    }
    let crashed = lab.crashed().expect("started here, so supervised");
    tokio::time::timeout(Duration::from_secs(10), crashed.cancelled())
        .await
        .expect("crash noticed");
    let report = lab.crash_report().expect("crash report");
    assert!(report.contains("argocd-repo-server"), "{report}");

    let dir = lab.state().dir.clone();
    lab.shutdown(root.path(), None).await.expect("shutdown");
    for c in &children {
        assert!(
            !process::alive(c.pid),
            "{} (pid {}) still running",
            c.name,
            c.pid
        );
    }
    assert!(
        leftovers(root.path()).is_empty(),
        "{:?}",
        leftovers(root.path())
    );
    assert!(!dir.exists(), "lab directory removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_lab_is_reused_and_lab_down_stops_it() {
    let root = tempfile::tempdir().unwrap();
    let cfg = config(root.path(), true).await;
    let lab = LocalLab::up(&cfg, &Progress::new())
        .await
        .expect("local lab starts");
    let children = lab.state().children.clone();
    // Forget it, as a `lab up` process that has exited would.
    drop(lab);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        children.iter().all(|c| process::alive(c.pid)),
        "a kept lab survives its starter"
    );

    let st = local::status(root.path());
    assert!(st.current.is_some(), "status finds the kept lab");
    assert!(st.components.iter().all(|(_, _, alive)| *alive));

    let reused = LocalLab::reuse(root.path())
        .await
        .expect("reuse the kept lab");
    reused
        .kube()
        .apiserver_version()
        .await
        .expect("reused lab answers");

    let stopped = local::down(root.path(), &Progress::new())
        .await
        .expect("lab down");
    assert!(!stopped.is_empty());
    for c in &children {
        assert!(
            !process::alive(c.pid),
            "{} (pid {}) still running after lab down",
            c.name,
            c.pid
        );
    }
    assert!(leftovers(root.path()).is_empty());
    assert!(local::status(root.path()).current.is_none());
    let err = LocalLab::reuse(root.path())
        .await
        .err()
        .expect("nothing to reuse after down");
    assert!(err.to_string().contains("lab up"), "{err}");
}

/// What a SIGKILLed harness leaves: a lab directory whose owner is gone.
/// The next lab start reclaims it, and says so; a lab whose harness lives,
/// and one without an owner (kept by `lab up`), stay.
#[test]
fn the_next_lab_reclaims_what_a_killed_harness_left() {
    let root = tempfile::tempdir().unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let lab = |name: &str, owner: Option<u32>| {
        let dir = root.path().join(name);
        std::fs::create_dir_all(dir.join("etcd")).unwrap();
        std::fs::write(dir.join("etcd/db"), vec![0u8; 2_000_000]).unwrap();
        if let Some(pid) = owner {
            std::fs::write(dir.join("owner.pid"), pid.to_string()).unwrap();
        }
        dir
    };
    let killed = lab("local-killed", Some(dead_pid));
    let live = lab("local-live", Some(std::process::id()));
    let kept = lab("local-kept", None);

    let said = harness_labs::local::reclaim_abandoned(root.path());
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("local-killed")
            && said[0].contains("(2 MB)")
            && said[0].contains(&format!("killed (pid {dead_pid})")),
        "{said:?}"
    );
    assert!(!killed.exists());
    assert!(live.exists() && kept.exists());
    assert!(harness_labs::local::reclaim_abandoned(root.path()).is_empty());
}

/// Every object of the lab, as `group/kind namespace/name`, but for
/// Events (they tell of the start, which differs by nature).
async fn inventory(client: &kube::Client) -> std::collections::BTreeSet<String> {
    use kube::api::{Api, DynamicObject, ListParams};
    use kube::discovery::{Discovery, verbs};
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let mut out = std::collections::BTreeSet::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            if !caps.supports_operation(verbs::LIST) || resource.kind == "Event" {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let list = api
                .list(&ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("list {}: {e}", resource.kind));
            for object in list {
                out.insert(format!(
                    "{}/{} {}/{}",
                    resource.group,
                    resource.kind,
                    object.metadata.namespace.unwrap_or_default(),
                    object.metadata.name.unwrap_or_default()
                ));
            }
        }
    }
    out
}

/// Argo CD's CRDs as the lab serves them: name -> spec.
async fn crd_specs(client: &kube::Client) -> std::collections::BTreeMap<String, serde_json::Value> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    api.list(&Default::default())
        .await
        .expect("CRDs")
        .into_iter()
        .map(|crd| {
            (
                crd.metadata.name.clone().unwrap_or_default(),
                serde_json::to_value(&crd.spec).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_lab_has_the_objects_of_a_fresh_one() {
    let root = tempfile::tempdir().unwrap();
    let seeds = tempfile::tempdir().unwrap();
    let mut fresh_cfg = config(root.path(), false).await;
    fresh_cfg.seeds = None;
    let mut seeded_cfg = fresh_cfg.clone();
    seeded_cfg.seeds = Some(seeds.path().to_path_buf());

    let fresh = LocalLab::up(&fresh_cfg, &Progress::new())
        .await
        .expect("a lab from an empty etcd");
    assert!(
        !fresh
            .state()
            .startup
            .iter()
            .any(|p| p.name == "seed copied"),
        "{:?}",
        fresh.state().startup
    );
    let fresh_objects = inventory(&fresh.kube()).await;
    let fresh_crds = crd_specs(&fresh.kube()).await;
    fresh.shutdown(root.path(), None).await.expect("shutdown");

    // The first seeded lab makes the seed, the second finds it.
    for round in ["makes the seed", "finds the seed"] {
        let seeded = LocalLab::up(&seeded_cfg, &Progress::new())
            .await
            .unwrap_or_else(|e| panic!("a seeded lab ({round}): {e:#}"));
        let made: Vec<_> = std::fs::read_dir(seeds.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            made.len(),
            1,
            "one seed, no scratch left ({round}): {made:?}"
        );
        assert!(seeds.path().join(&made[0]).join("etcd/member").is_dir());
        assert!(
            seeded
                .state()
                .startup
                .iter()
                .any(|p| p.name == "seed copied"),
            "{round}: {:?}",
            seeded.state().startup
        );
        let seeded_objects = inventory(&seeded.kube()).await;
        let only_fresh: Vec<_> = fresh_objects.difference(&seeded_objects).collect();
        let only_seeded: Vec<_> = seeded_objects.difference(&fresh_objects).collect();
        assert!(
            only_fresh.is_empty() && only_seeded.is_empty(),
            "{round}: only in the fresh lab: {only_fresh:#?}\nonly in the seeded lab: {only_seeded:#?}"
        );
        assert_eq!(crd_specs(&seeded.kube()).await, fresh_crds, "{round}");
        // Argo CD works on it: the default project and the configuration
        // of this lab (its own registry), not of the lab that made the seed.
        let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(seeded.kube(), "argocd");
        let creds = secrets
            .get("oci-e2e-lab-registry")
            .await
            .expect("repo creds");
        let url = creds.data.unwrap_or_default()["url"].0.clone();
        assert_eq!(
            String::from_utf8(url).unwrap(),
            format!("oci://{}", seeded.registry().address)
        );
        seeded.shutdown(root.path(), None).await.expect("shutdown");
    }
    assert!(
        leftovers(root.path()).is_empty(),
        "{:?}",
        leftovers(root.path())
    );
}
