//! Debian packages, when running as root.

use std::process::Stdio;

use tokio::process::Command;

use super::ToolsError;
use harness_core::progress::Task;

/// True when this process runs as root (apt-get needs it).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The command a person runs to install `package` (with `sudo` unless root).
pub fn install_command(package: &str) -> String {
    if running_as_root() {
        format!("apt-get install -y {package}")
    } else {
        format!("sudo apt-get install -y {package}")
    }
}

/// Runs `apt-get update` (once per [`Apt`]) and `apt-get install -y package`.
#[derive(Debug, Default)]
pub struct Apt {
    updated: bool,
}

impl Apt {
    pub async fn install(&mut self, package: &str, task: &Task) -> Result<(), ToolsError> {
        if !self.updated {
            task.update("apt-get update");
            run(&["update"]).await?;
            self.updated = true;
        }
        task.update(format!("apt-get install -y {package}"));
        run(&["install", "-y", "--no-install-recommends", package]).await
    }
}

async fn run(args: &[&str]) -> Result<(), ToolsError> {
    let what = format!("apt-get {}", args.join(" "));
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| ToolsError::Command {
            what: what.clone(),
            detail: e.to_string(),
            log: None,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last: Vec<&str> = stderr.lines().rev().take(5).collect();
        let detail = last.into_iter().rev().collect::<Vec<_>>().join("\n");
        Err(ToolsError::Command {
            what,
            detail: format!("{}: {detail}", out.status),
            log: None,
        })
    }
}
