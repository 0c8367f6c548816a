//! Debian packages, when running as root.

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
    let mut cmd = Command::new("apt-get");
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    harness_core::command::run(&mut cmd, &what, 5)
        .await
        .map(|_| ())
        .map_err(|f| ToolsError::Command {
            what: f.command,
            detail: f.detail,
            log: None,
        })
}
