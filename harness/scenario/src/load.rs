//! Scenario files -> validated plans, with every problem reported at its
//! `file:line:column`.
//!
//! Structural problems (unknown key, missing key, wrong type, unknown enum
//! value, bad YAML) come from serde-saphyr and stop at the first one; all
//! other checks run over the whole file and are reported together.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_saphyr::MessageFormatter;

use super::diagnostic::Diagnostic;
use super::duration::parse_duration;
use super::file::{
    AppFile, AppRefFile, DurationText, ExpectFile, HelmFile, IndexFile, Located, PushFile,
    RefreshFile, ScenarioFile, StepFile, SyncPolicyFile, TagFile,
};
use super::file::{AttachFile, ReferrersFile, SignFile, SignatureKeyFile, VerifyFile};
use super::names;
use super::plan::*;
use super::template::{self, VarRef};

/// Load and validate one scenario file.
pub fn load_file(path: &Path) -> Result<Scenario, Vec<Diagnostic>> {
    let loaded = load_one(path);
    match loaded.scenario {
        Some(scenario) if loaded.diagnostics.is_empty() => Ok(scenario),
        _ => Err(loaded.diagnostics),
    }
}

/// Load every scenario under `paths` (files, and directories searched
/// recursively for `*.yaml` / `*.yml`, in sorted order). Scenario names must
/// be unique across all of them.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Scenario>, Vec<Diagnostic>> {
    let run = load_run(paths);
    if run.diagnostics.is_empty() {
        Ok(run.scenarios)
    } else {
        Err(run.diagnostics)
    }
}

/// Everything loading a set of paths found.
pub(crate) struct LoadedRun {
    pub files: Vec<PathBuf>,
    pub scenarios: Vec<Scenario>,
    pub diagnostics: Vec<Diagnostic>,
}

pub(crate) fn load_run(paths: &[PathBuf]) -> LoadedRun {
    let (files, mut diagnostics) = scenario_files(paths);
    let mut scenarios = Vec::new();
    // name -> the file that used it first
    let mut names_seen: HashMap<String, PathBuf> = HashMap::new();
    for file in &files {
        let loaded = load_one(file);
        let mut file_diagnostics = loaded.diagnostics;
        if let Some((name, location)) = &loaded.name {
            match names_seen.get(name) {
                Some(first) => file_diagnostics.push(Diagnostic::at(
                    location.clone(),
                    &loaded.source,
                    name.chars().count(),
                    format!(
                        "scenario name `{name}` is already used by {}: names must be unique in a run, rename one of them",
                        first.display()
                    ),
                )),
                None => {
                    names_seen.insert(name.clone(), file.clone());
                }
            }
        }
        file_diagnostics.sort_by_key(|d| d.location.as_ref().map(|l| (l.line, l.column)));
        if file_diagnostics.is_empty() {
            scenarios.extend(loaded.scenario);
        }
        diagnostics.extend(file_diagnostics);
    }
    LoadedRun {
        files,
        scenarios,
        diagnostics,
    }
}

/// The files named by `paths`, directories expanded; problems with the paths
/// themselves come back as diagnostics.
fn scenario_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diagnostics = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                diagnostics.push(Diagnostic::without_location(format!(
                    "{} does not exist: give a scenario file or a directory of them",
                    path.display()
                )))
            }
            Err(error) => diagnostics.push(Diagnostic::without_location(format!(
                "cannot read {}: {error}",
                path.display()
            ))),
            Ok(metadata) if metadata.is_dir() => {
                let before = files.len();
                if let Err(error) = collect_yaml(path, &mut files) {
                    diagnostics.push(Diagnostic::without_location(format!(
                        "cannot list {}: {error}",
                        path.display()
                    )));
                } else if files.len() == before {
                    diagnostics.push(Diagnostic::without_location(format!(
                        "no scenario files (*.yaml, *.yml) in {}",
                        path.display()
                    )));
                }
            }
            Ok(_) => files.push(path.clone()),
        }
    }
    // The same file named twice (`scenarios/ scenarios/a.yaml`) runs once.
    let mut seen = BTreeSet::new();
    files.retain(|file| seen.insert(std::fs::canonicalize(file).unwrap_or_else(|_| file.clone())));
    (files, diagnostics)
}

fn collect_yaml(directory: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(directory)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        // Symlinks to files count; symlinked directories are not followed
        // (no loops to guard against).
        let is_real_dir = std::fs::symlink_metadata(&entry)?.is_dir();
        if is_real_dir {
            collect_yaml(&entry, files)?;
        } else if entry.is_file()
            && matches!(
                entry.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            )
        {
            files.push(entry);
        }
    }
    Ok(())
}

/// One file's outcome: the plan when it parsed (even with later errors, to
/// keep the name for the duplicate check), and every problem found.
struct LoadedFile {
    scenario: Option<Scenario>,
    name: Option<(String, Location)>,
    source: String,
    diagnostics: Vec<Diagnostic>,
}

fn load_one(path: &Path) -> LoadedFile {
    let source = match std::fs::read_to_string(path) {
        Ok(source) => source,
        Err(error) => {
            return LoadedFile {
                scenario: None,
                name: None,
                source: String::new(),
                diagnostics: vec![Diagnostic::without_location(format!(
                    "cannot read {}: {error}",
                    path.display()
                ))],
            };
        }
    };
    let options = serde_saphyr::options! {
        // YAML 1.2 booleans: `no` is a string, not false.
        strict_booleans: true,
        reject_unsupported_tags: true,
        with_snippet: false,
    };
    let parsed = serde_saphyr::from_str_with_options::<ScenarioFile>(&source, options);
    let file = match parsed {
        Ok(file) => file,
        Err(error) => {
            let diagnostic = yaml_error(path, &source, &error);
            return LoadedFile {
                scenario: None,
                name: None,
                source,
                diagnostics: vec![diagnostic],
            };
        }
    };
    let mut loader = Loader {
        file: path,
        source: &source,
        diagnostics: Vec::new(),
    };
    let scenario = loader.scenario(&file);
    let name = Some((
        file.name.value().clone(),
        loader.location(file.name.location()),
    ));
    let mut diagnostics = loader.diagnostics;
    diagnostics.sort_by_key(|d| d.location.as_ref().map(|l| (l.line, l.column)));
    LoadedFile {
        scenario: Some(scenario),
        name,
        source,
        diagnostics,
    }
}

