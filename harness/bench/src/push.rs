//! Push benchmarks: the harness against `oras push` of the same files to
//! the same registry, small and large, and a re-push of unchanged content.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::stats::Stats;
use harness_core::progress::Progress;
use harness_oci::RegistryEndpoint;
use harness_oci::{
    ArtifactFiles, DEFAULT_LAYER_MEDIA_TYPE, PackCache, PushOutcome, RegistryClient,
    gzip_deterministic, pack, sha256_digest, tar_files,
};

/// What the push benchmarks found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushResult {
    pub small: Option<PushPair>,
    pub large: Option<PushPair>,
    /// Re-push of the large artifact, unchanged, by the harness.
    pub repush: Option<Repush>,
    /// Re-push of the large files, unchanged, by oras.
    pub oras_repush: Option<Stats>,
    /// Where the harness's packing time goes, on the large artifact.
    pub large_pack_breakdown: Option<PackBreakdown>,
}

/// The parts of reading and packing, each timed on its own.
#[derive(Debug, Clone, Serialize)]
pub struct PackBreakdown {
    /// `ArtifactFiles::from_dir`.
    pub read: Option<Stats>,
    /// `tar_files`: the uncompressed tar in memory.
    pub tar: Option<Stats>,
    /// `gzip_deterministic` of the tar (deflate level 6, miniz_oxide).
    pub gzip: Option<Stats>,
    /// Deflate level 1 of the same tar (same library), for comparison.
    pub deflate_level1: Option<Stats>,
    pub layer_bytes_level6: u64,
    pub layer_bytes_level1: u64,
    /// One `sha256_digest` of the layer. `pack` hashes the tar and the
    /// layer, and `RegistryClient::push` hashes the layer again to check it.
    pub sha256_layer: Option<Stats>,
}

/// Times each part of packing `dir`, `iterations` times.
pub fn pack_breakdown(dir: &Path, iterations: usize) -> anyhow::Result<PackBreakdown> {
    let (mut read, mut tar, mut gzip, mut sha) = (vec![], vec![], vec![], vec![]);
    let (mut fast, mut bytes6, mut bytes1) = (vec![], 0, 0);
    for _ in 0..iterations {
        let t = Instant::now();
        let files = ArtifactFiles::from_dir(dir, harness_oci::Symlinks::Keep)?;
        read.push(t.elapsed());
        let t = Instant::now();
        let tarball = tar_files(&files)?;
        tar.push(t.elapsed());
        let t = Instant::now();
        let layer = gzip_deterministic(&tarball);
        gzip.push(t.elapsed());
        bytes6 = layer.len() as u64;
        let t = Instant::now();
        bytes1 = miniz_oxide::deflate::compress_to_vec(&tarball, 1).len() as u64 + 18;
        fast.push(t.elapsed());
        let t = Instant::now();
        let _ = sha256_digest(&layer);
        sha.push(t.elapsed());
    }
    Ok(PackBreakdown {
        read: Stats::from_durations(&read),
        tar: Stats::from_durations(&tar),
        gzip: Stats::from_durations(&gzip),
        deflate_level1: Stats::from_durations(&fast),
        layer_bytes_level6: bytes6,
        layer_bytes_level1: bytes1,
        sha256_layer: Stats::from_durations(&sha),
    })
}

/// One artifact pushed by both tools.
#[derive(Debug, Clone, Serialize)]
pub struct PushPair {
    pub files: usize,
    /// Sum of the file sizes.
    pub bytes: u64,
    /// Size of the harness's gzip layer.
    pub layer_bytes: u64,
    /// Read the files, pack, upload (what a `push` step does).
    pub harness: Option<Stats>,
    /// The read-and-pack part of `harness`.
    pub harness_pack: Option<Stats>,
    pub oras: Option<Stats>,
    /// Median harness time / median oras time (below 1: the harness is faster).
    pub ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Repush {
    pub harness: Stats,
    pub blobs_uploaded: usize,
    pub blobs_skipped: usize,
    /// Every blob of every re-push was found in the registry and skipped.
    pub skipped_every_blob: bool,
    /// Layers the packer tarred and compressed during the re-pushes (0:
    /// every one came from its cache).
    pub layers_packed: u64,
}

/// A few small manifests, like a scenario fixture.
pub fn small_files() -> ArtifactFiles {
    let mut files = ArtifactFiles::default();
    files.insert(
        "configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench-config\ndata:\n  version: \"1.0.0\"\n",
    );
    files.insert(
        "service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: bench\nspec:\n  selector: {app: bench}\n  ports:\n    - port: 80\n      targetPort: 8080\n",
    );
    files.insert(
        "deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bench\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: bench}\n  template:\n    metadata:\n      labels: {app: bench}\n    spec:\n      containers:\n        - name: app\n          image: registry.example/bench:1.0.0\n          ports: [{containerPort: 8080}]\n",
    );
    files
}

/// About `total_bytes` of deterministic pseudo-random text in 1 MiB files:
/// 6 bits of entropy per byte, so gzip keeps about three quarters of it
/// (like base64 `binaryData`), and every run pushes the same bytes.
pub fn large_files(total_bytes: usize, seed: u64) -> ArtifactFiles {
    const FILE: usize = 1 << 20;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = seed;
    let mut next = || {
        // splitmix64: tiny, fast, and good enough to defeat gzip.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut files = ArtifactFiles::default();
    let count = total_bytes.div_ceil(FILE).max(1);
    for i in 0..count {
        let size = FILE.min(total_bytes - (i * FILE).min(total_bytes)).max(1);
        let mut content = Vec::with_capacity(size);
        while content.len() < size {
            let mut word = next();
            for _ in 0..10 {
                if content.len() == size {
                    break;
                }
                // A newline every 77 characters keeps it text.
                if content.len() % 77 == 76 {
                    content.push(b'\n');
                } else {
                    content.push(ALPHABET[(word & 63) as usize]);
                }
                word >>= 6;
            }
        }
        files.insert(format!("data-{i:03}.txt"), content);
    }
    files
}

/// Writes `files` under `dir` (which must exist).
pub fn write_files(dir: &Path, files: &ArtifactFiles) -> anyhow::Result<()> {
    for (path, content) in &files.files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", target.display()))?;
    }
    Ok(())
}

/// What a harness push took.
pub struct HarnessPush {
    pub total: Duration,
    pub pack: Duration,
    pub outcome: PushOutcome,
    pub layer_bytes: u64,
}

/// Whether a push may find its layer in the packer's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// The cache is emptied first: the push packs, as `oras push` always
    /// does (a first push of new content).
    Cold,
    /// As a run's push steps do: unchanged content comes from the cache.
    Cached,
}

