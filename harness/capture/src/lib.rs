//! `cargo xtask capture APP`: a self-contained scenario written from a live
//! Application with an OCI source.
//!
//! It reads the Application, pulls the manifest Argo CD synced
//! (`status.sync.revision`, else the target revision resolved now), and
//! writes a scenario that pushes the same layers (media types, annotations,
//! config, artifact type; files inline or under `--fixtures`), recreates the
//! Application's source options and sync policy, and expects what Argo CD
//! reports now: sync and health status, the revision (as the digest of the
//! push), each condition (by type and the part of its message that does not
//! name this run), and the resources' names. Names a harness run made
//! unique lose their run suffix; registry addresses and the run's
//! repositories become `${lab.argoRegistry}` and `${repo:NAME}`, so the
//! file replays on any lab. Secrets' data never enters the file.

pub mod layers;
pub mod output;
pub mod portable;

use std::path::{Path, PathBuf};

use harness_engine::argocd::{self, SCENARIO_LABEL};
use harness_engine::lab::Lab;
use harness_oci::RegistryClient;
use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::{Value, json};

use layers::{Entry, FixtureDir, Fixtures, Manifest};
use output::{AppOut, ApplyOut, ConditionOut, DeleteOut, ExpectOut, PushOut, ScenarioOut, StepOut};
use portable::Origin;

/// Why an Application could not be captured.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("Application {name} not found in namespace {namespace}{known}")]
    NoApp {
        name: String,
        namespace: String,
        known: String,
    },
    #[error("reading Application {name}: {detail}")]
    Kube { name: String, detail: String },
    #[error(
        "Application {name} has {count} sources (`spec.sources`): capture writes Applications with one OCI source (`spec.source`)"
    )]
    MultiSource { name: String, count: usize },
    #[error(
        "Application {name} has no OCI source: its repoURL is `{repo_url}` (capture needs `oci://...`)"
    )]
    NotOci { name: String, repo_url: String },
    #[error(
        "Application {name} uses {repo_url}, which is not in the lab's registry (Argo CD reaches it as oci://{argo_registry}/): capture on the lab whose registry holds it (`--lab existing --registry HOST[/PREFIX] --registry-from-argo ...`)"
    )]
    ForeignRegistry {
        name: String,
        repo_url: String,
        argo_registry: String,
    },
    #[error(
        "Application {name} targets `{revision}`, a constraint Argo CD has not resolved yet (status.sync.revision is {synced}): capture it once Argo CD reports a digest"
    )]
    Unresolved {
        name: String,
        revision: String,
        synced: String,
    },
    #[error("the registry: {0}")]
    Registry(#[from] harness_oci::OciError),
    #[error("the manifest at {reference}: {detail}")]
    Manifest { reference: String, detail: String },
    #[error("layer {} ({media_type}): {detail}", index + 1)]
    Layer {
        index: usize,
        media_type: String,
        detail: String,
    },
    #[error(
        "the artifact's files hold {bytes} bytes, more than {limit} to inline: pass `--fixtures DIR` to write them there"
    )]
    TooLarge { bytes: usize, limit: usize },
    #[error(
        "{what} is binary: pass `--fixtures DIR` to write it as a file (inline contents are text)"
    )]
    Binary { what: String },
    #[error("writing the scenario: {0}")]
    Render(String),
}

/// What to capture and where its files go.
#[derive(Debug, Clone, Default)]
pub struct CaptureOptions {
    /// The Application's name in Argo CD's namespace.
    pub app: String,
    /// The scenario's `name:` (default: the Application's, without a run
    /// suffix).
    pub name: Option<String>,
    /// Write the artifact's files under this directory instead of inline.
    pub fixtures: Option<PathBuf>,
    /// Where the scenario will be written (fixture paths are relative to
    /// it); `None`: standard output, paths relative to the current
    /// directory.
    pub output: Option<PathBuf>,
}

