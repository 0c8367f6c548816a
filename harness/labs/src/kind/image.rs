//! The offline KIND images: a node image and the images the cluster runs
//! (Kubernetes' control plane, etcd, CoreDNS, pause, Argo CD, Redis), made
//! here from Debian packages and the Go-built binaries, for machines that
//! cannot pull `kindest/node` or any other image.
//!
//! The recipe lives in the top-level `kind/` folder (`kind/node/`,
//! `kind/images/`) and is compiled in: `mmdebstrap` makes a Debian 12
//! rootfs with the recipe's packages, its customize hook adds kind's own
//! base files (from the kind Go module) and our binaries, and the engine
//! imports the tar. Images are tagged with a key over the recipe and every
//! version that goes into them, so a changed recipe or pin builds anew and
//! an unchanged one is reused from the engine's image store.
//!
//! The node reaches the component images through containerd registry
//! mirrors to the lab registry (`kind-registry:5000`), which the lab fills
//! before it creates the cluster ([`push_images`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::process::Command;

use super::KindError;
use crate::container::{self, Engine, FileLock, NameResolution};
use harness_core::progress::{Progress, Task};
use harness_tools::versions::{
    self, COREDNS, CRICTL, ETCD_GO, HELM, KIND_VERSION, KUBERNETES_VERSION, PAUSE_VERSION,
};
use harness_tools::{Tool, Toolbox};

/// One file of a recipe: its name in the build folder and its content.
type RecipeFile = (&'static str, &'static str);

/// `kind/node/`: the node image recipe.
pub const NODE_RECIPE: &[RecipeFile] = &[
    ("packages", include_str!("../../../../kind/node/packages")),
    (
        "customize.sh",
        include_str!("../../../../kind/node/customize.sh"),
    ),
    (
        "containerd-config.toml",
        include_str!("../../../../kind/node/containerd-config.toml"),
    ),
];

/// `kind/images/`: the component images recipe.
pub const COMPONENT_RECIPE: &[RecipeFile] = &[
    ("packages", include_str!("../../../../kind/images/packages")),
    (
        "customize.sh",
        include_str!("../../../../kind/images/customize.sh"),
    ),
    ("pause.c", include_str!("../../../../kind/images/pause.c")),
    (
        "images.yaml",
        include_str!("../../../../kind/images/images.yaml"),
    ),
];

/// Registries whose images the node takes from the lab registry.
pub const MIRRORED_REGISTRIES: &[&str] = &[
    "registry.k8s.io",
    "quay.io",
    "public.ecr.aws",
    "ghcr.io",
    "docker.io",
];

/// Where the offline images live in the engine's image store.
pub const IMAGE_PREFIX: &str = "localhost/oci-e2e";

/// What goes into the component images beyond the offline-only tools.
pub const COMPONENT_TOOLS: &[Tool] = &[
    Tool::KubeApiserver,
    Tool::KubeControllerManager,
    Tool::KubeScheduler,
    Tool::KubeProxy,
    Tool::Etcd,
    Tool::Coredns,
    Tool::Argocd,
    Tool::Helm,
];

/// What goes into the node image.
pub const NODE_TOOLS: &[Tool] = &[Tool::Kubelet, Tool::Kubeadm, Tool::Kubectl, Tool::Crictl];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImagesFile {
    images: Vec<ImageEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageEntry {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// One image the cluster asks for, made from the component rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentImage {
    /// The reference the cluster uses, e.g. `registry.k8s.io/pause:3.10.1`.
    pub reference: String,
    /// Where it is kept locally (tagged with the recipe key).
    pub local: String,
    /// Containerfile lines over the shared rootfs (ENV, USER, ENTRYPOINT...).
    pub config: Vec<String>,
}

impl ComponentImage {
    /// The registry host of [`Self::reference`].
    pub fn registry(&self) -> &str {
        self.reference.split('/').next().unwrap_or("")
    }

    /// The reference without its registry host: where a containerd mirror
    /// looks it up (`kube-apiserver:v1.34.4`).
    pub fn mirror_path(&self) -> &str {
        self.reference
            .split_once('/')
            .map(|(_, rest)| rest)
            .unwrap_or(&self.reference)
    }
}

/// The offline images of one lab configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineImages {
    pub node: String,
    pub components_base: String,
    pub components: Vec<ComponentImage>,
}