/// A serde-saphyr error as a diagnostic, with wording meant for scenario authors.
fn yaml_error(path: &Path, source: &str, error: &serde_saphyr::Error) -> Diagnostic {
    let inner = error.without_snippet();
    // Messages may quote the input: keep control characters out of the terminal.
    let raw: String = serde_saphyr::DefaultMessageFormatter
        .format_message(inner)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if matches!(inner, serde_saphyr::Error::Eof { .. }) && is_blank_yaml(source) {
        let location = Location {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
        };
        return Diagnostic::at(
            location,
            source,
            1,
            "the file is empty: a scenario needs at least `name:` and `steps:`",
        );
    }
    let message = if matches!(inner, serde_saphyr::Error::MultipleDocuments { .. }) {
        "a scenario file holds one YAML document: move each document after a `---` to a file of its own".to_string()
    } else {
        match raw.as_str() {
            "expected mapping start" => "expected a map of `key: value` entries here".to_string(),
            "expected string scalar" => "expected a string here; multi-line text such as a file's content is written as a block: `key: |` and the text indented below".to_string(),
            "expected sequence start" => {
                "expected a list here (`[a, b]` or `- a` lines)".to_string()
            }
            _ => raw.replace(", set DuplicateKeyPolicy in Options if acceptable", ""),
        }
    };
    match error.location() {
        Some(at) if at.line() > 0 => {
            let location = Location {
                file: path.to_path_buf(),
                line: at.line() as u32,
                column: at.column() as u32,
            };
            Diagnostic::at(location, source, at.span().len() as usize, message)
        }
        _ => Diagnostic::without_location(format!("{}: {message}", path.display())),
    }
}

fn is_blank_yaml(source: &str) -> bool {
    source.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    })
}

/// What is defined at a point of the file: bound digests, created apps,
/// pushed repositories.
#[derive(Default)]
struct Scope {
    digests: BTreeSet<String>,
    apps: BTreeSet<String>,
    repositories: BTreeSet<String>,
}

/// Things defined anywhere in the file, for "defined later" hints.
#[derive(Default)]
struct Definitions {
    /// `as` name -> line of its push step.
    bindings: BTreeMap<String, u32>,
    /// app name -> line of its first `app` step.
    apps: BTreeMap<String, u32>,
    /// Destination namespaces of all `app` steps (the runner maps these).
    namespaces: BTreeSet<String>,
}

