//! Images: presence checks, and the small registry image tests use,
//! imported from a rootfs tar since no image can be pulled here.

use super::*;

/// True when the engine has the image.
pub async fn image_exists(engine: &Engine, image: &str) -> Result<bool, ContainerError> {
    let docker = &engine.docker;
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api(format!("inspect image {image}"))(e)),
    }
}

/// Pulls `image` through the engine, giving up after `timeout` (a machine
/// without a registry may take long to fail).
pub async fn pull_image(
    engine: &Engine,
    image: &str,
    timeout: Duration,
) -> Result<(), ContainerError> {
    let options = bollard::query_parameters::CreateImageOptions {
        from_image: Some(image.to_string()),
        ..Default::default()
    };
    let pull = async {
        let mut stream = engine.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            item.map_err(api(format!("pull {image}")))?;
        }
        Ok::<(), ContainerError>(())
    };
    match tokio::time::timeout(timeout, pull).await {
        Ok(result) => result,
        Err(_) => Err(ContainerError::Other(format!(
            "pull {image}: no answer within {timeout:?}"
        ))),
    }
}

/// Registry config for the test image: Debian's, minus htpasswd auth.
const TEST_REGISTRY_CONFIG: &str = "version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
";

/// Command the test registry image runs.
pub fn test_registry_cmd() -> Vec<String> {
    vec![
        "/usr/bin/docker-registry".into(),
        "serve".into(),
        "/etc/docker/registry/config.yml".into(),
    ]
}

fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, ContainerError> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(io(format!("run ldd {}", binary.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // Statically linked binaries make ldd fail; they need nothing.
        return Ok(Vec::new());
    }
    Ok(text
        .lines()
        .filter_map(|line| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let candidate = match line.split_once("=>") {
                Some((_, rhs)) => rhs.split_whitespace().next(),
                None => line.split_whitespace().next(),
            }?;
            candidate.starts_with('/').then(|| PathBuf::from(candidate))
        })
        .collect())
}

fn append_file(
    builder: &mut tar::Builder<std::fs::File>,
    path_in_image: &str,
    data: &[u8],
    mode: u32,
) -> Result<(), ContainerError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, path_in_image.trim_start_matches('/'), data)
        .map_err(io(format!("add {path_in_image} to the rootfs tar")))
}

fn append_dir(
    builder: &mut tar::Builder<std::fs::File>,
    path_in_image: &str,
) -> Result<(), ContainerError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Directory);
    builder
        .append_data(
            &mut header,
            format!("{}/", path_in_image.trim_start_matches('/')),
            std::io::empty(),
        )
        .map_err(io(format!("add {path_in_image}/ to the rootfs tar")))
}

fn append_symlink(
    builder: &mut tar::Builder<std::fs::File>,
    path_in_image: &str,
    target: &str,
) -> Result<(), ContainerError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o777);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Symlink);
    builder
        .append_link(&mut header, path_in_image.trim_start_matches('/'), target)
        .map_err(io(format!("add symlink {path_in_image} to the rootfs tar")))
}

/// Writes the rootfs tar of the test registry image: static busybox (a
/// shell for `docker exec`), Debian's registry binary with its libc and
/// loader, and a config without htpasswd.
pub fn write_registry_rootfs(
    tar_path: &Path,
    registry_binary: &Path,
    busybox: &Path,
) -> Result<(), ContainerError> {
    let file =
        std::fs::File::create(tar_path).map_err(io(format!("create {}", tar_path.display())))?;
    let mut builder = tar::Builder::new(file);
    for dir in [
        "/bin",
        "/usr",
        "/usr/bin",
        "/etc",
        "/etc/docker",
        "/etc/docker/registry",
        "/var",
        "/var/lib",
        "/var/lib/registry",
        "/tmp",
    ] {
        append_dir(&mut builder, dir)?;
    }
    let busybox_bytes = std::fs::read(busybox).map_err(io(format!(
        "read {} (install busybox-static)",
        busybox.display()
    )))?;
    append_file(&mut builder, "/bin/busybox", &busybox_bytes, 0o755)?;
    for applet in ["sh", "mkdir", "cat", "printf", "ls", "rm", "wget"] {
        append_symlink(&mut builder, &format!("/bin/{applet}"), "busybox")?;
    }
    let registry_bytes = std::fs::read(registry_binary).map_err(io(format!(
        "read {} (install docker-registry)",
        registry_binary.display()
    )))?;
    append_file(
        &mut builder,
        "/usr/bin/docker-registry",
        &registry_bytes,
        0o755,
    )?;
    let mut dirs_done: Vec<String> = Vec::new();
    for lib in shared_libraries(registry_binary)? {
        // Follow symlinks (the loader is one): the image gets the bytes.
        let bytes = std::fs::read(&lib).map_err(io(format!("read {}", lib.display())))?;
        let mut parents: Vec<String> = Vec::new();
        let mut p = lib.parent();
        while let Some(dir) = p {
            if dir == Path::new("/") {
                break;
            }
            parents.push(dir.to_string_lossy().into_owned());
            p = dir.parent();
        }
        for dir in parents.into_iter().rev() {
            if !dirs_done.contains(&dir) {
                append_dir(&mut builder, &dir)?;
                dirs_done.push(dir);
            }
        }
        append_file(&mut builder, &lib.to_string_lossy(), &bytes, 0o755)?;
    }
    append_file(
        &mut builder,
        "/etc/docker/registry/config.yml",
        TEST_REGISTRY_CONFIG.as_bytes(),
        0o644,
    )?;
    builder
        .finish()
        .map_err(io(format!("finish {}", tar_path.display())))?;
    Ok(())
}