/// The etcd image tag the offline lab serves (kubeadm's `-0` suffix on
/// the etcd the local lab builds).
pub fn etcd_image_tag() -> String {
    format!("{}-0", ETCD_GO.version.trim_start_matches('v'))
}

fn hash_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())[..12].to_string()
}

fn recipe_parts(recipe: &[RecipeFile]) -> Vec<&'static str> {
    recipe.iter().flat_map(|(n, c)| [*n, *c]).collect()
}

/// The node image: `localhost/oci-e2e/kind-node:v1.34.4-<key>`, where the
/// key covers the recipe, the versions, the registry address baked in, and
/// the component images preloaded into it.
pub fn node_image(mirror: &str, argocd_version: &str) -> String {
    let base = node_base_image(mirror);
    let components = components_key(argocd_version);
    format!(
        "{IMAGE_PREFIX}/kind-node:{KUBERNETES_VERSION}-{}",
        hash_key(&[&base, &components, PRELOAD_REVISION])
    )
}

/// Part of the node image's key: bump it whenever [`preload_node`] changes
/// what it does, so no node image of the old steps is reused.
const PRELOAD_REVISION: &str = "preload-2";

/// The node image before the preload: the mmdebstrap rootfs of the node
/// recipe, its versions and the registry address baked in.
pub fn node_base_image(mirror: &str) -> String {
    let mut parts = recipe_parts(NODE_RECIPE);
    parts.extend([KUBERNETES_VERSION, CRICTL.version, KIND_VERSION, mirror]);
    parts.extend(MIRRORED_REGISTRIES);
    format!(
        "{IMAGE_PREFIX}/kind-node-base:{KUBERNETES_VERSION}-{}",
        hash_key(&parts)
    )
}

/// The key of the component images: their recipe and every version.
pub fn components_key(argocd_version: &str) -> String {
    let mut parts = recipe_parts(COMPONENT_RECIPE);
    parts.extend([
        KUBERNETES_VERSION,
        ETCD_GO.version,
        COREDNS.version,
        PAUSE_VERSION,
        argocd_version,
        HELM.version,
    ]);
    hash_key(&parts)
}

/// The images a node has in containerd before the cluster exists: what
/// kubeadm asks for (control plane, kube-proxy, etcd, CoreDNS) and the
/// sandbox image; Argo CD's come from the lab registry.
pub fn preloaded(images: &[ComponentImage]) -> Vec<&ComponentImage> {
    images
        .iter()
        .filter(|i| i.registry() == "registry.k8s.io")
        .collect()
}

