//! `cargo xtask test`: the whole test suite on a machine that may be new.
//!
//! 1. Debian packages the tests use (as root): etcd, the distribution
//!    registry, redis, podman and its runtime pieces, skopeo, shellcheck,
//!    chromium (for the HTML report's browser test).
//! 2. cargo-nextest, pinned, into ~/.cargo/bin.
//! 3. The local lab's binaries and the test-only tools (cosign, a
//!    referrers-API registry, actionlint) (`harness_tools`, cached under
//!    ~/.cache/oci-e2e; the first run builds Kubernetes, Argo CD and cosign
//!    from Go modules, later runs reuse them).
//! 4. podman's Docker-API service for the container tests.
//! 5. The offline KIND images of the suite's KIND lab (mmdebstrap, cached
//!    in the engine's image store), side by side with compiling the tests.
//! 6. `cargo nextest run --workspace`, then stop what step 4 started.

use std::process::Stdio;

use harness_core::progress::Progress;
use tokio::process::Command;

use harness_tools::versions::NEXTEST_VERSION;

/// Debian packages the suite needs: a program looked up on PATH (or an
/// absolute path checked as it is), and the package that installs it.
///
/// Installed with `--no-install-recommends`, so anything podman only
/// recommends must be named here: a machine where podman was once
/// installed with its recommendations would hide the gap.
const PACKAGES: &[(&str, &str)] = &[
    ("etcd", "etcd-server"),
    ("docker-registry", "docker-registry"),
    ("redis-server", "redis-server"),
    ("podman", "podman"),
    ("runc", "runc"),
    ("newuidmap", "uidmap"),
    ("slirp4netns", "slirp4netns"),
    ("fuse-overlayfs", "fuse-overlayfs"),
    ("busybox", "busybox-static"),
    ("skopeo", "skopeo"),
    // actionlint checks the workflows' `run:` scripts with it, and the
    // suite checks the action's script (harness/testkit/tests/ci_workflows.rs).
    ("shellcheck", "shellcheck"),
    // The offline KIND images are Debian 12 rootfs trees made by mmdebstrap.
    ("mmdebstrap", "mmdebstrap"),
    // Container names resolve on a user-defined network (the kind network's
    // `kind-registry:5000`) only through this CNI plugin on podman's CNI
    // backend; podman merely recommends it.
    (
        harness_labs::container::DNSNAME_PLUGIN,
        "golang-github-containernetworking-plugin-dnsname",
    ),
    // The HTML report is loaded in headless Chromium (`tests/report_browser.rs`),
    // with a font for its screenshot (Chromium only recommends fonts-liberation).
    ("chromium", "chromium"),
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "fonts-dejavu-core",
    ),
];

