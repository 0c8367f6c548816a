//! `docker exec` and writing files into containers.

use super::*;

/// Output of a finished exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `argv` in a running container and waits for it (`docker exec`).
pub async fn exec(
    engine: &Engine,
    container: &str,
    argv: &[&str],
) -> Result<ExecOutput, ContainerError> {
    let docker = &engine.docker;
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(argv.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(api(format!("exec in {container}")))?;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    match docker
        .start_exec(&created.id, None)
        .await
        .map_err(api(format!("start exec in {container}")))?
    {
        StartExecResults::Attached { mut output, .. } => {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(api(format!("read exec output from {container}")))? {
                    bollard::container::LogOutput::StdErr { message } => {
                        stderr.extend_from_slice(&message)
                    }
                    other => stdout.extend_from_slice(&other.into_bytes()),
                }
            }
        }
        StartExecResults::Detached => {}
    }
    // The stream ends when the process does; the exit code may lag a little.
    let steady = harness_core::poll::Backoff {
        initial: Duration::from_millis(100),
        factor: 1.0,
        max: Duration::from_millis(100),
    };
    let exited = harness_core::poll::eventually_try(
        tokio::time::Instant::now() + Duration::from_secs(5),
        steady,
        &tokio_util::sync::CancellationToken::new(),
        || async {
            let inspect = docker
                .inspect_exec(&created.id)
                .await
                .map_err(api(format!("inspect exec in {container}")))?;
            Ok::<_, ContainerError>(harness_core::poll::Observation {
                holds: inspect.running != Some(true),
                detail: inspect.exit_code,
            })
        },
    )
    .await?;
    let exit_code = match exited {
        harness_core::poll::PollOutcome::Held { last, .. } => last,
        _ => None,
    };
    Ok(ExecOutput {
        exit_code: exit_code.unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Writes `content` to `path` inside a running container, creating the
/// parent directory (what kind's recipe does with `docker exec ... cp
/// /dev/stdin`). Content and path travel as argv, never through a shell
/// string, so nothing needs quoting.
pub async fn write_file_in_container(
    engine: &Engine,
    container: &str,
    path: &str,
    content: &str,
) -> Result<(), ContainerError> {
    let dir = Path::new(path)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    let script = "mkdir -p \"$1\" && printf '%s' \"$3\" > \"$2\"";
    let argv = ["sh", "-c", script, "sh", dir.as_str(), path, content];
    let out = exec(engine, container, &argv).await?;
    if out.exit_code != 0 {
        return Err(ContainerError::ExecFailed {
            container: container.into(),
            command: format!("write {path}"),
            code: out.exit_code,
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(())
}
