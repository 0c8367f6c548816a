//! A KIND lab without the `kind` binary: a clear error naming the fix, and
//! nothing created. Its own test binary, because it points `$KIND` at a
//! path that does not exist (environment changes are process-wide).

use harness_core::progress::Progress;
use harness_labs::container;
use harness_labs::kind::{self, KindError, KindLabConfig};

#[tokio::test]
async fn without_kind_up_down_and_detect_say_what_to_install_and_create_nothing() {
    harness_core::init_crypto();
    // SAFETY: the only test in this binary; set before anything reads it.
    unsafe { std::env::set_var("KIND", "/nonexistent/oci-e2e/kind") };
    // An engine that answers, so the missing piece is kind alone.
    let host = container::ensure_podman_service()
        .await
        .expect("a Docker API (podman service)");
    let engine = container::connect_to(&host).await.expect("connect");

    let detected = kind::detect().await.expect_err("kind is missing");
    assert!(detected.contains("/nonexistent/oci-e2e/kind"), "{detected}");

    let registry_name = format!("oci-e2e-test-nokind-{}", std::process::id());
    let cfg = KindLabConfig {
        registry_name: registry_name.clone(),
        registry_host_port: 1,
        ..KindLabConfig::default()
    };
    let err = match kind::up(&cfg, &Progress::quiet()).await {
        Ok(_) => panic!("up must fail without kind"),
        Err(e) => e,
    };
    assert!(matches!(err, KindError::NoKind(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("install kind v0.31.0") && msg.contains("--lab local"),
        "{msg}"
    );
    // The check comes before any action: no registry container was made.
    let info = container::inspect_container(&engine, &registry_name)
        .await
        .expect("inspect");
    if info.is_some() {
        let _ = container::remove_container(&engine, &registry_name).await;
        panic!("up created {registry_name} before noticing kind is missing");
    }

    let err = kind::down(&cfg, &Progress::quiet())
        .await
        .expect_err("down must fail without kind");
    assert!(matches!(err, KindError::NoKind(_)), "{err:?}");

    let status = kind::status(&cfg).await;
    assert!(status.kind.is_err() && !status.is_up(), "{status}");
    assert!(
        status.to_string().contains("kind:       unavailable"),
        "{status}"
    );
}
