//! Exposure: every socket the local lab listens on is bound to loopback,
//! found the way an attacker's scan would see it (the kernel's socket
//! tables, not the command lines), for every process of the lab.
//!
//! One exception, upstream and asserted exactly: Argo CD v3.3's
//! application controller binds its metrics server to `0.0.0.0:<port>`
//! with no flag to change it (controller/appcontroller.go:
//! `fmt.Sprintf("0.0.0.0:%d", metricsPort)`). The test requires that this
//! is the controller's `--metrics-port` and nothing else.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use harness_core::progress::Progress;
use harness_labs::local::{LocalLab, LocalLabConfig};
use harness_labs::session;

/// Listening TCP sockets: inode -> (address, port), from /proc/net/tcp{,6}.
fn listening_sockets() -> BTreeMap<u64, (String, u16)> {
    let mut out = BTreeMap::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ... uid timeout inode
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let Some((addr, port)) = f[1].split_once(':') else {
                continue;
            };
            let port = u16::from_str_radix(port, 16).expect("hex port");
            let inode: u64 = f[9].parse().expect("inode");
            out.insert(inode, (decode(addr, v6), port));
        }
    }
    out
}

/// The kernel's hex address (little-endian words) as text.
fn decode(hex: &str, v6: bool) -> String {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let mut ordered = Vec::with_capacity(bytes.len());
    for word in bytes.chunks(4) {
        ordered.extend(word.iter().rev());
    }
    if v6 {
        let a: [u8; 16] = ordered.try_into().expect("16 bytes");
        std::net::Ipv6Addr::from(a).to_string()
    } else {
        let a: [u8; 4] = ordered.try_into().expect("4 bytes");
        std::net::Ipv4Addr::from(a).to_string()
    }
}

/// Socket inodes a process holds.
fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|t| {
            t.to_string_lossy()
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse().ok())
        })
        .collect()
}

fn is_loopback(addr: &str) -> bool {
    addr.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
        || addr == "::ffff:127.0.0.1"
}

fn flag_value(pid: u32, flag: &str) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn config(root: &Path) -> LocalLabConfig {
    harness_core::init_crypto();
    let binaries = session::local_binaries(&Progress::quiet(), harness_labs::ARGOCD_VERSION)
        .await
        .expect("provision the local lab's tools");
    LocalLabConfig {
        binaries,
        labs_root: root.to_path_buf(),
        detached: false,
        reconciliation: Duration::from_secs(10),
        argocd_version: harness_labs::ARGOCD_VERSION.to_string(),
        registry: Default::default(),
        seeds: harness_labs::local::seed::seeds_dir_from_env(
            &harness_tools::cache::default_cache_root(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_lab_listens_on_loopback_only() {
    let root = tempfile::tempdir().expect("tempdir");
    let lab = LocalLab::up(&config(root.path()).await, &Progress::quiet())
        .await
        .expect("local lab starts");
    let sockets = listening_sockets();
    let mut seen = 0;
    let mut exposed = Vec::new();
    let mut controller_exception = Vec::new();
    for child in &lab.state().children {
        for inode in socket_inodes(child.pid) {
            let Some((addr, port)) = sockets.get(&inode) else {
                continue;
            };
            seen += 1;
            if is_loopback(addr) {
                continue;
            }
            let controller_metrics = child.name == "argocd-application-controller"
                && flag_value(child.pid, "--metrics-port") == Some(port.to_string())
                && (addr == "0.0.0.0" || addr == "::");
            if controller_metrics {
                controller_exception.push(*port);
            } else {
                exposed.push(format!(
                    "{} (pid {}) on {addr}:{port}",
                    child.name, child.pid
                ));
            }
        }
    }
    let names: Vec<String> = lab
        .state()
        .children
        .iter()
        .map(|c| c.name.clone())
        .collect();
    lab.shutdown(root.path(), None).await.expect("shutdown");
    // Not vacuous: etcd, the apiserver, the registry, redis and Argo CD
    // all listen, so the walk must have found many sockets.
    assert!(
        seen >= 8,
        "found only {seen} listening sockets of {names:?}"
    );
    assert!(exposed.is_empty(), "listening beyond loopback: {exposed:?}");
    assert!(
        controller_exception.len() <= 1,
        "the controller's one metrics port at most: {controller_exception:?}"
    );
}