fn present(probe: &str) -> bool {
    let path = std::path::Path::new(probe);
    if path.is_absolute() {
        return path.exists();
    }
    on_path(probe) || std::path::Path::new("/bin").join(probe).exists()
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

async fn status(cmd: &mut Command) -> std::io::Result<bool> {
    Ok(cmd.stdin(Stdio::null()).status().await?.success())
}

async fn install_packages(progress: &Progress) -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(probe, _)| !present(probe))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !harness_tools::apt::running_as_root() {
        return Err(format!(
            "missing Debian packages: {}; install them with: sudo apt-get install -y {}",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    let task = progress.task(format!("installing Debian packages: {}", missing.join(" ")));
    let ok = status(Command::new("apt-get").arg("update").arg("-qq"))
        .await
        .map_err(|e| e.to_string())?
        && status(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
        .await
        .map_err(|e| e.to_string())?;
    if ok {
        task.done("");
        Ok(())
    } else {
        task.fail("apt-get failed");
        Err(format!(
            "apt-get install -y {} failed (see its output above)",
            missing.join(" ")
        ))
    }
}

async fn ensure_nextest(progress: &Progress) -> Result<(), String> {
    let present = Command::new("cargo")
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    let task = progress.task(format!(
        "installing cargo-nextest {NEXTEST_VERSION} (cargo install, a few minutes once)"
    ));
    // A test runner needs no LTO or full optimisation: a lighter release
    // profile builds it in about half the time on 2 cores.
    let ok = status(
        Command::new("cargo")
            .args([
                "install",
                "--locked",
                "--quiet",
                "cargo-nextest",
                "--version",
                NEXTEST_VERSION,
            ])
            .env("CARGO_PROFILE_RELEASE_LTO", "false")
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
    )
    .await
    .map_err(|e| e.to_string())?;
    if ok {
        task.done("");
        Ok(())
    } else {
        task.fail("");
        Err(format!(
            "`cargo install --locked cargo-nextest --version {NEXTEST_VERSION}` failed (see above)"
        ))
    }
}

/// Argo CD releases besides the default that the version tests run.
const TEST_ARGOCD_RELEASES: &[&str] = &["v3.1.0", "v3.1.8"];

pub async fn run(nextest_args: &[String], progress: &Progress) -> u8 {
    if let Err(e) = install_packages(progress).await {
        eprintln!("error: {e}");
        return 2;
    }
    // The Go builds (cold: ~20 minutes on 2 cores) and the nextest build
    // are independent: run them side by side.
    let mut tool_opts = harness_tools::ProvisionOptions::default();
    // Tools only tests use (signing interop, referrers API, the workflow
    // linter): built here, once, so that no test waits on a cold Go build
    // (cosign ~9 min, the referrers registry and actionlint ~1 min).
    tool_opts.tools.extend([
        harness_tools::Tool::Cosign,
        harness_tools::Tool::ReferrersRegistry,
        harness_tools::Tool::Oras,
        harness_tools::Tool::Actionlint,
    ]);
    // The suite's KIND lab (harness/testkit/tests/kind_lab.rs) runs the
    // offline images, made of these.
    tool_opts.tools.extend(harness_tools::Tool::KIND_OFFLINE);
    let (tools, nextest) = tokio::join!(
        harness_tools::provision(&tool_opts, progress),
        ensure_nextest(progress)
    );
    match tools {
        Ok(tb) => progress.info(format!(
            "lab tools ready:\n{}",
            tb.render_report().trim_end()
        )),
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    }
    if let Err(e) = nextest {
        eprintln!("error: {e}");
        return 2;
    }
    let engine_before = harness_labs::container::connect().await.is_ok();
    let docker_host = match harness_labs::container::ensure_podman_service().await {
        Ok(h) => Some(h),
        Err(e) => {
            eprintln!("error: no Docker API for the container tests: {e}");
            return 2;
        }
    };
    // The KIND lab's images (a few minutes cold, mostly package downloads
    // and dpkg) while cargo compiles the tests.
    let mut compile = Command::new("cargo");
    compile
        .args(["nextest", "run", "--workspace", "--no-run"])
        .args(nextest_args.iter().take_while(|a| a.as_str() != "--"));
    if let Some(h) = &docker_host {
        compile.env("DOCKER_HOST", h);
    }
    let suite_kind = harness_labs::kind::KindLabConfig::test_suite();
    // The older Argo CD releases of the version tests
    // (harness/testkit/tests/argocd_versions.rs), built once into the cache
    // beside the compile.
    let older_releases = async {
        for version in TEST_ARGOCD_RELEASES {
            let opts = harness_tools::ProvisionOptions {
                tools: [harness_tools::Tool::Argocd].into_iter().collect(),
                argocd_version: version.to_string(),
                ..harness_tools::ProvisionOptions::default()
            };
            if let Err(e) = harness_tools::provision(&opts, progress).await {
                return Err(format!("Argo CD {version} for the version tests: {e}"));
            }
        }
        Ok(())
    };
    let (images, compiled, older) = tokio::join!(
        harness_labs::kind::prepare_offline_images(&suite_kind, progress),
        compile.status(),
        older_releases
    );
    if let Err(e) = images {
        eprintln!("error: the offline KIND images of the suite's KIND lab: {e}");
        return 2;
    }
    if let Err(e) = older {
        eprintln!("error: {e}");
        return 2;
    }
    if !compiled.as_ref().is_ok_and(|s| s.success()) {
        eprintln!("error: compiling the tests failed (see above)");
        return 2;
    }
    let mut cmd = Command::new("cargo");
    cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"])
        .args(nextest_args);
    if let Some(h) = &docker_host {
        cmd.env("DOCKER_HOST", h);
    }
    let code = match cmd.status().await {
        Ok(s) => s.code().map(|c| c.clamp(0, 255) as u8).unwrap_or(1),
        Err(e) => {
            eprintln!("error: cannot run cargo nextest: {e}");
            2
        }
    };
    if !engine_before {
        // We started podman's service: stop it rather than wait for its idle timeout.
        for (pid, cmd) in
            harness_core::process::find_by_cmdline(std::path::Path::new("/run/podman/podman.sock"))
        {
            if cmd.contains("system service") {
                harness_core::process::terminate(pid, std::time::Duration::from_secs(5)).await;
            }
        }
    }
    // podman 4.3 leaves the `conmon` monitor of an exec session running
    // after its container is removed; stop those of the tests' containers
    // (all named `oci-e2e-test-...`) so the suite leaves nothing behind.
    for (pid, cmd) in
        harness_core::process::find_by_cmdline(std::path::Path::new("-n oci-e2e-test-"))
    {
        if cmd.starts_with("/usr/bin/conmon") || cmd.starts_with("conmon") {
            harness_core::process::terminate(pid, std::time::Duration::from_secs(2)).await;
        }
    }
    code
}