/// Builds (once) the small registry image tests use, since no image can be
/// pulled here: an import (`podman import`) of [`write_registry_rootfs`]. Skipped when
/// the image exists. Returns the image reference.
pub async fn build_registry_image(engine: &Engine) -> Result<String, ContainerError> {
    let docker = &engine.docker;
    if image_exists(engine, TEST_REGISTRY_IMAGE).await? {
        return Ok(TEST_REGISTRY_IMAGE.to_string());
    }
    // Tests run in parallel processes: one builds, the others wait and reuse.
    let lock_path = std::env::temp_dir().join("oci-e2e-registry-image.lock");
    let _lock = tokio::task::spawn_blocking(move || FileLock::acquire(&lock_path))
        .await
        .map_err(|e| ContainerError::Other(format!("lock task failed: {e}")))??;
    if image_exists(engine, TEST_REGISTRY_IMAGE).await? {
        return Ok(TEST_REGISTRY_IMAGE.to_string());
    }
    let dir = tempfile::tempdir().map_err(io("create a temporary directory"))?;
    let tar_path = dir.path().join("rootfs.tar");
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .ok_or_else(|| {
            ContainerError::Other("busybox not found: `apt-get install busybox-static`".into())
        })?;
    let tar_for_task = tar_path.clone();
    let busybox = busybox.to_path_buf();
    tokio::task::spawn_blocking(move || {
        write_registry_rootfs(
            &tar_for_task,
            Path::new("/usr/bin/docker-registry"),
            &busybox,
        )
    })
    .await
    .map_err(|e| ContainerError::Other(format!("rootfs task failed: {e}")))??;
    // `podman import` / `docker import` through the API: POST
    // /images/create?fromSrc=- with the tar as body, so Docker and podman
    // engines both get the image.
    let tar = tokio::fs::read(&tar_path)
        .await
        .map_err(io(format!("read {}", tar_path.display())))?;
    let options = bollard::query_parameters::CreateImageOptions {
        from_src: Some("-".into()),
        // The tag inside `repo`: podman ignores the separate `tag` field
        // on imports; Docker accepts both forms.
        repo: Some(TEST_REGISTRY_IMAGE.into()),
        // Shell form with `exec`: podman splits a JSON-array change at its
        // commas, and `exec` keeps the registry as PID 1 for stop signals.
        changes: vec![format!("CMD exec {}", test_registry_cmd().join(" "))],
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(options), Some(bollard::body_full(tar.into())), None);
    let mut failure = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            failure = Some(e);
            break;
        }
    }
    if let Some(e) = failure {
        // Two processes may have raced to build it; theirs is as good.
        if image_exists(engine, TEST_REGISTRY_IMAGE).await? {
            return Ok(TEST_REGISTRY_IMAGE.to_string());
        }
        return Err(api(format!("import {TEST_REGISTRY_IMAGE}"))(e));
    }
    if !image_exists(engine, TEST_REGISTRY_IMAGE).await? {
        return Err(ContainerError::Other(format!(
            "the engine accepted the import but has no {TEST_REGISTRY_IMAGE} afterwards"
        )));
    }
    Ok(TEST_REGISTRY_IMAGE.to_string())
}