/// Reads `dir`, packs and pushes it as `repository:tag`, as a `push` step does.
pub async fn harness_push(
    client: &RegistryClient,
    dir: &Path,
    repository: &str,
    tag: &str,
    packing: Packing,
) -> anyhow::Result<HarnessPush> {
    if packing == Packing::Cold {
        PackCache::global().clear();
    }
    let started = Instant::now();
    let files = ArtifactFiles::from_dir(dir, harness_oci::Symlinks::Keep)?;
    let packed = pack(&files, DEFAULT_LAYER_MEDIA_TYPE, &BTreeMap::new())?;
    let pack_time = started.elapsed();
    let outcome = client.push(repository, &packed, &[tag.to_string()]).await?;
    Ok(HarnessPush {
        total: started.elapsed(),
        pack: pack_time,
        outcome,
        layer_bytes: packed.layers.iter().map(|l| l.bytes.len()).sum::<usize>() as u64,
    })
}

/// `oras push` of `dir` as one tar+gzip layer with files at its root and
/// the empty config: the artifact the harness builds.
pub async fn oras_push(
    oras: &Path,
    dir: &Path,
    registry: &RegistryEndpoint,
    repository: &str,
    tag: &str,
) -> anyhow::Result<Duration> {
    let mut cmd = tokio::process::Command::new(oras);
    cmd.current_dir(dir)
        .arg("push")
        .arg(format!("{}/{repository}:{tag}", registry.address))
        .args([
            "--config",
            "/dev/null:application/vnd.oci.empty.v1+json",
            ".:application/vnd.oci.image.layer.v1.tar+gzip",
        ])
        .kill_on_drop(true);
    if registry.plain_http {
        cmd.arg("--plain-http");
    }
    if registry.insecure_tls {
        cmd.arg("--insecure");
    }
    let started = Instant::now();
    let output = cmd
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", oras.display()))?;
    let took = started.elapsed();
    if !output.status.success() {
        anyhow::bail!(
            "oras push failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(took)
}

/// Where the push benchmarks work.
pub struct PushBench<'a> {
    pub client: &'a RegistryClient,
    pub registry: &'a RegistryEndpoint,
    pub oras: Option<&'a Path>,
    pub iterations: usize,
    /// Makes repository names unique to this bench run.
    pub prefix: String,
    pub progress: &'a Progress,
    pub problems: &'a mut Vec<String>,
}

impl PushBench<'_> {
    /// Pushes `files` `iterations` times with each tool, each time to a
    /// new repository so neither can skip a blob, and the harness packing
    /// each time (its cache emptied first).
    pub async fn pair(&mut self, label: &str, files: &ArtifactFiles) -> anyhow::Result<PushPair> {
        let dir = tempfile::Builder::new()
            .prefix("oci-e2e-bench-")
            .tempdir()?;
        write_files(dir.path(), files)?;
        let bytes = files.files.values().map(|c| c.len() as u64).sum();
        let (mut harness, mut harness_pack, mut oras) = (vec![], vec![], vec![]);
        let mut layer_bytes = 0;
        for i in 0..self.iterations {
            let task = self.progress.task(format!(
                "push {label}: harness {}/{}",
                i + 1,
                self.iterations
            ));
            let repo = format!("{}-{label}-harness-{i}", self.prefix);
            match harness_push(self.client, dir.path(), &repo, "v1", Packing::Cold).await {
                Ok(p) => {
                    task.done(format!(
                        "{:.2}s (pack {:.2}s), {} blob(s) uploaded",
                        p.total.as_secs_f64(),
                        p.pack.as_secs_f64(),
                        p.outcome.blobs_uploaded
                    ));
                    harness.push(p.total);
                    harness_pack.push(p.pack);
                    layer_bytes = p.layer_bytes;
                }
                Err(e) => {
                    task.fail(e.to_string());
                    self.problems.push(format!("push {label} (harness): {e:#}"));
                }
            }
            if let Some(oras_bin) = self.oras {
                let task =
                    self.progress
                        .task(format!("push {label}: oras {}/{}", i + 1, self.iterations));
                let repo = format!("{}-{label}-oras-{i}", self.prefix);
                match oras_push(oras_bin, dir.path(), self.registry, &repo, "v1").await {
                    Ok(t) => {
                        task.done(format!("{:.2}s", t.as_secs_f64()));
                        oras.push(t);
                    }
                    Err(e) => {
                        task.fail(e.to_string());
                        self.problems.push(format!("push {label} (oras): {e:#}"));
                    }
                }
            }
        }
        let harness = Stats::from_durations(&harness);
        let oras = Stats::from_durations(&oras);
        let ratio = match (&harness, &oras) {
            (Some(h), Some(o)) if o.median > 0.0 => Some(h.median / o.median),
            _ => None,
        };
        Ok(PushPair {
            files: files.files.len(),
            bytes,
            layer_bytes,
            harness,
            harness_pack: Stats::from_durations(&harness_pack),
            oras,
            ratio,
        })
    }

    /// Pushes `files` once, then `iterations` more times unchanged to the
    /// same repository: every blob should be skipped and the layer come
    /// from the packer's cache. Then the same for oras.
    pub async fn repush(
        &mut self,
        files: &ArtifactFiles,
    ) -> anyhow::Result<(Option<Repush>, Option<Stats>, Option<PackBreakdown>)> {
        let dir = tempfile::Builder::new()
            .prefix("oci-e2e-bench-")
            .tempdir()?;
        write_files(dir.path(), files)?;
        let repo = format!("{}-repush", self.prefix);
        let task = self.progress.task("re-push: first push (not measured)");
        harness_push(self.client, dir.path(), &repo, "v1", Packing::Cold).await?;
        task.done("");
        let packed_before = PackCache::global().stats().misses;
        let (mut times, mut uploaded, mut skipped) = (vec![], 0, 0);
        for i in 0..self.iterations {
            let task = self.progress.task(format!(
                "re-push unchanged: harness {}/{}",
                i + 1,
                self.iterations
            ));
            let p = harness_push(self.client, dir.path(), &repo, "v1", Packing::Cached).await?;
            task.done(format!(
                "{:.2}s, {} uploaded, {} skipped",
                p.total.as_secs_f64(),
                p.outcome.blobs_uploaded,
                p.outcome.blobs_skipped
            ));
            times.push(p.total);
            uploaded += p.outcome.blobs_uploaded;
            skipped += p.outcome.blobs_skipped;
        }
        let layers_packed = PackCache::global().stats().misses - packed_before;
        let repush = Stats::from_durations(&times).map(|harness| Repush {
            harness,
            blobs_uploaded: uploaded,
            blobs_skipped: skipped,
            skipped_every_blob: uploaded == 0 && skipped > 0,
            layers_packed,
        });
        let mut oras_times = vec![];
        if let Some(oras_bin) = self.oras {
            let repo = format!("{}-repush-oras", self.prefix);
            oras_push(oras_bin, dir.path(), self.registry, &repo, "v1").await?;
            for i in 0..self.iterations {
                let task = self.progress.task(format!(
                    "re-push unchanged: oras {}/{}",
                    i + 1,
                    self.iterations
                ));
                match oras_push(oras_bin, dir.path(), self.registry, &repo, "v1").await {
                    Ok(t) => {
                        task.done(format!("{:.2}s", t.as_secs_f64()));
                        oras_times.push(t);
                    }
                    Err(e) => {
                        task.fail(e.to_string());
                        self.problems.push(format!("re-push (oras): {e:#}"));
                    }
                }
            }
        }
        let task = self.progress.task("pack breakdown (large)");
        let breakdown = match pack_breakdown(dir.path(), self.iterations) {
            Ok(b) => {
                task.done("");
                Some(b)
            }
            Err(e) => {
                task.fail(e.to_string());
                self.problems.push(format!("pack breakdown: {e:#}"));
                None
            }
        };
        Ok((repush, Stats::from_durations(&oras_times), breakdown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_files_are_deterministic_sized_and_not_compressible_to_nothing() {
        let a = large_files(3 << 20, 7);
        let b = large_files(3 << 20, 7);
        assert_eq!(a, b);
        assert_eq!(a.files.len(), 3);
        let total: usize = a.files.values().map(Vec::len).sum();
        assert_eq!(total, 3 << 20);
        let one = &a.files["data-000.txt"];
        let gz = harness_oci::gzip_deterministic(one);
        // 6 bits of entropy per byte: gzip keeps well over half.
        assert!(gz.len() > one.len() / 2, "{} of {}", gz.len(), one.len());
        assert_ne!(large_files(1 << 20, 8), large_files(1 << 20, 7));
    }
}
