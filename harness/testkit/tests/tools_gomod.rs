//! The wrapper module that builds Go modules with replace directives.
//! Never runs `go build`; the last test reads a real go.mod through `go`
//! when it is installed (a module download, no compile).

use harness_tools::gobuild::{GoModFile, wrapper_go_mod, wrapper_go_mod_for};
use harness_tools::versions::{self, GoRecipe};

/// Excerpts of `go mod edit -json` on the real go.mod files.
fn go_mod(json: &str) -> GoModFile {
    serde_json::from_str(json).expect("valid go mod edit -json")
}

#[test]
fn kubernetes_staging_replaces_become_published_modules() {
    // k8s.io/kubernetes v1.34.4: staging modules required at v0.0.0 and
    // replaced with ./staging/src/...
    let upstream = go_mod(
        r#"{"Go":"1.24.0",
            "Require":[{"Path":"k8s.io/api","Version":"v0.0.0"},{"Path":"k8s.io/apiserver","Version":"v0.0.0"},
                       {"Path":"github.com/spf13/cobra","Version":"v1.9.1"}],
            "Replace":[{"Old":{"Path":"k8s.io/api"},"New":{"Path":"./staging/src/k8s.io/api"}},
                       {"Old":{"Path":"k8s.io/apiserver"},"New":{"Path":"./staging/src/k8s.io/apiserver"}}]}"#,
    );
    let text = wrapper_go_mod(
        "lab.local/kubernetes",
        "k8s.io/kubernetes",
        "v1.34.4",
        &upstream,
        Some("v0.34.4"),
    );
    assert!(text.contains("module lab.local/kubernetes\n"), "{text}");
    assert!(text.contains("go 1.24.0\n"), "{text}");
    assert!(
        text.contains("require k8s.io/kubernetes v1.34.4\n"),
        "{text}"
    );
    assert!(
        text.contains("\tk8s.io/api => k8s.io/api v0.34.4\n"),
        "{text}"
    );
    assert!(
        text.contains("\tk8s.io/apiserver => k8s.io/apiserver v0.34.4\n"),
        "{text}"
    );
    assert!(!text.contains("./staging"), "{text}");
}

#[test]
fn argocd_keeps_version_replaces_and_drops_its_local_gitops_engine() {
    let upstream = go_mod(
        r#"{"Go":"1.25.5",
            "Require":[{"Path":"github.com/argoproj/gitops-engine","Version":"v0.7.1-0.20250908182407-97ad5b59a627"}],
            "Replace":[{"Old":{"Path":"github.com/golang/protobuf"},"New":{"Path":"github.com/golang/protobuf","Version":"v1.5.4"}},
                       {"Old":{"Path":"k8s.io/api"},"New":{"Path":"k8s.io/api","Version":"v0.34.0"}},
                       {"Old":{"Path":"github.com/argoproj/gitops-engine"},"New":{"Path":"./gitops-engine"}}]}"#,
    );
    let text = wrapper_go_mod(
        "lab.local/argocd",
        "github.com/argoproj/argo-cd/v3",
        "v3.3.10",
        &upstream,
        None,
    );
    assert!(
        text.contains("\tgithub.com/golang/protobuf => github.com/golang/protobuf v1.5.4\n"),
        "{text}"
    );
    assert!(
        text.contains("\tk8s.io/api => k8s.io/api v0.34.0\n"),
        "{text}"
    );
    assert!(!text.contains("gitops-engine"), "{text}");
}

#[test]
fn etcd_maps_required_siblings_and_drops_forbidden_markers() {
    let upstream = go_mod(
        r#"{"Go":"1.24.0",
            "Require":[{"Path":"go.etcd.io/etcd/api/v3","Version":"v3.6.8"}],
            "Replace":[{"Old":{"Path":"go.etcd.io/etcd/api/v3"},"New":{"Path":"../api"}},
                       {"Old":{"Path":"go.etcd.io/etcd"},"New":{"Path":"./FORBIDDEN_DEPENDENCY"}}]}"#,
    );
    let text = wrapper_go_mod(
        "lab.local/etcd",
        "go.etcd.io/etcd/server/v3",
        "v3.6.8",
        &upstream,
        Some("v3.6.8"),
    );
    assert!(
        text.contains("\tgo.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v3.6.8\n"),
        "{text}"
    );
    assert!(!text.contains("FORBIDDEN"), "{text}");
}

/// The real k8s.io/kubernetes go.mod, read through `go`: every staging module
/// is mapped (the list the lead verified by a real build).
#[tokio::test]
async fn real_kubernetes_go_mod_gives_the_verified_replace_block() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let Some(go) = harness_tools::gobuild::find_go(&path) else {
        panic!(
            "`go` is not on PATH; install Go 1.26 (https://go.dev/dl): the lab's tools need it too"
        );
    };
    let Some(GoRecipe::Wrapper {
        module,
        local_replace_version,
        ..
    }) = versions::KUBERNETES.go
    else {
        panic!("kubernetes is built from a wrapper module");
    };
    let cwd = tempfile::tempdir().expect("tempdir");
    let text = wrapper_go_mod_for(&go, cwd.path(), "lab.local/kubernetes", module, "v1.34.4", local_replace_version)
        .await
        .expect("go mod download/edit of k8s.io/kubernetes (needs the Go module proxy or a warm module cache)");
    for staging in [
        "api",
        "apiextensions-apiserver",
        "apimachinery",
        "apiserver",
        "client-go",
        "component-base",
        "controller-manager",
        "kube-aggregator",
        "kms",
        "pod-security-admission",
    ] {
        let line = format!("\tk8s.io/{staging} => k8s.io/{staging} v0.34.4\n");
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
    assert!(!text.contains("./staging"), "{text}");
}