/// The component images for Argo CD `argocd_version`, whose install.yaml
/// is `install_yaml` (it names the Redis tag).
pub fn component_images(
    argocd_version: &str,
    install_yaml: &str,
) -> Result<(String, Vec<ComponentImage>), KindError> {
    let key = components_key(argocd_version);
    let base = format!("{IMAGE_PREFIX}/kind-components:{key}");
    let file: ImagesFile =
        serde_saphyr::from_str(include_str!("../../../../kind/images/images.yaml"))
            .map_err(|e| KindError::Other(format!("kind/images/images.yaml (compiled in): {e}")))?;
    let install_tags = install_yaml_images(install_yaml);
    let etcd = etcd_image_tag();
    let mut out = Vec::new();
    for entry in file.images {
        let (repo, tag) = entry.reference.rsplit_once(':').ok_or_else(|| {
            KindError::Other(format!(
                "kind/images/images.yaml: {:?} has no tag",
                entry.reference
            ))
        })?;
        let tag = match tag {
            "{kubernetes}" => KUBERNETES_VERSION.to_string(),
            "{etcd}" => etcd.clone(),
            "{coredns}" => COREDNS.version.to_string(),
            "{pause}" => PAUSE_VERSION.to_string(),
            "{argocd}" => argocd_version.to_string(),
            "{install.yaml}" => install_tags.get(repo).cloned().ok_or_else(|| {
                KindError::Other(format!(
                    "Argo CD {argocd_version}'s install.yaml names no {repo} image \
                     (kind/images/images.yaml expects one)"
                ))
            })?,
            other if other.starts_with('{') => {
                return Err(KindError::Other(format!(
                    "kind/images/images.yaml: unknown tag placeholder {other} in {:?}",
                    entry.reference
                )));
            }
            literal => literal.to_string(),
        };
        let reference = format!("{repo}:{tag}");
        let mut config = vec![
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ];
        for (k, v) in &entry.env {
            config.push(format!("ENV {k}={v}"));
        }
        if let Some(w) = &entry.workdir {
            config.push(format!("WORKDIR {w}"));
        }
        if let Some(u) = &entry.user {
            config.push(format!("USER {u}"));
        }
        if let Some(e) = &entry.entrypoint {
            config.push(format!(
                "ENTRYPOINT {}",
                serde_json::to_string(e).unwrap_or_default()
            ));
        }
        let local = format!("{IMAGE_PREFIX}/mirror/{repo}:{tag}-{key}");
        let image = ComponentImage {
            reference,
            local,
            config,
        };
        if !MIRRORED_REGISTRIES.contains(&image.registry()) {
            return Err(KindError::Other(format!(
                "kind/images/images.yaml: {} is on {}, which the node image does not mirror \
                 (MIRRORED_REGISTRIES in harness/labs/src/kind/image.rs)",
                image.reference,
                image.registry()
            )));
        }
        out.push(image);
    }
    Ok((base, out))
}

/// `repository -> tag` of every `image:` in an install.yaml.
pub fn install_yaml_images(install_yaml: &str) -> BTreeMap<String, String> {
    install_yaml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("image:"))
        .filter_map(|i| {
            let i = i.trim().trim_matches('"');
            i.rsplit_once(':')
                .filter(|(repo, _)| repo.contains('/'))
                .map(|(r, t)| (r.to_string(), t.to_string()))
        })
        .collect()
}

/// The images of install.yaml that the offline lab does not serve.
pub fn unserved_images(install_yaml: &str, served: &[ComponentImage]) -> Vec<String> {
    let served: BTreeSet<&str> = served.iter().map(|i| i.reference.as_str()).collect();
    install_yaml_images(install_yaml)
        .into_iter()
        .map(|(r, t)| format!("{r}:{t}"))
        .filter(|r| !served.contains(r.as_str()))
        .collect()
}

/// The container CLI that goes with the engine (`podman` or `docker`):
/// imports and builds of images this size go through it rather than
/// through the API, which would need the whole tar in memory.
pub async fn engine_cli(engine: &Engine) -> Result<&'static str, KindError> {
    Ok(match container::name_resolution(engine).await? {
        NameResolution::Podman { .. } => "podman",
        NameResolution::Docker => "docker",
    })
}

/// What building the images needs from the machine, checked before
/// anything is built: mmdebstrap, root (its chroot hooks), the kind module.
fn preflight() -> Result<(), KindError> {
    if harness_tools::find_executable("mmdebstrap", &std::env::var_os("PATH").unwrap_or_default())
        .is_none()
    {
        return Err(KindError::Other(
            "building the offline KIND images needs mmdebstrap: `apt-get install mmdebstrap` \
             (or use an official node image: OCI_E2E_KIND_NODE_IMAGE)"
                .into(),
        ));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(KindError::Other(
            "building the offline KIND images runs mmdebstrap with chroot hooks, which needs \
             root: run as root, or use an official node image (OCI_E2E_KIND_NODE_IMAGE)"
                .into(),
        ));
    }
    Ok(())
}