/// A captured scenario, ready to write.
#[derive(Debug)]
pub struct Captured {
    /// The scenario's name.
    pub name: String,
    /// The file's text.
    pub text: String,
    /// Fixture directories to write (with `--fixtures`).
    pub fixture_dirs: Vec<FixtureDir>,
    /// What could not be kept exactly (also at the top of the file).
    pub notes: Vec<String>,
}

impl Captured {
    /// Writes the fixture directories, then the scenario to `output` (or
    /// returns nothing written for standard output, the caller prints).
    pub fn write(&self, output: Option<&Path>) -> std::io::Result<()> {
        for (dir, entries) in &self.fixture_dirs {
            if dir.exists() {
                std::fs::remove_dir_all(dir)?;
            }
            std::fs::create_dir_all(dir)?;
            for (path, entry) in entries {
                let target = dir.join(path);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                match entry {
                    Entry::File(data) => std::fs::write(&target, data)?,
                    Entry::Symlink(to) => std::os::unix::fs::symlink(to, &target)?,
                }
            }
        }
        if let Some(output) = output {
            if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(output, &self.text)?;
        }
        Ok(())
    }
}

/// The run suffix the harness appends (`-[a-z0-9]{7}`), if `name` has one.
fn run_suffix(name: &str) -> Option<&str> {
    let (_, suffix) = name.rsplit_once('-')?;
    (suffix.len() == harness_engine::isolation::SUFFIX_LEN
        && suffix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
    .then_some(suffix)
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = value;
    for key in path {
        v = v.get(*key)?;
    }
    v.as_str()
}

fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A plain tag (OCI tag grammar) rather than a semver constraint.
fn is_tag(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && text.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Every string leaf of `value` as a template (see [`Origin::template`]).
fn portable_json(value: &Value, origin: &Origin) -> Value {
    match value {
        Value::String(s) => Value::String(origin.template(s)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| portable_json(v, origin)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), portable_json(v, origin)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A Chart.yaml dependency, as the chart's config records it.
#[derive(Debug, serde::Deserialize)]
struct ChartDependency {
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    repository: String,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ChartConfig {
    #[serde(default)]
    dependencies: Vec<ChartDependency>,
}

/// Turns manifests of the lab's registry into push steps.
struct PushCapture<'a> {
    registry: &'a RegistryClient,
    origin: &'a Origin,
    fixtures: Option<Fixtures<'a>>,
    notes: &'a mut Vec<String>,
    fixture_dirs: Vec<FixtureDir>,
}

impl PushCapture<'_> {
    /// The push of manifest `digest` of `in_lab` (written as `repository`),
    /// tagged with the tags that point at it (and `target` if it is a tag),
    /// and a Helm chart's dependencies.
    async fn push(
        &mut self,
        in_lab: &str,
        repository: &str,
        digest: &str,
        target: &str,
        bind: Option<String>,
    ) -> Result<(PushOut, Vec<ChartDependency>), CaptureError> {
        let pulled = self.registry.pull(in_lab, digest).await?;
        let reference = format!("{in_lab}@{digest}");
        let manifest: Manifest =
            serde_json::from_slice(&pulled.manifest).map_err(|e| CaptureError::Manifest {
                reference: reference.clone(),
                detail: format!("not an image manifest: {e}"),
            })?;
        if manifest.layers.is_empty() {
            return Err(CaptureError::Manifest {
                reference,
                detail: format!(
                    "it has no layers ({}): capture writes image manifests, not indexes",
                    manifest.media_type.as_deref().unwrap_or("no media type")
                ),
            });
        }

        // Tags that point at it now (and the target, if it is a tag).
        let mut tags = Vec::new();
        for tag in self.registry.list_tags(in_lab).await? {
            if self.registry.resolve(in_lab, &tag).await.ok().as_deref() == Some(digest) {
                tags.push(tag);
            }
        }
        if is_tag(target) && !tags.iter().any(|t| t == target) {
            self.notes.push(format!(
                "tag {target} of {repository} no longer points at {digest}: the push tags it anyway, as Argo CD saw it"
            ));
            tags.insert(0, target.to_string());
        }
        if tags.is_empty() && !is_digest(target) {
            return Err(CaptureError::Manifest {
                reference,
                detail: format!(
                    "no tag of {in_lab} points at it, so the target revision `{target}` cannot be replayed"
                ),
            });
        }

        let mut bodies = Vec::with_capacity(manifest.layers.len());
        for (index, (media_type, bytes)) in pulled.layers.iter().enumerate() {
            bodies.push(layers::read_layer(index, media_type, bytes, self.notes)?);
        }
        let (layers_out, dirs) = layers::scenario_layers(
            &manifest,
            bodies,
            self.origin,
            self.fixtures.as_ref(),
            self.notes,
        )?;
        self.fixture_dirs.extend(dirs);
        let (config, artifact_type) = layers::scenario_config(&manifest, &pulled.config)?;
        if let Some(config) = &config
            && self.origin.template(&config.content) != config.content
        {
            self.notes.push(format!(
                "the config of {repository} names the captured lab's registry and is kept byte for byte (`config.content` takes no variables); Argo CD reads what it needs from the layers"
            ));
        }
        let dependencies = match &manifest.config {
            Some(c) if c.media_type == harness_oci::helm::HELM_CONFIG_MEDIA_TYPE => {
                serde_json::from_slice::<ChartConfig>(&pulled.config)
                    .unwrap_or_default()
                    .dependencies
            }
            _ => Vec::new(),
        };
        Ok((
            PushOut {
                repository: repository.to_string(),
                tags,
                bind,
                artifact_type,
                config,
                annotations: manifest.annotations.clone(),
                layers: layers_out,
            },
            dependencies,
        ))
    }
}

/// Capture Application `opts.app` of `lab`.
pub async fn capture(lab: &dyn Lab, opts: &CaptureOptions) -> Result<Captured, CaptureError> {
    let namespace = lab.argocd_namespace().to_string();
    let apps: Api<DynamicObject> =
        Api::namespaced_with(lab.kube(), &namespace, &argocd::application_resource());
    let kube_err = |e: kube::Error| CaptureError::Kube {
        name: opts.app.clone(),
        detail: e.to_string(),
    };
    let Some(object) = apps.get_opt(&opts.app).await.map_err(kube_err)? else {
        let names: Vec<String> = apps
            .list(&Default::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|a| a.metadata.name)
                    .collect()
            })
            .unwrap_or_default();
        let known = if names.is_empty() {
            ": there are no Applications there".to_string()
        } else {
            format!(" (there: {})", names.join(", "))
        };
        return Err(CaptureError::NoApp {
            name: opts.app.clone(),
            namespace,
            known,
        });
    };
    let app = serde_json::to_value(&object).map_err(|e| CaptureError::Kube {
        name: opts.app.clone(),
        detail: e.to_string(),
    })?;
    let spec = app.get("spec").cloned().unwrap_or(Value::Null);
    if let Some(sources) = spec.get("sources").and_then(Value::as_array)
        && !sources.is_empty()
    {
        return Err(CaptureError::MultiSource {
            name: opts.app.clone(),
            count: sources.len(),
        });
    }
    let source = spec.get("source").cloned().unwrap_or(Value::Null);
    let repo_url = str_at(&source, &["repoURL"])
        .unwrap_or_default()
        .to_string();
    let Some(oci_path) = repo_url.strip_prefix("oci://") else {
        return Err(CaptureError::NotOci {
            name: opts.app.clone(),
            repo_url,
        });
    };
    let argo_registry = lab.registry_for_argo().trim_end_matches('/').to_string();
    let Some(repo_in_lab) = oci_path
        .strip_prefix(&format!("{argo_registry}/"))
        .map(str::to_string)
    else {
        return Err(CaptureError::ForeignRegistry {
            name: opts.app.clone(),
            repo_url,
            argo_registry,
        });
    };

    // A harness run's names: `<name>-<suffix>`, repositories under
    // `e2e-<run>/<scenario>-<suffix>/`.
    let made_by_harness = object
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(SCENARIO_LABEL));
    let suffix = made_by_harness
        .then(|| run_suffix(&opts.app))
        .flatten()
        .map(str::to_string);
    let base = |name: &str| -> String {
        match &suffix {
            Some(s) => name
                .strip_suffix(&format!("-{s}"))
                .unwrap_or(name)
                .to_string(),
            None => name.to_string(),
        }
    };
    let components: Vec<&str> = repo_in_lab.split('/').collect();
    let (run_prefix, repository) =
        if made_by_harness && components.len() >= 3 && components[0].starts_with("e2e-") {
            (Some(components[..2].join("/")), components[2..].join("/"))
        } else {
            (None, repo_in_lab.clone())
        };
    let destination = str_at(&spec, &["destination", "namespace"])
        .unwrap_or_default()
        .to_string();
    let project = str_at(&spec, &["project"]).unwrap_or("default").to_string();
    let origin = Origin {
        argo_registry: argo_registry.clone(),
        registry: lab.registry().address.trim_end_matches('/').to_string(),
        run_prefix: run_prefix.clone(),
        run_names: if made_by_harness {
            vec![opts.app.clone(), destination.clone(), project.clone()]
        } else {
            vec![]
        },
        suffix: suffix.clone(),
    };
    let app_name = base(&opts.app);
    let mut notes: Vec<String> = Vec::new();

    // The manifest Argo CD synced.
    let status = app.get("status").cloned().unwrap_or(Value::Null);
    let target = str_at(&source, &["targetRevision"])
        .unwrap_or_default()
        .to_string();
    let synced = str_at(&status, &["sync", "revision"])
        .unwrap_or_default()
        .to_string();
    let registry = RegistryClient::new(lab.registry().clone());
    let digest = if is_digest(&synced) {
        synced.clone()
    } else if is_digest(&target) || is_tag(&target) {
        registry.resolve(&repo_in_lab, &target).await?
    } else {
        return Err(CaptureError::Unresolved {
            name: opts.app.clone(),
            revision: target,
            synced: if synced.is_empty() {
                "empty".into()
            } else {
                format!("`{synced}`")
            },
        });
    };
    let fixtures = opts.fixtures.as_ref().map(|dir| {
        let from = opts
            .output
            .as_ref()
            .and_then(|o| o.parent())
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Fixtures {
            dir: dir.as_path(),
            from_scenario: relative_path(&from, dir),
            prefix: String::new(),
        }
    });
    let bind = "captured".to_string();
    let mut pushes = PushCapture {
        registry: &registry,
        origin: &origin,
        fixtures,
        notes: &mut notes,
        fixture_dirs: Vec::new(),
    };
    let (push, dependencies) = pushes
        .push(
            &repo_in_lab,
            &repository,
            &digest,
            &target,
            Some(bind.clone()),
        )
        .await?;
    // Chart dependencies in the same registry are pushed first, as the
    // scenario that made them did (others are fetched from where they are).
    let mut steps = Vec::new();
    for dependency in dependencies {
        let Some(rest) = dependency
            .repository
            .strip_prefix(&format!("oci://{argo_registry}/"))
        else {
            pushes.notes.push(format!(
                "chart dependency {} is fetched from {}, outside the lab's registry: not captured",
                dependency.name, dependency.repository
            ));
            continue;
        };
        if !is_tag(&dependency.version) {
            pushes.notes.push(format!(
                "chart dependency {} has version `{}`, not one version: not captured (push it before the umbrella)",
                dependency.name, dependency.version
            ));
            continue;
        }
        let in_lab = format!("{}/{}", rest.trim_end_matches('/'), dependency.name);
        let name = match &run_prefix {
            Some(prefix) => in_lab
                .strip_prefix(&format!("{prefix}/"))
                .unwrap_or(&in_lab)
                .to_string(),
            None => in_lab.clone(),
        };
        let digest = registry.resolve(&in_lab, &dependency.version).await?;
        if let Some(fixtures) = pushes.fixtures.as_mut() {
            fixtures.prefix = format!("{}-", dependency.name);
        }
        let (push, _) = pushes
            .push(&in_lab, &name, &digest, &dependency.version, None)
            .await?;
        steps.push(StepOut {
            name: Some(format!("chart dependency {}", dependency.name)),
            push: Some(push),
            ..StepOut::default()
        });
    }
    let fixture_dirs = std::mem::take(&mut pushes.fixture_dirs);
    steps.push(StepOut {
        push: Some(push),
        ..StepOut::default()
    });

    // The AppProject, when it is not `default`.
    let project_out = if project == "default" {
        None
    } else {
        let projects: Api<DynamicObject> = Api::namespaced_with(
            lab.kube(),
            &namespace,
            &ApiResource {
                group: argocd::GROUP.into(),
                version: argocd::VERSION.into(),
                api_version: format!("{}/{}", argocd::GROUP, argocd::VERSION),
                kind: "AppProject".into(),
                plural: "appprojects".into(),
            },
        );
        let found = projects
            .get(&project)
            .await
            .map_err(|e| CaptureError::Kube {
                name: format!("AppProject {project}"),
                detail: e.to_string(),
            })?;
        let project_spec = found.data.get("spec").cloned().unwrap_or(json!({}));
        let document = json!({
            "apiVersion": format!("{}/{}", argocd::GROUP, argocd::VERSION),
            "kind": "AppProject",
            "metadata": {"name": base(&project)},
            "spec": portable_json(&project_spec, &origin),
        });
        let manifest =
            serde_saphyr::to_string(&document).map_err(|e| CaptureError::Render(e.to_string()))?;
        steps.push(StepOut {
            name: Some(format!("the Application's project {}", base(&project))),
            apply: Some(ApplyOut { manifest }),
            ..StepOut::default()
        });
        Some(base(&project))
    };

    // The Application: what the `app` keys say, the rest as a spec patch.
    let automated = spec.get("syncPolicy").and_then(|p| p.get("automated"));
    let auto = automated.is_some_and(|a| !a.is_null());
    let mut patch = serde_json::Map::new();
    let mut source_rest = source.as_object().cloned().unwrap_or_default();
    for key in ["repoURL", "targetRevision", "path"] {
        source_rest.remove(key);
    }
    if !source_rest.is_empty() {
        patch.insert("source".into(), Value::Object(source_rest));
    }
    let mut sync_rest = spec
        .get("syncPolicy")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    sync_rest.remove("syncOptions");
    if let Some(Value::Object(automated)) = sync_rest.remove("automated") {
        let mut automated = automated.clone();
        for key in ["prune", "selfHeal"] {
            automated.entry(key).or_insert(Value::Bool(false));
        }
        // The harness's `sync: auto` is prune + selfHeal.
        if Value::Object(automated.clone()) != json!({"prune": true, "selfHeal": true}) {
            sync_rest.insert("automated".into(), Value::Object(automated));
        }
    }
    if !sync_rest.is_empty() {
        patch.insert("syncPolicy".into(), Value::Object(sync_rest));
    }
    for (key, value) in spec.as_object().into_iter().flatten() {
        if !matches!(
            key.as_str(),
            "source" | "sources" | "destination" | "project" | "syncPolicy"
        ) {
            patch.insert(key.clone(), value.clone());
        }
    }
    let sync_options: Vec<String> = spec
        .get("syncPolicy")
        .and_then(|p| p.get("syncOptions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|o| *o != "CreateNamespace=true")
        .map(str::to_string)
        .collect();
    let path = str_at(&source, &["path"]).filter(|p| !p.is_empty() && *p != ".");
    let destination_base = base(&destination);
    steps.push(StepOut {
        app: Some(AppOut {
            name: app_name.clone(),
            repository,
            revision: if is_digest(&target) {
                format!("${{{bind}.digest}}")
            } else {
                target.clone()
            },
            path: path.map(str::to_string),
            namespace: (!destination_base.is_empty() && destination_base != app_name)
                .then_some(destination_base),
            sync: if auto { "auto" } else { "manual" },
            project: project_out,
            sync_options,
            spec: (!patch.is_empty()).then(|| portable_json(&Value::Object(patch), &origin)),
        }),
        ..StepOut::default()
    });

    // What Argo CD reports now.
    let sync_status = str_at(&status, &["sync", "status"]).map(str::to_string);
    let health = str_at(&status, &["health", "status"]).map(str::to_string);
    steps.push(StepOut {
        name: Some("what Argo CD reported when this was captured".into()),
        expect: Some(ExpectOut {
            app: app_name.clone(),
            sync: sync_status,
            health,
            revision: is_digest(&synced).then(|| format!("${{{bind}.digest}}")),
            ..ExpectOut::default()
        }),
        ..StepOut::default()
    });
    for condition in status
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(kind) = str_at(condition, &["type"]) else {
            continue;
        };
        let message = str_at(condition, &["message"]).unwrap_or_default();
        let fragment = origin.message_fragment(message);
        if fragment.is_none() && !message.is_empty() {
            notes.push(format!(
                "condition {kind}: its message names only this run (\"{message}\"), so only its type is expected"
            ));
        }
        steps.push(StepOut {
            expect: Some(ExpectOut {
                app: app_name.clone(),
                condition: Some(ConditionOut {
                    kind: kind.to_string(),
                    message: fragment,
                }),
                ..ExpectOut::default()
            }),
            ..StepOut::default()
        });
    }
    let resources: Vec<Value> = status
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let mut out = serde_json::Map::new();
            for key in ["group", "kind", "name", "status"] {
                if let Some(v) = r.get(key).and_then(Value::as_str).filter(|v| !v.is_empty()) {
                    out.insert(key.into(), Value::String(v.to_string()));
                }
            }
            Value::Object(out)
        })
        .collect();
    if !resources.is_empty() {
        steps.push(StepOut {
            name: Some("the resources Argo CD reported".into()),
            expect: Some(ExpectOut {
                app: app_name.clone(),
                matches: Some(json!({"status": {"resources": resources}})),
                ..ExpectOut::default()
            }),
            ..StepOut::default()
        });
    }

    let name = opts.name.clone().unwrap_or_else(|| app_name.clone());
    let scenario = ScenarioOut {
        name: name.clone(),
        description: format!(
            "Captured by `cargo xtask capture` from Application {namespace}/{} on a {} lab with Argo CD {}: {repo_url} @ {target}, synced revision {digest}. It pushes the same layers and expects what Argo CD reported then.",
            opts.app,
            lab.kind(),
            lab.argocd_version()
        ),
        labels: vec!["captured".into()],
        steps,
        finally: vec![StepOut {
            delete: Some(DeleteOut { app: app_name }),
            ..StepOut::default()
        }],
    };
    let mut header = vec![format!(
        "Captured from Application {} ({repo_url} @ {target}); replay: cargo xtask e2e <this file>",
        opts.app
    )];
    header.extend(notes.iter().map(|n| format!("note: {n}")));
    let text = output::render(&scenario, &header).map_err(CaptureError::Render)?;
    Ok(Captured {
        name,
        text,
        fixture_dirs,
        notes,
    })
}

/// `to` as a path relative to directory `from` (both made absolute first).
fn relative_path(from: &Path, to: &Path) -> String {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, to) = (absolute(from), absolute(to));
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to_parts[common..] {
        out.push(part);
    }
    let text = out.to_string_lossy().to_string();
    if text.is_empty() { ".".into() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_suffixes_and_revisions() {
        assert_eq!(run_suffix("demo-ab12cd3"), Some("ab12cd3"));
        assert_eq!(run_suffix("demo-app"), None);
        assert!(is_tag("v1.0.0") && is_tag("latest") && !is_tag("^1.0.0") && !is_tag(">=1 <2"));
        assert!(is_digest(&format!("sha256:{}", "a".repeat(64))));
        assert_eq!(
            relative_path(Path::new("/a/b"), Path::new("/a/c/d")),
            "../c/d"
        );
    }
}
