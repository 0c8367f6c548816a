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

use crate::diagnostic::Diagnostic;
use crate::duration::parse_duration;
use crate::file::{
    AppFile, AppRefFile, DurationText, ExpectFile, HelmFile, IndexFile, Located, PushFile,
    RefreshFile, ScenarioFile, StepFile, SyncPolicyFile, TagFile,
};
use crate::file::{ApplyFile, FaultFile, FileValue, LayerFile, SymlinksFile};
use crate::file::{AttachFile, ReferrersFile, SignFile, SignatureKeyFile, VerifyFile};
use crate::names;
use crate::plan::*;
use crate::template::{self, VarRef};

mod app;
mod apply;
mod expect;
mod fault;
mod push;
mod sign;
mod tag;

/// Load and validate one scenario file.
pub fn load_file(path: &Path) -> Result<Scenario, Vec<Diagnostic>> {
    let loaded = load_one(path);
    match loaded.scenario {
        Some(scenario) if loaded.diagnostics.is_empty() => Ok(scenario),
        _ => Err(loaded.diagnostics),
    }
}

/// Load and validate one scenario from its text; `path` names the file in
/// diagnostics and is the base for the relative paths the file names
/// (`directory:`, `file:`, keys). What [`load_file`] does after reading.
pub fn load_source(path: &Path, source: &str) -> Result<Scenario, Vec<Diagnostic>> {
    let loaded = load_text(path, source.to_string());
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
    load_text(path, source)
}

fn load_text(path: &Path, source: String) -> LoadedFile {
    // A scenario may carry a CRD to `apply:`, as deep as any.
    let parsed = crate::yaml::on_deep_stack(|| {
        let options = serde_saphyr::options! {
            // YAML 1.2 booleans: `no` is a string, not false.
            strict_booleans: true,
            reject_unsupported_tags: true,
            with_snippet: false,
        };
        serde_saphyr::from_str_with_options::<ScenarioFile>(&source, options)
    });
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
    /// app -> its destination namespace, as written.
    app_namespaces: BTreeMap<String, String>,
    /// AppProjects earlier `apply` steps create, by name as written.
    projects: BTreeSet<String>,
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
        // Lines as YAML counts them (`\r\n`, `\n`, a lone `\r`), like the parser.
        let line = before.matches('\n').count() + before.matches('\r').count()
            - before.matches("\r\n").count()
            + 1;
        let line_start = before.rfind(['\r', '\n']).map_or(0, |n| n + 1);
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

        let argocd = file.argocd.as_ref().and_then(|c| self.argo_constraint(c));
        Scenario {
            name: file.name.value().clone(),
            description: file.description.clone(),
            labels: file.labels.iter().map(|l| l.value().clone()).collect(),
            timeout,
            argocd,
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
        let operations = body.operations();
        match operations.len() {
            1 => {}
            0 => {
                self.error(
                    step.location(),
                    format!(
                        "this step has no operation: give exactly one of {}",
                        crate::file::STEP_KINDS.join(", ")
                    ),
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
        let when = body
            .when
            .as_ref()
            .and_then(|w| self.argo_constraint(&w.value().argocd))
            .map(|argocd| When { argocd });
        let action = self.action(body, scope, definitions, timeout)?;
        Some(Step {
            name: body.name.clone(),
            when,
            action,
            location: self.location(step.location()),
        })
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

    /// `argocd:` of a scenario or a step's `when`.
    fn argo_constraint(&mut self, text: &Located<String>) -> Option<ArgoConstraint> {
        match ArgoConstraint::parse(text.value()) {
            Ok(constraint) => Some(constraint),
            Err(problem) => {
                self.error(text.location(), format!("`argocd`: {problem}"));
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
impl Loader<'_> {}

/// Gives an entry's loader closure its parameter types.
fn loader_of<F, P, L>(load: L) -> L
where
    L: FnOnce(&mut Loader<'_>, &Located<F>, &mut Scope, &Definitions, Duration) -> P,
{
    load
}

/// The loader's dispatch from the list of step kinds (`kinds.rs`): the
/// one present key's loader builds the step's plan.
macro_rules! step_dispatch {
    ($( $(#[doc = $doc:literal])* $key:ident : $file:ty as $schema:literal => $variant:ident($plan:ty) by $load:expr ;)*) => {
        impl Loader<'_> {
            fn action(
                &mut self,
                body: &StepFile,
                scope: &mut Scope,
                definitions: &Definitions,
                timeout: Duration,
            ) -> Option<Action> {
                $(
                    if let Some(file) = &body.$key {
                        let load = loader_of::<$file, $plan, _>($load);
                        return Some(Action::$variant(load(self, file, scope, definitions, timeout)));
                    }
                )*
                None
            }
        }
    };
}

with_step_kinds!(step_dispatch);
