//! The validated, typed form of a scenario file: what the runner executes.
//!
//! `load` turns YAML (with positions) into these types; nothing here knows
//! about YAML. Every step keeps the place it came from so that runtime
//! errors can still point at `file:line:column`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Default whole-scenario timeout (contract: 5m).
pub const DEFAULT_SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);
/// Default `within` of an `expect` (contract: 2m).
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(120);
/// How long Argo CD has to acknowledge each refresh of `reconciles: N`.
pub const RECONCILE_BUDGET: Duration = Duration::from_secs(60);
/// The most reconciliations one `reconciles:` may ask for.
pub const MAX_RECONCILES: u32 = 20;
/// Layer media type of a pushed artifact unless `layerMediaType` says otherwise.
pub const DEFAULT_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A place in a scenario file, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A string that may contain `${NAME.digest}` / `${lab.registry}`.
/// Every variable in it was checked at load time to be defined by then.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Template(pub String);

#[derive(Debug, Clone, serde::Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub labels: Vec<String>,
    pub timeout: Duration,
    /// `argocd:`: the releases the scenario is about (others skip it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argocd: Option<ArgoConstraint>,
    pub steps: Vec<Step>,
    pub finally: Vec<Step>,
    /// The file it was loaded from (as given, not canonicalised).
    pub file: PathBuf,
}

/// A semver constraint on the lab's Argo CD release: one range, or
/// ranges joined by `||` (either holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoConstraint {
    /// As written.
    pub text: String,
    /// The alternatives `||` separates (at least one).
    pub ranges: Vec<semver::VersionReq>,
}