/// The Debian sources mmdebstrap uses: the host's own when the host is
/// Debian 12 (so a machine with only a Debian mirror works), else
/// mmdebstrap's default mirror.
fn apt_sources() -> Vec<PathBuf> {
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    if !os.lines().any(|l| l.trim() == "VERSION_CODENAME=bookworm") {
        return Vec::new();
    }
    let mut out = Vec::new();
    let main = Path::new("/etc/apt/sources.list");
    if std::fs::read_to_string(main).is_ok_and(|s| {
        s.lines()
            .any(|l| l.trim_start().starts_with("deb ") || l.trim_start().starts_with("deb\t"))
    }) {
        out.push(main.to_path_buf());
    }
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

fn packages(recipe: &[RecipeFile]) -> String {
    let text = recipe
        .iter()
        .find(|(n, _)| *n == "packages")
        .map(|(_, c)| *c)
        .unwrap_or("");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(",")
}

fn write_recipe(dir: &Path, recipe: &[RecipeFile]) -> Result<(), KindError> {
    std::fs::create_dir_all(dir).map_err(|source| KindError::Io {
        what: format!("create {}", dir.display()),
        source,
    })?;
    for (name, content) in recipe {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|source| KindError::Io {
            what: format!("write {}", path.display()),
            source,
        })?;
    }
    Ok(())
}

fn tools_err(e: harness_tools::ToolsError) -> KindError {
    KindError::Other(e.to_string())
}