struct Loader<'a> {
    file: &'a Path,
    source: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Loader<'_> {
    fn location(&self, at: &serde_saphyr::Location) -> Location {
        Location {
            file: self.file.to_path_buf(),
            line: at.line() as u32,
            column: at.column() as u32,
        }
    }

    fn error(&mut self, at: &serde_saphyr::Location, message: impl Into<String>) {
        let location = self.location(at);
        let diagnostic = Diagnostic::at(location, self.source, at.span().len() as usize, message);
        self.diagnostics.push(diagnostic);
    }

    /// An error at a byte offset of the source (a variable inside a string).
    fn error_at_offset(&mut self, offset: usize, len_chars: usize, message: impl Into<String>) {
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        let column = self.source[line_start..offset].chars().count() + 1;
        let location = Location {
            file: self.file.to_path_buf(),
            line: line as u32,
            column: column as u32,
        };
        self.diagnostics
            .push(Diagnostic::at(location, self.source, len_chars, message));
    }

    /// Byte offset in the source where `needle` (the `nth` occurrence within
    /// the value's text) is written, if the value is written verbatim.
    fn find_in_value(
        &self,
        at: &serde_saphyr::Location,
        needle: &str,
        nth: usize,
    ) -> Option<usize> {
        let span = at.span();
        let start = span.byte_offset()? as usize;
        let end = start
            .checked_add(span.byte_len()? as usize)?
            .min(self.source.len());
        let written = self.source.get(start..end)?;
        written
            .match_indices(needle)
            .nth(nth)
            .map(|(index, _)| start + index)
    }

    /// Byte offset of the first `needle` at or after the location (for values
    /// without a usable span, such as maps).
    fn find_after(&self, at: &serde_saphyr::Location, needle: &str) -> Option<usize> {
        let start = at.span().byte_offset()? as usize;
        self.source
            .get(start..)?
            .find(needle)
            .map(|index| start + index)
    }

    fn scenario(&mut self, file: &ScenarioFile) -> Scenario {
        if let Some(problem) = names::scenario_name_problem(file.name.value(), "scenario name") {
            self.error(file.name.location(), problem);
        }
        for label in &file.labels {
            if let Some(problem) = names::scenario_name_problem(label.value(), "label") {
                self.error(label.location(), problem);
            }
        }
        let timeout = file
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t))
            .unwrap_or(DEFAULT_SCENARIO_TIMEOUT);
        if file.steps.value().is_empty() {
            self.error(
                file.steps.location(),
                "`steps` is empty: a scenario needs at least one step",
            );
        }

        let definitions = self.definitions(file);
        let mut scope = Scope::default();
        let steps = file
            .steps
            .value()
            .iter()
            .filter_map(|step| self.step(step, &mut scope, &definitions, timeout))
            .collect();
        // `finally` sees everything the steps define, then its own earlier steps.
        let finally = file
            .finally
            .iter()
            .filter_map(|step| self.step(step, &mut scope, &definitions, timeout))
            .collect();

        Scenario {
            name: file.name.value().clone(),
            description: file.description.clone(),
            labels: file.labels.iter().map(|l| l.value().clone()).collect(),
            timeout,
            steps,
            finally,
            file: self.file.to_path_buf(),
        }
    }

    /// First pass: every `as` and app name, with duplicate `as` reported.
    fn definitions(&mut self, file: &ScenarioFile) -> Definitions {
        let mut definitions = Definitions::default();
        for step in file.steps.value().iter().chain(&file.finally) {
            let push_binds = step.value().push.iter().flat_map(|push| {
                let push = push.value();
                let variants = push.index.iter().flat_map(|index| {
                    index
                        .value()
                        .manifests
                        .value()
                        .iter()
                        .filter_map(|variant| variant.value().bind.as_ref())
                });
                push.bind.iter().chain(variants)
            });
            for bind in push_binds {
                let line = bind.location().line() as u32;
                match definitions.bindings.get(bind.value()) {
                    Some(first) => self.error(
                        bind.location(),
                        format!(
                            "`as: {}` is already used by the push step at line {first}: each `as` name binds one digest, pick another",
                            bind.value()
                        ),
                    ),
                    None => {
                        definitions.bindings.insert(bind.value().clone(), line);
                    }
                }
            }
            if let Some(bind) = step
                .value()
                .attach
                .as_ref()
                .and_then(|attach| attach.value().bind.as_ref())
            {
                let line = bind.location().line() as u32;
                match definitions.bindings.get(bind.value()) {
                    Some(first) => self.error(
                        bind.location(),
                        format!(
                            "`as: {}` is already used by the step at line {first}: each `as` name binds one digest, pick another",
                            bind.value()
                        ),
                    ),
                    None => {
                        definitions.bindings.insert(bind.value().clone(), line);
                    }
                }
            }
            if let Some(app) = &step.value().app {
                let app = app.value();
                let line = app.name.location().line() as u32;
                definitions
                    .apps
                    .entry(app.name.value().clone())
                    .or_insert(line);
                let namespace = app.namespace.as_ref().unwrap_or(&app.name);
                definitions.namespaces.insert(namespace.value().clone());
            }
        }
        definitions
    }

    fn step(
        &mut self,
        step: &Located<StepFile>,
        scope: &mut Scope,
        definitions: &Definitions,
        timeout: Duration,
    ) -> Option<Step> {
        let body = step.value();
        let operations: Vec<&str> = [
            ("push", body.push.is_some()),
            ("tag", body.tag.is_some()),
            ("app", body.app.is_some()),
            ("sync", body.sync.is_some()),
            ("refresh", body.refresh.is_some()),
            ("expect", body.expect.is_some()),
            ("delete", body.delete.is_some()),
            ("sign", body.sign.is_some()),
            ("verify", body.verify.is_some()),
            ("attach", body.attach.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect();
        match operations.len() {
            1 => {}
            0 => {
                self.error(
                    step.location(),
                    "this step has no operation: give exactly one of push, tag, app, sync, refresh, expect, delete, sign, verify, attach",
                );
                return None;
            }
            _ => {
                self.error(
                    step.location(),
                    format!(
                        "this step has {} operation keys ({}): a step has exactly one, split it into {} steps",
                        operations.len(),
                        operations.join(", "),
                        operations.len()
                    ),
                );
                return None;
            }
        }
        let action = if let Some(push) = &body.push {
            Action::Push(self.push(push, scope, definitions))
        } else if let Some(tag) = &body.tag {
            Action::Tag(self.tag(tag, scope, definitions))
        } else if let Some(app) = &body.app {
            Action::App(self.app(app, scope, definitions))
        } else if let Some(sync) = &body.sync {
            Action::Sync(SyncApp {
                app: self.app_ref(sync.value(), scope, definitions),
            })
        } else if let Some(refresh) = &body.refresh {
            Action::Refresh(self.refresh(refresh.value(), scope, definitions))
        } else if let Some(expect) = &body.expect {
            Action::Expect(self.expect(expect, scope, definitions, timeout))
        } else if let Some(delete) = &body.delete {
            Action::Delete(Delete {
                app: self.app_ref(delete.value(), scope, definitions),
            })
        } else if let Some(sign) = &body.sign {
            Action::Sign(self.sign(sign, scope, definitions))
        } else if let Some(verify) = &body.verify {
            Action::Verify(self.verify(verify, scope, definitions))
        } else if let Some(attach) = &body.attach {
            Action::Attach(self.attach(attach, scope, definitions))
        } else {
            return None;
        };
        Some(Step {
            name: body.name.clone(),
            action,
            location: self.location(step.location()),
        })
    }

    fn push(
        &mut self,
        push: &Located<PushFile>,
        scope: &mut Scope,
        definitions: &Definitions,
    ) -> Push {
        let body = push.value();
        let content_keys: Vec<&str> = [
            ("source", body.source.is_some()),
            ("files", body.files.is_some()),
            ("chart", body.chart.is_some()),
            ("index", body.index.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect();
        let content = match (&body.source, &body.files) {
            _ if content_keys.len() > 1 && (body.chart.is_some() || body.index.is_some()) => {
                self.error(
                    push.location(),
                    format!(
                        "{} together: a push packs one kind of content, keep one of `source`, `files`, `chart`, `index`",
                        content_keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                    ),
                );
                PushContent::Files(BTreeMap::new())
            }
            (None, None) if body.chart.is_some() || body.index.is_some() => {
                if let Some(chart) = &body.chart {
                    self.chart(chart, body)
                } else if let Some(index) = &body.index {
                    PushContent::Index(self.index(index, scope, definitions))
                } else {
                    PushContent::Files(BTreeMap::new())
                }
            }
            (Some(source), None) => PushContent::Directory(self.source_directory(source)),
            (None, Some(files)) => PushContent::Files(self.inline_files(files, scope, definitions)),
            (Some(_), Some(files)) => {
                self.error(
                    files.location(),
                    "`source` and `files` together: give one of them (a directory to pack, or the files inline)",
                );
                PushContent::Files(BTreeMap::new())
            }
            (None, None) => {
                self.error(
                    push.location(),
                    "push needs `source:` (a directory, relative to this file), `files:` (inline contents), `chart:` (a Helm chart directory) or `index:` (an image index of variants)",
                );
                PushContent::Files(BTreeMap::new())
            }
        };
        let repository = self.repository(&body.repository);
        let mut tags: Vec<Template> = body
            .tags
            .iter()
            .map(|tag| self.tag_template(tag, scope, definitions))
            .collect();
        if let PushContent::Chart(chart) = &content {
            // `helm push` tags the chart version; `tags:` adds more.
            let version_tag = Template(chart.version.replace('+', "_"));
            if !tags.contains(&version_tag) {
                tags.insert(0, version_tag);
            }
        }
        if let PushContent::Index(variants) = &content {
            for bind in variants.iter().filter_map(|v| v.bind.as_ref()) {
                scope.digests.insert(bind.clone());
            }
        }
        let bind = body.bind.as_ref().map(|bind| {
            if !template::is_binding_name(bind.value()) {
                self.error(
                    bind.location(),
                    format!(
                        "`as: {}` cannot name a variable: start with a letter, then letters, digits, `_` or `-` (and not `lab`), like `v1`",
                        bind.value()
                    ),
                );
            }
            bind.value().clone()
        });
        let layer_media_type = match &body.layer_media_type {
            Some(media_type) => {
                let text = media_type.value();
                let well_formed = text.split_once('/').is_some_and(|(kind, subtype)| {
                    !kind.is_empty()
                        && !subtype.is_empty()
                        && !text.chars().any(char::is_whitespace)
                });
                if !well_formed {
                    self.error(
                        media_type.location(),
                        format!("`{text}` is not a media type: write `type/subtype`, like `{DEFAULT_LAYER_MEDIA_TYPE}`"),
                    );
                }
                text.clone()
            }
            None => DEFAULT_LAYER_MEDIA_TYPE.to_string(),
        };
        let annotations = body
            .annotations
            .iter()
            .map(|(key, value)| (key.clone(), self.template(value, scope, definitions)))
            .collect();
        // Bound after the step: a push cannot refer to its own digest.
        if let Some(bind) = &bind {
            scope.digests.insert(bind.clone());
        }
        scope.repositories.insert(body.repository.value().clone());
        Push {
            content,
            repository,
            tags,
            bind,
            layer_media_type,
            annotations,
        }
    }

    /// `chart:`: a directory with a valid Chart.yaml (read now, so that a
    /// bad chart is reported before any lab starts).
    fn chart(&mut self, chart: &Located<String>, body: &PushFile) -> PushContent {
        if let Some(media_type) = &body.layer_media_type {
            self.error(
                media_type.location(),
                "`layerMediaType` does not apply to `chart`: a chart's layer is always `application/vnd.cncf.helm.chart.content.v1.tar+gzip`",
            );
        }
        let directory = self.source_directory(chart);
        if !directory.is_dir() {
            return PushContent::Files(BTreeMap::new());
        }
        match harness_artifact::helm::read_chart_metadata(&directory) {
            Ok(metadata) => PushContent::Chart(ChartSource {
                directory,
                name: metadata.name,
                version: metadata.version,
            }),
            Err(error) => {
                self.error(chart.location(), error.to_string());
                PushContent::Files(BTreeMap::new())
            }
        }
    }

    /// `index:`: each variant is `source` or `files`, plus platform,
    /// annotations and its own `as`.
    fn index(
        &mut self,
        index: &Located<IndexFile>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> Vec<IndexVariant> {
        let manifests = &index.value().manifests;
        if manifests.value().is_empty() {
            self.error(
                manifests.location(),
                "`manifests` is empty: an index bundles at least one variant (`- source: ...` or `- files: ...`)",
            );
        }
        let mut variants = Vec::new();
        for variant in manifests.value() {
            let body = variant.value();
            let content = match (&body.source, &body.files) {
                (Some(source), None) => PushContent::Directory(self.source_directory(source)),
                (None, Some(files)) => {
                    PushContent::Files(self.inline_files(files, scope, definitions))
                }
                (Some(_), Some(files)) => {
                    self.error(
                        files.location(),
                        "`source` and `files` together: give one of them for this variant",
                    );
                    PushContent::Files(BTreeMap::new())
                }
                (None, None) => {
                    self.error(
                        variant.location(),
                        "this variant needs `source:` (a directory) or `files:` (inline contents)",
                    );
                    PushContent::Files(BTreeMap::new())
                }
            };
            let platform = body.platform.as_ref().map(|platform| {
                let p = platform.value();
                for (key, value) in [("os", &p.os), ("architecture", &p.architecture)] {
                    let text = value.value();
                    if text.is_empty()
                        || !text
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    {
                        self.error(
                            value.location(),
                            format!("platform `{key}: {text}` must be a Go name in lowercase letters and digits, like `linux` / `amd64`"),
                        );
                    }
                }
                Platform {
                    os: p.os.value().clone(),
                    architecture: p.architecture.value().clone(),
                    variant: p.variant.as_ref().map(|v| v.value().clone()),
                }
            });
            let bind = body.bind.as_ref().map(|bind| {
                if !template::is_binding_name(bind.value()) {
                    self.error(
                        bind.location(),
                        format!(
                            "`as: {}` cannot name a variable: start with a letter, then letters, digits, `_` or `-` (and not `lab`), like `amd64`",
                            bind.value()
                        ),
                    );
                }
                bind.value().clone()
            });
            let annotations = body
                .annotations
                .iter()
                .map(|(key, value)| (key.clone(), self.template(value, scope, definitions)))
                .collect();
            variants.push(IndexVariant {
                content,
                platform,
                annotations,
                bind,
            });
        }
        variants
    }

    /// `helm:` of an app.
    fn helm(
        &mut self,
        helm: &Located<HelmFile>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> HelmOptions {
        let body = helm.value();
        let release_name = body.release_name.as_ref().map(|name| {
            if let Some(problem) = names::dns_label_problem(name.value(), "release name") {
                self.error(name.location(), problem);
            }
            name.value().clone()
        });
        let values = body.values.as_ref().and_then(|values| match values.value() {
            serde_json::Value::String(text) => {
                let located = Located(serde_saphyr::Spanned {
                    value: text.clone(),
                    referenced: *values.location(),
                    defined: *values.location(),
                });
                Some(HelmValues::Text(self.template(&located, scope, definitions)))
            }
            serde_json::Value::Object(_) => {
                self.json_templates(values, values.value(), scope, definitions);
                Some(HelmValues::Object(values.value().clone()))
            }
            _ => {
                self.error(
                    values.location(),
                    "`values` is a YAML document as a string (`values: |`) or a map (`values: {key: value}`)",
                );
                None
            }
        });
        let parameters = body
            .parameters
            .iter()
            .map(|parameter| {
                let p = parameter.value();
                if p.name.value().trim().is_empty() {
                    self.error(
                        p.name.location(),
                        "parameter `name` is empty: give a values path like `config.greeting`",
                    );
                }
                HelmParameter {
                    name: p.name.value().clone(),
                    value: self.template(&p.value, scope, definitions),
                    force_string: p.force_string,
                }
            })
            .collect();
        HelmOptions {
            release_name,
            values,
            parameters,
        }
    }

    fn source_directory(&mut self, source: &Located<String>) -> PathBuf {
        let base = self.file.parent().unwrap_or(Path::new(""));
        let directory = base.join(source.value());
        match std::fs::metadata(&directory) {
            Ok(metadata) if metadata.is_dir() => match std::fs::read_dir(&directory).map(|mut e| e.next().is_none()) {
                Ok(true) => self.error(
                    source.location(),
                    format!("source directory {} is empty: put the manifests to push in it", directory.display()),
                ),
                Ok(false) => {}
                Err(error) => self.error(source.location(), format!("cannot list {}: {error}", directory.display())),
            },
            Ok(_) => self.error(
                source.location(),
                format!("source {} is not a directory: `source` names a directory to pack", directory.display()),
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => self.error(
                source.location(),
                format!(
                    "source directory {} does not exist (`source` is relative to the scenario file's directory)",
                    directory.display()
                ),
            ),
            Err(error) => self.error(source.location(), format!("cannot read {}: {error}", directory.display())),
        }
        directory
    }

    fn inline_files(
        &mut self,
        files: &Located<BTreeMap<String, Located<String>>>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> BTreeMap<String, Template> {
        if files.value().is_empty() {
            self.error(
                files.location(),
                "`files` is empty: give at least one `name.yaml: content` entry",
            );
        }
        let mut out = BTreeMap::new();
        for (name, content) in files.value() {
            let path = Path::new(name);
            let plain = !name.is_empty()
                && !name.contains('\\')
                && path
                    .components()
                    .all(|component| matches!(component, Component::Normal(_)));
            if !plain {
                let message = format!(
                    "file name `{name}` in `files` must be a relative path inside the artifact, without `..` or a leading `/`, like `configmap.yaml`"
                );
                match self.find_after(files.location(), name) {
                    Some(offset) => self.error_at_offset(offset, name.chars().count(), message),
                    None => self.error(files.location(), message),
                }
            }
            out.insert(name.clone(), self.template(content, scope, definitions));
        }
        out
    }

    fn repository(&mut self, repository: &Located<String>) -> String {
        if let Some(problem) = names::repository_problem(repository.value()) {
            self.error(repository.location(), problem);
        }
        repository.value().clone()
    }

    fn tag_template(
        &mut self,
        tag: &Located<String>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> Template {
        let template = self.template(tag, scope, definitions);
        if let Some(literal) = template.as_literal()
            && let Some(problem) = names::tag_problem(&literal)
        {
            self.error(tag.location(), problem);
        }
        template
    }

    fn tag(&mut self, tag: &Located<TagFile>, scope: &Scope, definitions: &Definitions) -> Tag {
        let body = tag.value();
        let repository = self.repository(&body.repository);
        if !scope.repositories.contains(&repository) {
            self.error(
                body.repository.location(),
                format!(
                    "no earlier push step in this scenario pushes repository `{repository}`: `tag` can only point at manifests this scenario pushed"
                ),
            );
        }
        let from = self.template(&body.from, scope, definitions);
        if let Some(literal) = from.as_literal()
            && !names::is_digest(&literal)
            && let Some(problem) = names::tag_problem(&literal)
        {
            self.error(
                body.from.location(),
                format!("`from` is neither a tag nor a `sha256:` digest: {problem}"),
            );
        }
        if body.tags.value().is_empty() {
            self.error(
                body.tags.location(),
                "`tags` is empty: give the tags to set, like `[stable]`",
            );
        }
        let tags = body
            .tags
            .value()
            .iter()
            .map(|t| self.tag_template(t, scope, definitions))
            .collect();
        Tag {
            repository,
            from,
            tags,
        }
    }

    fn app(&mut self, app: &Located<AppFile>, scope: &mut Scope, definitions: &Definitions) -> App {
        let body = app.value();
        let name = body.name.value().clone();
        if let Some(problem) = names::dns_label_problem(&name, "app name") {
            self.error(body.name.location(), problem);
        }
        let repository = self.repository(&body.repository);
        let revision = self.template(&body.revision, scope, definitions);
        let revision_text = body.revision.value();
        if revision_text.trim().is_empty() {
            self.error(body.revision.location(), "`revision` is empty: give a tag, a digest like `${v1.digest}`, or a semver constraint like `^1.0.0`");
        } else if names::is_bare_hex_digest(revision_text) {
            self.error(
                body.revision.location(),
                format!("revision looks like a digest without its algorithm: write `sha256:{revision_text}`"),
            );
        } else if revision_text.starts_with("sha256:") && !names::is_digest(revision_text) {
            self.error(
                body.revision.location(),
                "a digest is `sha256:` and 64 lowercase hex digits; `${NAME.digest}` gives the digest of a push step with `as: NAME`",
            );
        }
        let path = match &body.path {
            Some(path) => {
                let text = path.value();
                let relative = !text.is_empty()
                    && Path::new(text)
                        .components()
                        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
                if !relative {
                    self.error(
                        path.location(),
                        format!("path `{text}` must be a directory inside the artifact, like `.` or `manifests`"),
                    );
                }
                text.clone()
            }
            None => ".".to_string(),
        };
        let namespace = match &body.namespace {
            Some(namespace) => {
                if let Some(problem) = names::dns_label_problem(namespace.value(), "namespace") {
                    self.error(namespace.location(), problem);
                }
                namespace.value().clone()
            }
            None => name.clone(),
        };
        let sync = match body.sync {
            Some(SyncPolicyFile::Manual) => SyncPolicy::Manual,
            Some(SyncPolicyFile::Auto) | None => SyncPolicy::Auto,
        };
        let helm = body
            .helm
            .as_ref()
            .map(|helm| self.helm(helm, scope, definitions));
        let require_signature = body
            .require_signature
            .as_ref()
            .map(|key| self.required_signature(key, &revision));
        scope.apps.insert(name.clone());
        App {
            name,
            repository,
            revision,
            path,
            namespace,
            sync,
            helm,
            require_signature,
        }
    }

    fn refresh(
        &mut self,
        refresh: &RefreshFile,
        scope: &Scope,
        definitions: &Definitions,
    ) -> Refresh {
        Refresh {
            app: self.known_app(&refresh.app, scope, definitions),
            hard: refresh.hard,
        }
    }

    fn app_ref(
        &mut self,
        reference: &AppRefFile,
        scope: &Scope,
        definitions: &Definitions,
    ) -> String {
        self.known_app(&reference.app, scope, definitions)
    }

    /// An app name used by sync/refresh/expect/delete: an earlier `app` step
    /// must create it (this is what catches typos).
    fn known_app(
        &mut self,
        app: &Located<String>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> String {
        let name = app.value();
        if !scope.apps.contains(name) {
            let hint = if let Some(line) = definitions.apps.get(name) {
                format!("it is created by the app step at line {line}, after this step")
            } else if let Some(close) = scope
                .apps
                .iter()
                .find(|known| names::edit_distance(known, name) <= 2)
            {
                format!("did you mean `{close}`?")
            } else if scope.apps.is_empty() {
                "add an `app` step before this one".to_string()
            } else {
                let known: Vec<String> = scope.apps.iter().map(|a| format!("`{a}`")).collect();
                format!("apps so far: {}", known.join(", "))
            };
            self.error(
                app.location(),
                format!("no earlier `app` step creates app `{name}`: {hint}"),
            );
        }
        name.clone()
    }

    fn expect(
        &mut self,
        expect: &Located<ExpectFile>,
        scope: &Scope,
        definitions: &Definitions,
        timeout: Duration,
    ) -> Expect {
        let body = expect.value();
        let timing = self.timing(body, timeout);
        if let Some(referrers) = &body.referrers {
            let target = self.referrers_expectation(expect, referrers, scope, definitions);
            return Expect { target, timing };
        }
        let app_keys: Vec<&str> = [
            ("sync", body.sync.is_some()),
            ("health", body.health.is_some()),
            ("revision", body.revision.is_some()),
            ("operation", body.operation.is_some()),
            ("condition", body.condition.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect();
        let resource_keys: Vec<&str> = [
            ("matches", body.matches.is_some()),
            ("absent", body.absent.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect();
        let target = match (&body.app, &body.resource) {
            (Some(app), None) => {
                if !resource_keys.is_empty() {
                    self.error(
                        expect.location(),
                        format!(
                            "{} to a `resource`, not an `app`: check the objects in a separate expect with `resource:`",
                            keys_apply(&resource_keys)
                        ),
                    );
                }
                if app_keys.is_empty() {
                    self.error(
                        expect.location(),
                        format!(
                            "this expect on app `{}` checks nothing: add sync, health, revision, operation or condition",
                            app.value()
                        ),
                    );
                }
                ExpectTarget::App(AppExpectation {
                    app: self.known_app(app, scope, definitions),
                    sync: body.sync.as_ref().map(|s| *s.value()),
                    health: body.health.as_ref().map(|h| *h.value()),
                    revision: body.revision.as_ref().map(|revision| {
                        let template = self.template(revision, scope, definitions);
                        if let Some(literal) = template.as_literal()
                            && !names::is_digest(&literal)
                        {
                            // status.sync.revision of an OCI source is always the resolved digest.
                            self.error(
                                revision.location(),
                                format!(
                                    "`revision: {literal}` can never match: an OCI app's status.sync.revision is the resolved digest, write `${{NAME.digest}}` (NAME from a push step's `as:`)"
                                ),
                            );
                        }
                        template
                    }),
                    operation: body.operation.as_ref().map(|o| *o.value()),
                    condition: body.condition.as_ref().map(|condition| {
                        let condition = condition.value();
                        if condition.kind.value().trim().is_empty() {
                            self.error(
                                condition.kind.location(),
                                "condition `type` is empty: give one like `ComparisonError`",
                            );
                        }
                        ConditionExpectation {
                            r#type: condition.kind.value().clone(),
                            message: condition
                                .message
                                .as_ref()
                                .map(|m| self.template(m, scope, definitions)),
                        }
                    }),
                })
            }
            (None, Some(resource)) => {
                if !app_keys.is_empty() {
                    self.error(
                        expect.location(),
                        format!(
                            "{} to an `app`, not a `resource`: check the Application in a separate expect with `app:`",
                            keys_apply(&app_keys)
                        ),
                    );
                }
                ExpectTarget::Resource(self.resource_expectation(
                    body,
                    resource,
                    scope,
                    definitions,
                ))
            }
            (Some(_), Some(resource)) => {
                self.error(
                    expect.location(),
                    "this expect has both `app` and `resource`: an expect checks one thing, split it into two",
                );
                ExpectTarget::Resource(self.resource_expectation(
                    body,
                    resource,
                    scope,
                    definitions,
                ))
            }
            (None, None) => {
                self.error(
                    expect.location(),
                    "expect needs `app:` (an Application's status), `resource:` (a Kubernetes object) or `referrers:` (what is attached to a manifest)",
                );
                ExpectTarget::Resource(ResourceExpectation {
                    resource: ResourceRef {
                        api_version: String::new(),
                        kind: String::new(),
                        namespace: None,
                        name: String::new(),
                    },
                    check: ResourceCheck::Exists,
                })
            }
        };
        Expect { target, timing }
    }

    fn resource_expectation(
        &mut self,
        body: &ExpectFile,
        resource: &Located<super::file::ResourceRefFile>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> ResourceExpectation {
        let reference = resource.value();
        for (key, value) in [
            ("apiVersion", &reference.api_version),
            ("kind", &reference.kind),
            ("name", &reference.name),
        ] {
            if value.value().trim().is_empty() {
                self.error(value.location(), format!("resource `{key}` is empty"));
            }
        }
        if let Some(namespace) = &reference.namespace {
            let name = namespace.value();
            if let Some(problem) = names::dns_label_problem(name, "namespace") {
                self.error(namespace.location(), problem);
            } else if !definitions.namespaces.contains(name)
                && let Some(close) = definitions
                    .namespaces
                    .iter()
                    .find(|known| names::edit_distance(known, name) <= 2)
            {
                // Only app namespaces are made unique per run; a near miss
                // would be looked up as written and, e.g., always be absent.
                self.error(
                    namespace.location(),
                    format!(
                        "namespace `{name}` is no app's destination namespace: did you mean `{close}`? (namespaces other than the apps' are used as written)"
                    ),
                );
            }
        }
        let absent = body.absent.as_ref().is_some_and(|a| *a.value());
        let check = match (&body.matches, absent) {
            (Some(_), true) => {
                if let Some(absent) = &body.absent {
                    self.error(
                        absent.location(),
                        "`absent: true` with `matches`: an absent object has nothing to match, drop one of them",
                    );
                }
                ResourceCheck::Absent
            }
            (None, true) => ResourceCheck::Absent,
            (Some(matches), false) => {
                if !matches.value().is_object() {
                    self.error(
                        matches.location(),
                        "`matches` must be a map of fields to compare, like `{data: {version: \"1.0.0\"}}`",
                    );
                }
                self.json_templates(matches, matches.value(), scope, definitions);
                ResourceCheck::Matches(matches.value().clone())
            }
            (None, false) => ResourceCheck::Exists,
        };
        ResourceExpectation {
            resource: ResourceRef {
                api_version: reference.api_version.value().clone(),
                kind: reference.kind.value().clone(),
                namespace: reference.namespace.as_ref().map(|n| n.value().clone()),
                name: reference.name.value().clone(),
            },
            check,
        }
    }

    fn timing(&mut self, body: &ExpectFile, timeout: Duration) -> Timing {
        if let (Some(_), Some(hold_for)) = (&body.within, &body.hold_for) {
            self.error(
                hold_for.location(),
                "`within` and `for` together: `within` waits until the condition holds, `for` checks it holds all along; keep one",
            );
        }
        let (key, text, timing): (&str, _, fn(Duration) -> Timing) =
            match (&body.within, &body.hold_for) {
                (_, Some(hold_for)) if body.within.is_none() => ("for", hold_for, Timing::For),
                (Some(within), _) => ("within", within, Timing::Within),
                _ => return Timing::Within(DEFAULT_WITHIN),
            };
        let Some(duration) = self.duration(text) else {
            return timing(DEFAULT_WITHIN);
        };
        if duration > timeout {
            self.error(
                text.location(),
                format!(
                    "`{key}: {}` is longer than the scenario's timeout ({}): shorten it or raise `timeout:`",
                    text.value().0,
                    humantime::format_duration(timeout)
                ),
            );
        }
        timing(duration)
    }

    fn duration(&mut self, text: &Located<DurationText>) -> Option<Duration> {
        match parse_duration(&text.value().0) {
            Ok(duration) => Some(duration),
            Err(problem) => {
                self.error(text.location(), problem);
                None
            }
        }
    }

    /// A string that may hold variables: each must be well formed and defined here.
    fn template(
        &mut self,
        text: &Located<String>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> Template {
        let value = text.value();
        for (start, end, message) in self.template_problems(value, scope, definitions) {
            let needle = &value[start..end];
            let nth = value[..start].matches(needle).count();
            match self.find_in_value(text.location(), needle, nth) {
                Some(offset) => self.error_at_offset(offset, needle.chars().count(), message),
                None => self.error(text.location(), message),
            }
        }
        Template(value.clone())
    }

    /// Templates in the string leaves of `matches`.
    fn json_templates(
        &mut self,
        at: &Located<serde_json::Value>,
        value: &serde_json::Value,
        scope: &Scope,
        definitions: &Definitions,
    ) {
        match value {
            serde_json::Value::String(text) => {
                for (start, end, message) in self.template_problems(text, scope, definitions) {
                    let needle = &text[start..end];
                    match self.find_after(at.location(), needle) {
                        Some(offset) => {
                            self.error_at_offset(offset, needle.chars().count(), message)
                        }
                        None => self.error(at.location(), message),
                    }
                }
            }
            serde_json::Value::Array(items) => items
                .iter()
                .for_each(|item| self.json_templates(at, item, scope, definitions)),
            serde_json::Value::Object(fields) => fields
                .values()
                .for_each(|item| self.json_templates(at, item, scope, definitions)),
            _ => {}
        }
    }

    /// (start, end, message) for every malformed or undefined variable in `text`.
    fn template_problems(
        &self,
        text: &str,
        scope: &Scope,
        definitions: &Definitions,
    ) -> Vec<(usize, usize, String)> {
        let (segments, problems) = template::parse(text);
        let mut found: Vec<(usize, usize, String)> = problems
            .iter()
            .map(|problem| {
                let (start, end) = problem.range();
                (start, end, problem.message(text))
            })
            .collect();
        for segment in segments {
            let template::Segment::Var {
                var: VarRef::Digest(name),
                start,
                end,
            } = segment
            else {
                continue;
            };
            if scope.digests.contains(&name) {
                continue;
            }
            let hint = match definitions.bindings.get(&name) {
                Some(line) => {
                    format!("the push step with `as: {name}` (line {line}) comes after this use")
                }
                None if scope.digests.is_empty() => {
                    format!("no earlier push step has `as: {name}`")
                }
                None => {
                    let known: Vec<String> =
                        scope.digests.iter().map(|d| format!("`{d}`")).collect();
                    format!(
                        "no earlier push step has `as: {name}` (defined so far: {})",
                        known.join(", ")
                    )
                }
            };
            found.push((
                start,
                end,
                format!("undefined variable `{}`: {hint}", &text[start..end]),
            ));
        }
        found.sort_by_key(|(start, _, _)| *start);
        found
    }
}

/// "`a` applies" / "`a`, `b` apply".
fn keys_apply(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    let verb = if keys.len() == 1 { "applies" } else { "apply" };
    format!("{} {verb}", quoted.join(", "))
}

/// Signing, verifying, attaching and the referrers expectation.
impl Loader<'_> {
    /// A repository that an earlier push created (sign, verify, attach and
    /// referrers act on what this scenario pushed).
    fn pushed_repository(
        &mut self,
        repository: &Located<String>,
        scope: &Scope,
        key: &str,
    ) -> String {
        let name = self.repository(repository);
        if !scope.repositories.contains(&name) {
            self.error(
                repository.location(),
                format!(
                    "no earlier push step in this scenario pushes repository `{name}`: `{key}` acts on manifests this scenario pushed"
                ),
            );
        }
        name
    }

    /// A manifest digest: `${NAME.digest}` or `sha256:<64 hex>`, never a tag.
    fn digest_template(
        &mut self,
        text: &Located<String>,
        scope: &Scope,
        definitions: &Definitions,
        what: &str,
    ) -> Template {
        let template = self.template(text, scope, definitions);
        if let Some(literal) = template.as_literal()
            && !names::is_digest(&literal)
        {
            self.error(
                text.location(),
                format!(
                    "`{literal}` is not a manifest digest: {what} takes `sha256:` and 64 hex digits, usually `${{NAME.digest}}` from a push step's `as:` (tags move, digests do not)"
                ),
            );
        }
        template
    }

    fn key_name(&mut self, key: &Located<String>) -> String {
        if let Some(problem) = names::scenario_name_problem(key.value(), "key name") {
            self.error(key.location(), problem);
        }
        key.value().clone()
    }

    /// A cosign public key file, read and parsed now so a bad one is
    /// reported before any lab starts.
    fn public_key_file(&mut self, path: &Located<String>) -> SignatureKey {
        let base = self.file.parent().unwrap_or(Path::new(""));
        let resolved = base.join(path.value());
        let pem = match std::fs::read_to_string(&resolved) {
            Ok(pem) => {
                if let Err(problem) = check_public_key_pem(&pem) {
                    self.error(
                        path.location(),
                        format!("{}: {problem}", resolved.display()),
                    );
                }
                pem
            }
            Err(error) => {
                self.error(
                    path.location(),
                    format!(
                        "cannot read public key {} ({error}); `publicKey` is relative to the scenario file's directory",
                        resolved.display()
                    ),
                );
                String::new()
            }
        };
        SignatureKey::PublicKey {
            path: resolved,
            pem,
        }
    }

    fn signature_key(
        &mut self,
        at: &serde_saphyr::Location,
        key: Option<&Located<String>>,
        public_key: Option<&Located<String>>,
    ) -> SignatureKey {
        match (key, public_key) {
            (Some(key), None) => SignatureKey::Run(self.key_name(key)),
            (None, Some(path)) => self.public_key_file(path),
            (Some(key), Some(_)) => {
                self.error(
                    at,
                    "`key` and `publicKey` together: give one (a key generated for the run, or a cosign.pub file)",
                );
                SignatureKey::Run(key.value().clone())
            }
            (None, None) => {
                self.error(
                    at,
                    "give `key: NAME` (a key generated for this run) or `publicKey: path/to/cosign.pub`",
                );
                SignatureKey::Run(String::new())
            }
        }
    }

    fn required_signature(
        &mut self,
        key: &Located<SignatureKeyFile>,
        revision: &Template,
    ) -> SignatureKey {
        let body = key.value();
        if let Some(literal) = revision.as_literal()
            && !names::is_digest(&literal)
            && names::tag_problem(&literal).is_some()
        {
            self.error(
                key.location(),
                format!(
                    "`requireSignature` needs a revision that names one manifest (a tag or a digest), not `{literal}`: a constraint would let Argo CD pick a manifest nobody verified"
                ),
            );
        }
        self.signature_key(key.location(), body.key.as_ref(), body.public_key.as_ref())
    }

    fn sign(&mut self, sign: &Located<SignFile>, scope: &Scope, definitions: &Definitions) -> Sign {
        let body = sign.value();
        Sign {
            repository: self.pushed_repository(&body.repository, scope, "sign"),
            digest: self.digest_template(&body.digest, scope, definitions, "`digest`"),
            key: self.key_name(&body.key),
        }
    }

    fn verify(
        &mut self,
        verify: &Located<VerifyFile>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> Verify {
        let body = verify.value();
        Verify {
            repository: self.pushed_repository(&body.repository, scope, "verify"),
            digest: self.digest_template(&body.digest, scope, definitions, "`digest`"),
            key: self.signature_key(
                verify.location(),
                body.key.as_ref(),
                body.public_key.as_ref(),
            ),
            expect: body
                .expect
                .as_ref()
                .map_or(SignatureState::Signed, |e| *e.value()),
        }
    }

    fn media_type(&mut self, text: &Located<String>, key: &str) -> String {
        let value = text.value();
        let well_formed = value.split_once('/').is_some_and(|(kind, subtype)| {
            !kind.is_empty() && !subtype.is_empty() && !value.chars().any(char::is_whitespace)
        });
        if !well_formed {
            self.error(
                text.location(),
                format!("`{key}: {value}` is not a media type: write `type/subtype`, like `application/spdx+json`"),
            );
        }
        value.clone()
    }

    fn attach(
        &mut self,
        attach: &Located<AttachFile>,
        scope: &mut Scope,
        definitions: &Definitions,
    ) -> Attach {
        let body = attach.value();
        let repository = self.pushed_repository(&body.repository, scope, "attach");
        let subject = self.digest_template(&body.subject, scope, definitions, "`subject`");
        let artifact_type = self.media_type(&body.artifact_type, "artifactType");
        let media_type = match &body.media_type {
            Some(media_type) => self.media_type(media_type, "mediaType"),
            None => artifact_type.clone(),
        };
        let content = match (&body.source, &body.content) {
            (Some(source), None) => {
                let base = self.file.parent().unwrap_or(Path::new(""));
                let path = base.join(source.value());
                if !path.is_file() {
                    self.error(
                        source.location(),
                        format!(
                            "document {} is not a file (`source` is relative to the scenario file's directory)",
                            path.display()
                        ),
                    );
                }
                AttachContent::File(path)
            }
            (None, Some(content)) => {
                AttachContent::Inline(self.template(content, scope, definitions))
            }
            (Some(_), Some(content)) => {
                self.error(
                    content.location(),
                    "`source` and `content` together: give one (a file, or the document inline)",
                );
                AttachContent::Inline(Template(String::new()))
            }
            (None, None) => {
                self.error(
                    attach.location(),
                    "attach needs `source:` (a file, relative to this file) or `content:` (the document inline)",
                );
                AttachContent::Inline(Template(String::new()))
            }
        };
        let annotations = body
            .annotations
            .iter()
            .map(|(key, value)| (key.clone(), self.template(value, scope, definitions)))
            .collect();
        let bind = body.bind.as_ref().map(|bind| {
            if !template::is_binding_name(bind.value()) {
                self.error(
                    bind.location(),
                    format!(
                        "`as: {}` cannot name a variable: start with a letter, then letters, digits, `_` or `-` (and not `lab`), like `sbom`",
                        bind.value()
                    ),
                );
            }
            bind.value().clone()
        });
        if let Some(bind) = &bind {
            scope.digests.insert(bind.clone());
        }
        Attach {
            repository,
            subject,
            artifact_type,
            media_type,
            content,
            annotations,
            bind,
        }
    }

    fn referrers_expectation(
        &mut self,
        expect: &Located<ExpectFile>,
        referrers: &Located<ReferrersFile>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> ExpectTarget {
        let body = expect.value();
        let others: Vec<&str> = [
            ("app", body.app.is_some()),
            ("resource", body.resource.is_some()),
            ("sync", body.sync.is_some()),
            ("health", body.health.is_some()),
            ("revision", body.revision.is_some()),
            ("operation", body.operation.is_some()),
            ("condition", body.condition.is_some()),
            ("matches", body.matches.is_some()),
            ("absent", body.absent.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect();
        if !others.is_empty() {
            self.error(
                expect.location(),
                format!(
                    "this expect checks `referrers` and also has {}: an expect checks one thing, split it",
                    others.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                ),
            );
        }
        let wanted = referrers.value();
        ExpectTarget::Referrers(ReferrersExpectation {
            repository: self.pushed_repository(&wanted.repository, scope, "referrers"),
            subject: self.digest_template(&wanted.subject, scope, definitions, "`subject`"),
            artifact_type: wanted
                .artifact_type
                .as_ref()
                .map(|t| self.media_type(t, "artifactType")),
            count: *wanted.count.value(),
        })
    }
}

/// The check `harness_oci::sign::PublicKey::from_pem` makes when a `verify`
/// step runs, made here at load time so that a bad key file never reaches a
/// lab (this crate stays free of the registry client).
fn check_public_key_pem(pem: &str) -> Result<(), String> {
    use p256::pkcs8::DecodePublicKey as _;
    p256::ecdsa::VerifyingKey::from_public_key_pem(pem.trim())
        .map(|_| ())
        .map_err(|e| {
            format!(
                "not an ECDSA P-256 public key in PEM (`-----BEGIN PUBLIC KEY-----`, as in \
                 cosign.pub): {e}; make one with `cosign generate-key-pair`"
            )
        })
}