impl serde::Serialize for ArgoConstraint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl ArgoConstraint {
    /// Parses `>=3.1.6`, `<3.1.6`, `>=3.1.0 <3.3.0` (Masterminds' spaces or
    /// semver's commas), `~3.1`, `^3.2`, `3.3.x`, and alternatives such as
    /// `>=3.1.6 <3.2.7 || 3.3.0`; a `v` before a version is allowed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let ranges = text
            .split("||")
            .map(|range| {
                Self::parse_range(range).map_err(|e| {
                    if text.contains("||") {
                        format!("in `{}` of `{text}`: {e}", range.trim())
                    } else {
                        e
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ArgoConstraint {
            text: text.to_string(),
            ranges,
        })
    }

    /// One range: comparators that must all hold.
    fn parse_range(text: &str) -> Result<semver::VersionReq, String> {
        // Comparators apart: `>= 3.1` is one comparator, `>=3.1 <3.3` two.
        let mut comparators: Vec<String> = Vec::new();
        let mut pending = String::new();
        for token in text.split([' ', ',']).filter(|t| !t.is_empty()) {
            pending.push_str(token);
            if token.chars().all(|c| "<>=~^".contains(c)) {
                continue;
            }
            comparators.push(std::mem::take(&mut pending));
        }
        let text = text.trim();
        if !pending.is_empty() {
            return Err(format!("`{text}` ends with `{pending}` and no version"));
        }
        if comparators.is_empty() {
            return Err("the range is empty: write e.g. `>=3.1.6`".into());
        }
        let normalised: Vec<String> = comparators
            .iter()
            .map(|c| {
                let at = c.find(|ch: char| !"<>=~^".contains(ch)).unwrap_or(c.len());
                let (op, version) = c.split_at(at);
                format!("{op}{}", version.strip_prefix('v').unwrap_or(version))
            })
            .collect();
        semver::VersionReq::parse(&normalised.join(", ")).map_err(|e| {
            format!("`{text}` is not a semver constraint ({e}): write e.g. `>=3.1.6`, `<3.3.1`, `>=3.1.0 <3.3.0` or `<3.1.6 || >=3.3.1`")
        })
    }

    /// Whether Argo CD `version` (`v3.3.10`, `3.3.10+abc`) is in range
    /// (in any of the `||` alternatives); `None` when the version is not
    /// semver (e.g. `unknown`).
    pub fn matches(&self, version: &str) -> Option<bool> {
        let bare = version.trim().trim_start_matches('v');
        let bare = bare.split('+').next().unwrap_or(bare);
        semver::Version::parse(bare)
            .ok()
            .map(|v| self.ranges.iter().any(|r| r.matches(&v)))
    }
}

/// When a step runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct When {
    pub argocd: ArgoConstraint,
}

impl Scenario {
    /// True when a step stops or starts lab components: such a scenario
    /// runs alone on its lab.
    pub fn disrupts_lab(&self) -> bool {
        self.steps
            .iter()
            .chain(&self.finally)
            .any(|step| matches!(step.action, Action::Fault(_)))
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub name: Option<String>,
    /// `when:`: the step runs only where this holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    pub action: Action,
    /// Where the step's map starts.
    pub location: Location,
}

/// `Action` from the list of step kinds (`kinds.rs`): one variant per
/// kind, holding its plan.
macro_rules! action_enum {
    ($( $(#[doc = $doc:literal])* $key:ident : $file:ty as $schema:literal => $variant:ident($plan:ty) by $load:expr ;)*) => {
        #[derive(Debug, Clone, serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        pub enum Action {
            $( $(#[doc = $doc])* $variant($plan), )*
        }

        impl Action {
            /// The operation key as written in the file (`push`, `expect`, ...).
            pub fn kind(&self) -> &'static str {
                match self {
                    $( Action::$variant(_) => stringify!($key), )*
                }
            }
        }
    };
}

with_step_kinds!(action_enum);

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Push {
    pub content: PushContent,
    /// Repository name as written (the runner maps it for isolation).
    pub repository: String,
    pub tags: Vec<Template>,
    /// `as:` — binds `${NAME.digest}`.
    pub bind: Option<String>,
    pub layer_media_type: String,
    pub annotations: BTreeMap<String, Template>,
    /// What a `source` directory's symlinks become (`keep` unless `symlinks: follow`).
    #[serde(skip_serializing_if = "is_keep")]
    pub symlinks: Symlinks,
    /// `config:` — the config blob instead of the empty one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<RawBlob>,
    /// `artifactType:` of the manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

pub use harness_artifact::Symlinks;

fn is_keep(symlinks: &Symlinks) -> bool {
    *symlinks == Symlinks::Keep
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PushContent {
    /// `source:` resolved against the scenario file's directory.
    Directory(PathBuf),
    /// `files:` — relative path inside the artifact -> content or symlink.
    Files(BTreeMap<String, InlineFile>),
    /// `chart:` — a Helm chart directory, packed as `helm package` + `helm push`.
    Chart(ChartSource),
    /// `index:` — an OCI image index of variants (each `Directory` or `Files`).
    Index(Vec<IndexVariant>),
    /// `layers:` — every layer of the manifest, in order.
    Layers(Vec<Layer>),
}

/// One file of an inline `files:` map.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum InlineFile {
    /// Content (rendered when the step runs).
    Text(Template),
    /// `{symlink: TARGET}`: a symlink entry, the target as written.
    Symlink { symlink: String },
}

/// A blob given byte for byte (`config:`, or a `content:` layer).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RawBlob {
    pub media_type: String,
    pub content: String,
}

/// One layer of a `layers:` push.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub content: LayerContent,
    pub media_type: String,
    /// The descriptor's annotations, exactly as written.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LayerContent {
    /// `source:` — a directory packed as tar+gzip.
    Directory { path: PathBuf, symlinks: Symlinks },
    /// `files:` — inline files packed as tar+gzip.
    Files(BTreeMap<String, InlineFile>),
    /// `content:` — the blob's bytes, as written.
    Raw(String),
}

/// A Helm chart directory whose `Chart.yaml` was read at load time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChartSource {
    pub directory: PathBuf,
    /// `name` in Chart.yaml (the top directory inside the chart archive).
    pub name: String,
    /// `version` in Chart.yaml (SemVer 2): the tag `helm push` sets.
    pub version: String,
    /// `repository` of each of Chart.yaml's `dependencies:`, in order, as
    /// templates: the push renders them into the packed Chart.yaml.
    #[serde(
        rename = "dependencyRepositories",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dependency_repositories: Vec<Template>,
}

/// One manifest of an image index.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexVariant {
    /// `Directory` or `Files`.
    pub content: PushContent,
    pub platform: Option<Platform>,
    pub annotations: BTreeMap<String, Template>,
    /// `as:` — binds `${NAME.digest}` to the variant's manifest digest.
    pub bind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// `spec.source.helm` of an Application.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmOptions {
    pub release_name: Option<String>,
    pub values: Option<HelmValues>,
    pub parameters: Vec<HelmParameter>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HelmValues {
    /// A YAML document as text (`helm.values`).
    Text(Template),
    /// A map (`helm.valuesObject`); string leaves may hold variables.
    Object(serde_json::Value),
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmParameter {
    pub name: String,
    pub value: Template,
    pub force_string: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Tag {
    pub repository: String,
    /// A tag or a `sha256:` digest.
    pub from: Template,
    pub tags: Vec<Template>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SyncPolicy {
    /// Automated sync with prune.
    Auto,
    Manual,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct App {
    pub name: String,
    pub repository: String,
    /// Tag, digest or semver constraint.
    pub revision: Template,
    pub path: String,
    /// Destination namespace (defaults to `name` at load time).
    pub namespace: String,
    pub sync: SyncPolicy,
    /// Helm options (`spec.source.helm`), for a chart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmOptions>,
    /// Verify the revision's cosign signature with this key before applying,
    /// and pin the Application to the verified digest.
    pub require_signature: Option<SignatureKey>,
    /// `spec.project`; `None`: `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectRef>,
    /// Sync options after `CreateNamespace=true` (which one of these may
    /// turn off), as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
    /// Merged into the spec as a JSON merge patch; string leaves may hold
    /// variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<serde_json::Value>,
}

/// The AppProject an Application belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRef {
    /// As the file names it.
    pub name: String,
    /// Created by an earlier `apply` step, so mapped to the run's name of
    /// that object; otherwise used as written (e.g. `default`).
    pub applied: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncApp {
    pub app: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Refresh {
    pub app: String,
    pub hard: bool,
}

/// An `apply` step: the documents as written (rendered at run time) and
/// what the loader learnt of each, in order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Apply {
    pub manifest: Template,
    pub objects: Vec<ApplyObject>,
    /// The file the documents came from, for `file:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

/// One object of an `apply` step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyObject {
    pub api_version: String,
    pub kind: String,
    /// As written.
    pub name: String,
    pub placement: Placement,
}

/// Where an applied object goes, and how its name is mapped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Placement {
    /// Argo CD's namespace, under a run-unique name (AppProjects, Secrets).
    ArgoCd,
    /// A destination namespace of the scenario's apps (as written; mapped
    /// like the apps' own), name as written.
    Destination(String),
}

/// A component of the lab a `fault` step can stop and start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabComponent {
    Registry,
    ArgocdRepoServer,
    ArgocdApplicationController,
    Redis,
}

impl LabComponent {
    pub const ALL: [LabComponent; 4] = [
        LabComponent::Registry,
        LabComponent::ArgocdRepoServer,
        LabComponent::ArgocdApplicationController,
        LabComponent::Redis,
    ];

    /// As written in a scenario, and as the local lab names its process.
    pub fn as_str(self) -> &'static str {
        match self {
            LabComponent::Registry => "registry",
            LabComponent::ArgocdRepoServer => "argocd-repo-server",
            LabComponent::ArgocdApplicationController => "argocd-application-controller",
            LabComponent::Redis => "redis",
        }
    }

    pub fn parse(text: &str) -> Option<LabComponent> {
        LabComponent::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for LabComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a `fault` step does to its component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultAction {
    Stop,
    Start,
    Restart,
}

impl FaultAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultAction::Stop => "stop",
            FaultAction::Start => "start",
            FaultAction::Restart => "restart",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Fault {
    pub action: FaultAction,
    pub component: LabComponent,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Delete {
    pub app: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Timing {
    /// Eventually, within this long.
    Within(Duration),
    /// Holds during the whole window.
    For(Duration),
    /// Holds now and through the next N reconciliations of an
    /// Application, each requested with a refresh and acknowledged by
    /// Argo CD.
    Reconciles(Reconciles),
}

/// `reconciles: N` and the Application whose reconciliations count.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reconciles {
    pub count: u32,
    /// The app (as the file names it): the expect's own, or for a resource
    /// the app given beside it or deploying to its namespace.
    pub app: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Expect {
    pub target: ExpectTarget,
    pub timing: Timing,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ExpectTarget {
    App(AppExpectation),
    Resource(ResourceExpectation),
    Referrers(ReferrersExpectation),
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum SyncStatus {
    Synced,
    OutOfSync,
    Unknown,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum HealthStatus {
    Healthy,
    Progressing,
    Degraded,
    Suspended,
    Missing,
    Unknown,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum OperationPhase {
    Succeeded,
    Failed,
    Error,
    Running,
}

macro_rules! display_as_debug {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { fmt::Debug::fmt(self, f) }
        }
    )*};
}
display_as_debug!(SyncStatus, HealthStatus, OperationPhase);

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConditionExpectation {
    pub r#type: String,
    /// Substring of the condition's message.
    pub message: Option<Template>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AppExpectation {
    pub app: String,
    pub sync: Option<SyncStatus>,
    pub health: Option<HealthStatus>,
    pub revision: Option<Template>,
    pub operation: Option<OperationPhase>,
    pub condition: Option<ConditionExpectation>,
    /// Subset match of the whole Application object (contract rules);
    /// string leaves may hold variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<serde_json::Value>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    pub api_version: String,
    pub kind: String,
    /// As written; the runner maps scenario-owned namespaces.
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ResourceCheck {
    /// Only that it exists.
    Exists,
    /// Subset match (contract rules); string leaves may hold variables.
    Matches(serde_json::Value),
    Absent,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ResourceExpectation {
    pub resource: ResourceRef,
    pub check: ResourceCheck,
}

/// A key that signs or verifies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SignatureKey {
    /// A key generated for the scenario run, by name (created on first use).
    Run(String),
    /// A cosign public key read at load time (verifying only).
    PublicKey {
        /// As resolved against the scenario file's directory.
        path: PathBuf,
        /// The PEM text (`-----BEGIN PUBLIC KEY-----`).
        #[serde(skip)]
        pem: String,
    },
}

impl fmt::Display for SignatureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureKey::Run(name) => write!(f, "run key `{name}`"),
            SignatureKey::PublicKey { path, .. } => write!(f, "public key {}", path.display()),
        }
    }
}

/// `sign`: a cosign-compatible signature of `digest`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sign {
    pub repository: String,
    pub digest: Template,
    /// Name of a run key.
    pub key: String,
}

/// What `verify` expects to find.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum SignatureState {
    /// A signature by the key for this digest.
    Signed,
    /// No cosign signature at all.
    Unsigned,
    /// Signatures, but none by this key for this digest.
    WrongKey,
}

/// `verify`: check the cosign signatures of `digest`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verify {
    pub repository: String,
    pub digest: Template,
    pub key: SignatureKey,
    pub expect: SignatureState,
}

/// `attach`: a document attached to `subject` as an OCI 1.1 referrer.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attach {
    pub repository: String,
    pub subject: Template,
    pub artifact_type: String,
    pub media_type: String,
    pub content: AttachContent,
    pub annotations: BTreeMap<String, Template>,
    pub bind: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AttachContent {
    /// `source:` resolved against the scenario file's directory.
    File(PathBuf),
    Inline(Template),
}

/// `expect: {referrers: ...}`: how many referrers a manifest has.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrersExpectation {
    pub repository: String,
    pub subject: Template,
    pub artifact_type: Option<String>,
    pub count: u32,
}