async fn run_cli(program: &str, args: &[&str], what: &str) -> Result<String, KindError> {
    let command = format!("{program} {}", args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args).kill_on_drop(true);
    let out = harness_core::command::output(&mut cmd, &command)
        .await
        .map_err(|f| KindError::Other(format!("{what}: {}", f.detail)))?;
    if !out.status.success() {
        return Err(KindError::KindCommand {
            command,
            stderr: format!(
                "{} ({})",
                harness_core::command::stderr_tail(&out, 15),
                out.status
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs mmdebstrap: a Debian 12 minbase rootfs with the recipe's packages
/// and its customize hook, written to `out` as a tar.
async fn mmdebstrap(
    recipe_dir: &Path,
    recipe: &[RecipeFile],
    env: &[(&str, String)],
    out: &Path,
    log: &Path,
    task: &Task,
) -> Result<(), KindError> {
    let mut cmd = Command::new("mmdebstrap");
    cmd.arg("--variant=minbase")
        .arg(format!("--include={}", packages(recipe)))
        .arg("--customize-hook=sh \"$RECIPE/customize.sh\" \"$1\"")
        .arg("bookworm")
        .arg(out)
        .args(apt_sources())
        .env("RECIPE", recipe_dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    harness_tools::gobuild::run_logged(cmd, log, task, "mmdebstrap")
        .await
        .map_err(tools_err)
}

async fn go_module_dir(module: &str, version: &str) -> Result<PathBuf, KindError> {
    harness_tools::gobuild::module_dir(module, version)
        .await
        .map_err(|e| {
            KindError::Other(format!(
                "{e} (the offline images take files from Go modules, which needs Go)"
            ))
        })
}

/// kind's base image files (`images/base/files` of the kind module).
async fn kind_base_files() -> Result<PathBuf, KindError> {
    let dir = go_module_dir("sigs.k8s.io/kind", KIND_VERSION)
        .await?
        .join("images/base/files");
    if !dir.join("usr/local/bin/entrypoint").is_file() {
        return Err(KindError::Other(format!(
            "kind's base files are not in {} (the kind module {KIND_VERSION} should ship them)",
            dir.display()
        )));
    }
    Ok(dir)
}

/// Copies the binaries `tools` into `dir` under their own names.
fn stage_binaries(toolbox: &Toolbox, tools: &[Tool], dir: &Path) -> Result<(), KindError> {
    std::fs::create_dir_all(dir).map_err(|source| KindError::Io {
        what: format!("create {}", dir.display()),
        source,
    })?;
    for tool in tools {
        let from = toolbox
            .get(*tool)
            .ok_or_else(|| KindError::Other(format!("{tool} was not provisioned")))?;
        let to = dir.join(tool.binary_name());
        std::fs::copy(from, &to).map_err(|source| KindError::Io {
            what: format!("copy {} to {}", from.display(), to.display()),
            source,
        })?;
    }
    Ok(())
}

async fn image_present(engine: &Engine, image: &str) -> Result<bool, KindError> {
    Ok(container::image_exists(engine, image).await?)
}

/// The tools the offline images are made of (built from Go modules and
/// cached like the local lab's).
pub async fn provision_tools(cache_dir: &Path, progress: &Progress) -> Result<Toolbox, KindError> {
    let opts = harness_tools::ProvisionOptions {
        tools: NODE_TOOLS
            .iter()
            .chain(COMPONENT_TOOLS)
            .chain([&Tool::Kind])
            .copied()
            .collect(),
        cache_dir: cache_dir.to_path_buf(),
        // The etcd image tag is the Go-built etcd's version.
        etcd: versions::EtcdSource::Go,
        ..Default::default()
    };
    harness_tools::provision(&opts, progress)
        .await
        .map_err(tools_err)
}

/// Makes sure the node image and the component images exist in the
/// engine's store, building what is missing. Returns what it has.
pub async fn ensure_images(
    engine: &Engine,
    cache_dir: &Path,
    mirror: &str,
    argocd_version: &str,
    install_yaml: &str,
    progress: &Progress,
) -> Result<OfflineImages, KindError> {
    if argocd_version != harness_tools::versions::ARGOCD_VERSION {
        return Err(KindError::Other(format!(
            "the offline images carry the Argo CD binary of the version table ({}), not \
             {argocd_version}: unset OCI_E2E_ARGOCD_VERSION, or use kind's images where they \
             can be pulled",
            harness_tools::versions::ARGOCD_VERSION
        )));
    }
    let node = node_image(mirror, argocd_version);
    let (components_base, components) = component_images(argocd_version, install_yaml)?;
    let images = OfflineImages {
        node,
        components_base,
        components,
    };
    if all_present(engine, &images).await? {
        progress.info(format!("offline KIND images: reused {}", images.node));
        return Ok(images);
    }
    preflight()?;
    let work_root = cache_dir.join("kind-images");
    std::fs::create_dir_all(&work_root).map_err(|source| KindError::Io {
        what: format!("create {}", work_root.display()),
        source,
    })?;
    // Parallel test processes: one builds, the others wait and reuse.
    let lock_path = work_root.join(".build.lock");
    let _lock = tokio::task::spawn_blocking(move || FileLock::acquire(&lock_path))
        .await
        .map_err(|e| KindError::Other(format!("lock task failed: {e}")))??;
    if all_present(engine, &images).await? {
        return Ok(images);
    }
    let toolbox = provision_tools(cache_dir, progress).await?;
    let cli = engine_cli(engine).await?;
    let build = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&work_root)
        .map_err(|source| KindError::Io {
            what: format!("create a build folder in {}", work_root.display()),
            source,
        })?;
    if !image_present(engine, &images.components_base).await? {
        build_components_base(
            cli,
            argocd_version,
            &toolbox,
            build.path(),
            &work_root,
            &images.components_base,
            progress,
        )
        .await?;
    }
    let empty = build.path().join("context");
    std::fs::create_dir_all(&empty).map_err(|source| KindError::Io {
        what: format!("create {}", empty.display()),
        source,
    })?;
    for image in &images.components {
        if image_present(engine, &image.local).await? {
            continue;
        }
        let containerfile = build.path().join("Containerfile");
        let text = format!(
            "FROM {}\n{}\n",
            images.components_base,
            image.config.join("\n")
        );
        std::fs::write(&containerfile, text).map_err(|source| KindError::Io {
            what: format!("write {}", containerfile.display()),
            source,
        })?;
        cli_build(cli, &containerfile, &empty, &image.local).await?;
    }
    if !image_present(engine, &images.node).await? {
        let base = node_base_image(mirror);
        if !image_present(engine, &base).await? {
            build_node(
                cli,
                &toolbox,
                build.path(),
                &work_root,
                mirror,
                &base,
                progress,
            )
            .await?;
        }
        preload_node(cli, build.path(), &base, &images, progress).await?;
    }
    Ok(images)
}

async fn all_present(engine: &Engine, images: &OfflineImages) -> Result<bool, KindError> {
    if !image_present(engine, &images.node).await? {
        return Ok(false);
    }
    for image in &images.components {
        if !image_present(engine, &image.local).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn cli_build(
    cli: &str,
    containerfile: &Path,
    context: &Path,
    tag: &str,
) -> Result<(), KindError> {
    let file = containerfile.display().to_string();
    let ctx = context.display().to_string();
    run_cli(
        cli,
        &["build", "-q", "-t", tag, "-f", &file, &ctx],
        &format!("build {tag}"),
    )
    .await
    .map(|_| ())
}

async fn import(cli: &str, tar: &Path, tag: &str, changes: &[&str]) -> Result<(), KindError> {
    let tar = tar.display().to_string();
    let mut args = vec!["import"];
    for c in changes {
        args.push("--change");
        args.push(c);
    }
    args.push(&tar);
    args.push(tag);
    run_cli(cli, &args, &format!("import {tag}"))
        .await
        .map(|_| ())
}

/// Ends a build's progress line with its duration or its error.
fn finish(task: Task, started: Instant, result: Result<(), KindError>) -> Result<(), KindError> {
    match result {
        Ok(()) => {
            task.done(format!("built in {:.0?}", started.elapsed()));
            Ok(())
        }
        Err(e) => {
            task.fail(e.to_string());
            Err(e)
        }
    }
}

async fn build_node(
    cli: &str,
    toolbox: &Toolbox,
    build: &Path,
    work_root: &Path,
    mirror: &str,
    tag: &str,
    progress: &Progress,
) -> Result<(), KindError> {
    let started = Instant::now();
    let task = progress.task(format!("node image {tag} (mmdebstrap, about 2 minutes)"));
    let result = async {
        let recipe = build.join("node-recipe");
        write_recipe(&recipe, NODE_RECIPE)?;
        let bin = build.join("node-bin");
        stage_binaries(toolbox, NODE_TOOLS, &bin)?;
        let tar = build.join("node.tar");
        let log = work_root.join("node.log");
        let _ = std::fs::remove_file(&log);
        let env = [
            (
                "KIND_BASE_FILES",
                kind_base_files().await?.display().to_string(),
            ),
            ("NODE_BIN", bin.display().to_string()),
            ("KUBERNETES_VERSION", KUBERNETES_VERSION.to_string()),
            ("MIRROR", mirror.to_string()),
            ("MIRRORED", MIRRORED_REGISTRIES.join(" ")),
        ];
        mmdebstrap(&recipe, NODE_RECIPE, &env, &tar, &log, &task).await?;
        task.update("importing");
        // kind's base image metadata (images/base/Dockerfile).
        import(
            cli,
            &tar,
            tag,
            &[
                "ENTRYPOINT [\"/usr/local/bin/entrypoint\", \"/sbin/init\"]",
                "ENV container=docker",
                "STOPSIGNAL SIGRTMIN+3",
            ],
        )
        .await?;
        let _ = std::fs::remove_file(&tar);
        Ok::<(), KindError>(())
    }
    .await;
    finish(task, started, result)
}

async fn build_components_base(
    cli: &str,
    argocd_version: &str,
    toolbox: &Toolbox,
    build: &Path,
    work_root: &Path,
    tag: &str,
    progress: &Progress,
) -> Result<(), KindError> {
    let started = Instant::now();
    let task = progress.task(format!(
        "component images {tag} (mmdebstrap, about 2 minutes)"
    ));
    let result = async {
        let recipe = build.join("components-recipe");
        write_recipe(&recipe, COMPONENT_RECIPE)?;
        let bin = build.join("components-bin");
        stage_binaries(toolbox, COMPONENT_TOOLS, &bin)?;
        // The sandbox process: our own C file, static.
        let pause = bin.join("pause");
        let mut gcc = Command::new("gcc");
        gcc.args(["-Os", "-Wall", "-Werror", "-static", "-o"])
            .arg(&pause)
            .arg(recipe.join("pause.c"))
            .kill_on_drop(true);
        harness_core::command::run(&mut gcc, "gcc -static pause.c", 10)
            .await
            .map_err(|f| {
                KindError::Other(format!(
                    "building the pause binary needs gcc and a static libc \
                     (`apt-get install gcc libc6-dev`): {}",
                    f.detail
                ))
            })?;
        let tar = build.join("components.tar");
        let log = work_root.join("components.log");
        let _ = std::fs::remove_file(&log);
        let argocd_src = go_module_dir("github.com/argoproj/argo-cd/v3", argocd_version).await?;
        let env = [
            ("COMPONENT_BIN", bin.display().to_string()),
            ("ARGOCD_SRC", argocd_src.display().to_string()),
        ];
        mmdebstrap(&recipe, COMPONENT_RECIPE, &env, &tar, &log, &task).await?;
        task.update("importing");
        import(cli, &tar, tag, &[]).await?;
        let _ = std::fs::remove_file(&tar);
        Ok::<(), KindError>(())
    }
    .await;
    finish(task, started, result)
}

/// Makes the node image from its base: a container of the base runs
/// containerd, imports the [`preloaded`] images into its `k8s.io`
/// namespace under the references kubeadm asks for (pinned, so the
/// kubelet's image GC keeps them), and is committed with kind's image
/// metadata. The container and the archive are removed however it ends.
async fn preload_node(
    cli: &str,
    build: &Path,
    base: &str,
    images: &OfflineImages,
    progress: &Progress,
) -> Result<(), KindError> {
    let started = Instant::now();
    let preload = preloaded(&images.components);
    let task = progress.task(format!(
        "node image {}: preloading {} images",
        images.node,
        preload.len()
    ));
    let name = format!("oci-e2e-node-preload-{}", std::process::id());
    let result = async {
        let tar = build.join("preload.tar");
        let tar_arg = tar.display().to_string();
        let mut save = vec!["save"];
        if cli == "podman" {
            save.extend(["-m", "--format", "docker-archive"]);
        }
        save.extend(["-o", &tar_arg]);
        save.extend(preload.iter().map(|i| i.local.as_str()));
        task.update("saving the images");
        run_cli(cli, &save, "save the images to preload").await?;
        let volume = format!("{}:/preload:ro", build.display());
        run_cli(
            cli,
            &[
                "run", "-d", "--privileged", "--name", &name, "-v", &volume, "--entrypoint",
                "sleep", base, "infinity",
            ],
            "start the preload container",
        )
        .await?;
        let mut script = String::from(
            "set -e\n\
             containerd >/tmp/containerd.log 2>&1 &\n\
             for i in $(seq 200); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done\n\
             ctr -n k8s.io images import --no-unpack --all-platforms --digests /preload/preload.tar\n",
        );
        for image in &preload {
            script.push_str(&format!(
                "ctr -n k8s.io images tag --force {local} {reference}\n\
                 ctr -n k8s.io images rm {local}\n\
                 ctr -n k8s.io images label {reference} io.cri-containerd.pinned=pinned\n",
                local = image.local,
                reference = image.reference
            ));
        }
        // A multi-image archive also leaves `import-<date>@<digest>` names.
        script.push_str(
            "ctr -n k8s.io images ls -q | grep '^import-' | xargs -r ctr -n k8s.io images rm\n",
        );
        // What podman's --tmpfs would copy up must be empty again.
        script.push_str("pkill -x containerd; while pgrep -x containerd >/dev/null; do sleep 0.1; done\nrm -rf /run/containerd /tmp/*\n");
        task.update("importing into containerd");
        run_cli(cli, &["exec", &name, "sh", "-c", &script], "preload into containerd").await?;
        task.update("committing");
        run_cli(
            cli,
            &[
                "commit",
                "--change",
                "ENTRYPOINT [\"/usr/local/bin/entrypoint\", \"/sbin/init\"]",
                "--change",
                "CMD []",
                "--change",
                "STOPSIGNAL SIGRTMIN+3",
                &name,
                &images.node,
            ],
            "commit the node image",
        )
        .await?;
        let _ = std::fs::remove_file(&tar);
        Ok::<(), KindError>(())
    }
    .await;
    let _ = run_cli(cli, &["rm", "-f", &name], "remove the preload container").await;
    finish(task, started, result)
}

/// Pushes the component images into the lab registry at `registry` (the
/// host's address, plain HTTP) under their mirror paths.
pub async fn push_images(
    engine: &Engine,
    images: &OfflineImages,
    registry: &str,
    progress: &Progress,
) -> Result<(), KindError> {
    let cli = engine_cli(engine).await?;
    let started = Instant::now();
    let task = progress.task(format!(
        "{} component images into the lab registry",
        images.components.len()
    ));
    for image in &images.components {
        task.update(&image.reference);
        let dest = format!("{registry}/{}", image.mirror_path());
        let result = if cli == "podman" {
            cli_push_podman(&image.local, &dest).await
        } else {
            cli_push_docker(&image.local, &dest).await
        };
        if let Err(e) = result {
            task.fail(e.to_string());
            return Err(e);
        }
    }
    task.done(format!("pushed in {:.0?}", started.elapsed()));
    Ok(())
}

async fn cli_push_podman(local: &str, dest: &str) -> Result<(), KindError> {
    let target = format!("docker://{dest}");
    run_cli(
        "podman",
        &["push", "-q", "--tls-verify=false", local, &target],
        &format!("push {dest}"),
    )
    .await
    .map(|_| ())
}

async fn cli_push_docker(local: &str, dest: &str) -> Result<(), KindError> {
    run_cli("docker", &["tag", local, dest], &format!("tag {dest}")).await?;
    let pushed = run_cli("docker", &["push", "-q", dest], &format!("push {dest}")).await;
    // Only the extra tag goes; the image stays under its local name.
    let _ = run_cli("docker", &["rmi", dest], &format!("untag {dest}")).await;
    pushed.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness_tools::versions::ARGOCD_VERSION;

    const INSTALL: &str = "\
        image: quay.io/argoproj/argocd:v3.3.10\n\
        image: public.ecr.aws/docker/library/redis:8.2.3-alpine\n\
        image: ghcr.io/dexidp/dex:v2.43.0\n";

    #[test]
    fn component_refs_follow_the_version_table_and_install_yaml() {
        let (base, images) = component_images(ARGOCD_VERSION, INSTALL).expect("images");
        let refs: Vec<&str> = images.iter().map(|i| i.reference.as_str()).collect();
        assert!(refs.contains(&"registry.k8s.io/kube-apiserver:v1.34.4"));
        assert!(refs.contains(&"registry.k8s.io/etcd:3.6.8-0"));
        assert!(refs.contains(&"registry.k8s.io/coredns/coredns:v1.12.1"));
        assert!(refs.contains(&"registry.k8s.io/pause:3.10.1"));
        assert!(refs.contains(&"quay.io/argoproj/argocd:v3.3.10"));
        assert!(refs.contains(&"public.ecr.aws/docker/library/redis:8.2.3-alpine"));
        assert!(base.starts_with("localhost/oci-e2e/kind-components:"));
        let unserved = unserved_images(INSTALL, &images);
        assert_eq!(unserved, vec!["ghcr.io/dexidp/dex:v2.43.0".to_string()]);
        let pause = images
            .iter()
            .find(|i| i.reference.starts_with("registry.k8s.io/pause:"))
            .expect("pause");
        assert_eq!(pause.mirror_path(), "pause:3.10.1");
        assert!(
            pause
                .config
                .contains(&"ENTRYPOINT [\"/pause\"]".to_string())
        );
        assert!(pause.config.contains(&"USER 65535:65535".to_string()));
    }

    #[test]
    fn an_install_yaml_without_redis_is_refused_by_name() {
        let err = component_images(ARGOCD_VERSION, "image: quay.io/argoproj/argocd:v3.3.10\n")
            .expect_err("no redis image");
        assert!(
            err.to_string()
                .contains("public.ecr.aws/docker/library/redis"),
            "{err}"
        );
    }

    #[test]
    fn keys_change_with_what_goes_into_the_image() {
        assert_ne!(
            node_image("kind-registry:5000", "v3.3.10"),
            node_image("other:5000", "v3.3.10")
        );
        // The node preloads component images: their key is part of its own.
        assert_ne!(
            node_image("kind-registry:5000", "v3.3.10"),
            node_image("kind-registry:5000", "v3.3.9")
        );
        let (a, _) = component_images("v3.3.10", INSTALL).expect("a");
        let install_b = INSTALL.replace("v3.3.10", "v3.3.9");
        let (b, _) = component_images("v3.3.9", &install_b).expect("b");
        assert_ne!(a, b);
    }
}
