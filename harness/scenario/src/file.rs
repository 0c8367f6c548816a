//! Serde types that mirror a scenario file as written (format version 1,
//! docs/scenario-format.md). They keep positions (`Located`) for everything
//! a later check may need to point at; `load` validates them and builds the
//! plan. Doc comments here become the JSON Schema's descriptions.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};

use super::duration::DURATION_PATTERN;
use super::plan::{HealthStatus, OperationPhase, SignatureState, SyncStatus};

/// A value and where it was written.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Located<T>(pub serde_saphyr::Spanned<T>);

impl<T> Located<T> {
    pub fn value(&self) -> &T {
        &self.0.value
    }

    /// Where the value is used (for an alias: the `*alias`).
    pub fn location(&self) -> &serde_saphyr::Location {
        &self.0.referenced
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A duration as written (`500ms`, `90s`, `2m`, `1m30s`); parsed by `load`
/// so that a bad one is reported with its position.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct DurationText(pub String);

impl JsonSchema for DurationText {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "minLength": 2,
            "description": "A duration: digits and a unit, units from largest to smallest: `500ms`, `90s`, `2m`, `1m30s`, `1h`.",
            "examples": ["500ms", "90s", "2m", "1m30s"]
        })
    }
}

/// An operation key that is present must hold a value: `push:` with nothing
/// after it is an error at that key, not a missing operation.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// One scenario: push OCI artifacts to the lab registry, point Argo CD
/// Applications at them, and check what Argo CD syncs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "Argo CD OCI end-to-end scenario (format version 1)")]
#[schemars(rename = "Scenario")]
pub struct ScenarioFile {
    /// Scenario name: lowercase letters, digits and `-`; unique among the scenarios of a run.
    #[schemars(regex(pattern = r"^[a-z0-9-]+$"))]
    pub name: Located<String>,
    /// Free text: what the scenario shows, links to issues.
    pub description: Option<String>,
    /// Labels for `cargo xtask e2e --select LABEL` (lowercase letters, digits and `-`).
    #[serde(default)]
    pub labels: Vec<Located<String>>,
    /// Time limit for the whole scenario (steps and finally); default `5m`.
    pub timeout: Option<Located<DurationText>>,
    /// The Argo CD releases the scenario is about, a semver constraint such as `>=3.1.6`, `>=3.1.0 <3.3.0` or `<3.1.6 || >=3.3.1`: on a lab with another release it is reported skipped, with this reason.
    pub argocd: Option<Located<String>>,
    /// The steps, run in order; the first failure stops the scenario. At least one.
    #[schemars(length(min = 1))]
    pub steps: Located<Vec<Located<StepFile>>>,
    /// Steps that always run at the end, even after a failure (clean-up: `delete` the apps).
    #[serde(default)]
    pub finally: Vec<Located<StepFile>>,
}

/// `StepFile` from the list of step kinds (`kinds.rs`): the optional
/// `name` and one optional key per kind.
macro_rules! step_file {
    ($( $(#[doc = $doc:literal])* $key:ident : $file:ty as $schema:literal => $variant:ident($plan:ty) by $load:expr ;)*) => {
        /// A step: exactly one operation key (push, tag, app, sync, refresh, expect, delete, sign, verify, attach, fault, apply), plus an optional `name`.
        #[derive(Debug, Clone, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        #[schemars(extend("oneOf" = [ $( {"required": [stringify!($key)]} ),* ]))]
        #[schemars(rename = "Step")]
        pub struct StepFile {
            /// A name for the step in reports.
            pub name: Option<String>,
            /// Run the step only when this holds (`when: {argocd: "<3.1.6"}`); elsewhere it is reported skipped.
            pub when: Option<Located<WhenFile>>,
            $(
                $(#[doc = $doc])*
                #[serde(default, deserialize_with = "present")]
                #[schemars(with = $schema)]
                pub $key: Option<Located<$file>>,
            )*
        }

        impl StepFile {
            /// The operation keys this step has, in the list's order.
            pub fn operations(&self) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $( if self.$key.is_some() { keys.push(stringify!($key)); } )*
                keys
            }
        }

        /// Every step kind's key, in the list's order.
        pub const STEP_KINDS: &[&str] = &[$(stringify!($key)),*];
    };
}

with_step_kinds!(step_file);

/// When a step runs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WhenFile {
    /// A semver constraint on the lab's Argo CD release, such as `<3.1.6` or `<3.1.6 || >=3.3.1`.
    pub argocd: Located<String>,
}

/// Package files as an OCI artifact (empty config, one tar+gzip layer with the files at its root) and push it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend("oneOf" = [{"required": ["source"]}, {"required": ["files"]}, {"required": ["chart"]}, {"required": ["index"]}, {"required": ["layers"]}]))]
#[schemars(rename = "Push")]
pub struct PushFile {
    /// A directory to pack, relative to the scenario file, as `oras push` packs it (symlinks stay symlinks unless `symlinks: follow`). Exactly one of `source` / `files` / `chart` / `index` / `layers`.
    pub source: Option<Located<String>>,
    /// The files to pack, inline: path inside the artifact -> content (may hold `${...}`), or `{symlink: TARGET}` for a symlink entry. Exactly one of `source` / `files` / `chart` / `index` / `layers`.
    pub files: Option<Located<BTreeMap<String, Located<FileValue>>>>,
    /// A Helm chart directory (with `Chart.yaml`), relative to the scenario file, pushed as `helm push` does it: Helm config and chart layer, tagged with the chart version. Instead of `source` / `files`.
    pub chart: Option<Located<String>>,
    /// An OCI image index bundling variants (one manifest each), pushed after its variants. Instead of `source` / `files`.
    pub index: Option<Located<IndexFile>>,
    /// Every layer of the manifest, in order (at least one): what other clients push. Instead of `source` / `files`.
    pub layers: Option<Located<Vec<Located<LayerFile>>>>,
    /// What a `source` directory's symlinks become: `keep` (default: a symlink entry with its target as written, as `oras push` packs it) or `follow` (the target's content; links leaving the directory are refused).
    pub symlinks: Option<Located<SymlinksFile>>,
    /// The manifest's config blob instead of the canonical empty one `{}` (`content: ""` is the 0-byte config of `oras push --config /dev/null`). Not with `chart` or `index`.
    pub config: Option<Located<ConfigFile>>,
    /// The manifest's `artifactType`; default `application/vnd.unknown.artifact.v1` with the empty config, none with a `config`. Not with `chart` or `index`.
    pub artifact_type: Option<Located<String>>,
    /// Repository in the lab registry, e.g. `demo-app` (made unique per run by the runner).
    pub repository: Located<String>,
    /// Tags to push; `[]` (the default) pushes by digest only.
    #[serde(default)]
    pub tags: Vec<Located<String>>,
    /// Binds `${NAME.digest}` to the pushed manifest's digest for later steps.
    #[serde(rename = "as")]
    pub bind: Option<Located<String>>,
    /// Media type of the layer; default `application/vnd.oci.image.layer.v1.tar+gzip`. Not with `layers` (each layer has its own).
    pub layer_media_type: Option<Located<String>>,
    /// Manifest annotations, e.g. `org.opencontainers.image.version: "1.0.0"`.
    #[serde(default)]
    pub annotations: BTreeMap<String, Located<String>>,
}

/// `keep` or `follow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Symlinks")]
pub enum SymlinksFile {
    Keep,
    Follow,
}

/// One layer of a `layers:` push: `files` or `source` (a tar+gzip layer of
/// them) or `content` (a raw blob, the text as written, with its `mediaType`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend("oneOf" = [{"required": ["source"]}, {"required": ["files"]}, {"required": ["content", "mediaType"]}]))]
#[schemars(rename = "Layer")]
pub struct LayerFile {
    /// A directory to pack into a tar+gzip layer, relative to the scenario file.
    pub source: Option<Located<String>>,
    /// Files to pack into a tar+gzip layer, inline (as in a push's `files`).
    pub files: Option<Located<BTreeMap<String, Located<FileValue>>>>,
    /// A raw blob: this text, byte for byte (no `${...}`). Needs `mediaType`.
    pub content: Option<Located<String>>,
    /// The layer's media type; default `application/vnd.oci.image.layer.v1.tar+gzip` for `source` / `files`.
    pub media_type: Option<Located<String>>,
    /// The layer descriptor's annotations, exactly (none by default).
    #[serde(default)]
    pub annotations: BTreeMap<String, Located<String>>,
    /// For `source`: `keep` (default) or `follow`, as on the push.
    pub symlinks: Option<Located<SymlinksFile>>,
}

/// A manifest's config blob.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Config")]
pub struct ConfigFile {
    /// e.g. `application/vnd.oci.empty.v1+json`, `application/vnd.cncf.helm.config.v1+json`.
    pub media_type: Located<String>,
    /// The blob, byte for byte (no `${...}`); `""` is a 0-byte config.
    pub content: Located<String>,
}

/// A file of an inline `files:` map: its content (may hold `${...}`), or
/// `{symlink: TARGET}` for a symlink entry with that target as written.
#[derive(Debug, Clone)]
pub enum FileValue {
    Text(String),
    Symlink(String),
}

impl<'de> Deserialize<'de> for FileValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = FileValue;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("the file's content as a string, or `{symlink: TARGET}`")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<FileValue, E> {
                Ok(FileValue::Text(text.to_string()))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<FileValue, E> {
                Ok(FileValue::Text(text))
            }

            // A plain scalar that YAML reads as a number or a boolean was
            // taken as its text before symlinks existed: keep it so.
            fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<FileValue, E> {
                Ok(FileValue::Text(value.to_string()))
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<FileValue, E> {
                Ok(FileValue::Text(value.to_string()))
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<FileValue, E> {
                Ok(FileValue::Text(value.to_string()))
            }

            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<FileValue, E> {
                Ok(FileValue::Text(value.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FileValue, A::Error> {
                let mut target = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "symlink" {
                        return Err(serde::de::Error::custom(format!(
                            "a file's content is text, written as a block (`key: |` and the text indented below), or `{{symlink: TARGET}}` for a symlink; this map has `{key}`"
                        )));
                    }
                    if target.is_some() {
                        return Err(serde::de::Error::duplicate_field("symlink"));
                    }
                    target = Some(map.next_value::<String>()?);
                }
                target
                    .map(FileValue::Symlink)
                    .ok_or_else(|| serde::de::Error::missing_field("symlink"))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for FileValue {
    fn schema_name() -> Cow<'static, str> {
        "FileValue".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "The file's content (may hold `${...}`), or `{symlink: TARGET}`: a symlink entry whose target is written as given, wherever it points.",
            "oneOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {"symlink": {"type": "string", "minLength": 1, "description": "The link's target, as written (relative or absolute)."}},
                    "required": ["symlink"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// An OCI image index: its variants are pushed by digest, then the index under `tags`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Index")]
pub struct IndexFile {
    /// The variants, in order (at least one).
    #[schemars(length(min = 1))]
    pub manifests: Located<Vec<Located<IndexVariantFile>>>,
}

/// One manifest of an index: files packed like a plain `push`, told apart by `platform` and/or `annotations`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend("oneOf" = [{"required": ["source"]}, {"required": ["files"]}]))]
#[schemars(rename = "IndexVariant")]
pub struct IndexVariantFile {
    /// A directory to pack, relative to the scenario file. Exactly one of `source` / `files`.
    pub source: Option<Located<String>>,
    /// The files to pack, inline (may hold `${...}`; `{symlink: TARGET}` for a symlink). Exactly one of `source` / `files`.
    pub files: Option<Located<BTreeMap<String, Located<FileValue>>>>,
    /// The platform this variant is for (the index entry's `platform`).
    pub platform: Option<Located<PlatformFile>>,
    /// Annotations of the index entry, e.g. `target: prod`.
    #[serde(default)]
    pub annotations: BTreeMap<String, Located<String>>,
    /// Binds `${NAME.digest}` to this variant's manifest digest.
    #[serde(rename = "as")]
    pub bind: Option<Located<String>>,
}

/// An OCI platform: `os` and `architecture` (Go names: `linux`, `amd64`, `arm64`), optional `variant`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Platform")]
pub struct PlatformFile {
    pub os: Located<String>,
    pub architecture: Located<String>,
    pub variant: Option<Located<String>>,
}

/// Point more tags at an existing manifest.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Tag")]
pub struct TagFile {
    /// Repository pushed to by an earlier step.
    pub repository: Located<String>,
    /// The manifest to tag: a tag or a digest such as `${v1.digest}`.
    pub from: Located<String>,
    /// The tags to set (at least one).
    #[schemars(length(min = 1))]
    pub tags: Located<Vec<Located<String>>>,
}

/// `auto`: automated sync with prune; `manual`: sync only on a `sync` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "SyncPolicy")]
pub enum SyncPolicyFile {
    Auto,
    Manual,
}

/// An Argo CD Application with source `oci://<registry>/<repository>`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "App")]
pub struct AppFile {
    /// Application name (a DNS label: lowercase letters, digits, `-`).
    pub name: Located<String>,
    /// Repository in the lab registry.
    pub repository: Located<String>,
    /// `targetRevision`: a tag, a digest such as `${v1.digest}`, or a semver constraint like `^1.0.0`.
    pub revision: Located<String>,
    /// Directory inside the artifact; default `.`.
    pub path: Option<Located<String>>,
    /// Destination namespace; default: the app name.
    pub namespace: Option<Located<String>>,
    /// `auto` (default) or `manual`.
    pub sync: Option<SyncPolicyFile>,
    /// Helm options for a chart pushed with `push: {chart: ...}` (`spec.source.helm`).
    pub helm: Option<Located<HelmFile>>,
    /// Refuse to create the Application unless the revision's manifest carries a cosign signature by this key; the Application is then pinned to the verified digest. Argo CD cannot verify OCI signatures itself (argo-cd #22609).
    pub require_signature: Option<Located<SignatureKeyFile>>,
    /// The AppProject (`spec.project`); default `default`. A project an earlier `apply` step creates is named as the file names it and mapped like the apply step's object.
    pub project: Option<Located<String>>,
    /// More sync options (`spec.syncPolicy.syncOptions`), `Name=value` as Argo CD spells them, e.g. `ServerSideApply=true`. `CreateNamespace=true` is always there unless this list sets `CreateNamespace=false`.
    pub sync_options: Option<Located<Vec<Located<String>>>>,
    /// Anything else of the Application's spec (ignoreDifferences, source.directory, sources, syncPolicy.retry...): merged into the spec the harness writes as a JSON merge patch (maps merge, other values replace, `null` removes). Strings may hold `${...}`. `destination`, `project`, `source.repoURL`, `source.targetRevision`, `source.path` and `syncPolicy.syncOptions` have their own keys and are refused here.
    pub spec: Option<Located<serde_json::Value>>,
}

/// Helm options of an Application (`spec.source.helm`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Helm")]
pub struct HelmFile {
    /// `helm template` release name; default: the app name.
    pub release_name: Option<Located<String>>,
    /// Values: a YAML string (`values`) or a map (`valuesObject`). Strings may hold `${...}`.
    pub values: Option<Located<serde_json::Value>>,
    /// `--set name=value` pairs.
    #[serde(default)]
    pub parameters: Vec<Located<HelmParameterFile>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "HelmParameter")]
pub struct HelmParameterFile {
    /// A values path, e.g. `config.greeting`.
    pub name: Located<String>,
    /// The value (may hold `${...}`).
    pub value: Located<String>,
    /// Pass it as a string (`--set-string`); default false.
    #[serde(default)]
    pub force_string: bool,
}

/// Names an Application created by an earlier `app` step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "AppRef")]
pub struct AppRefFile {
    /// Name of an Application created by an earlier `app` step.
    pub app: Located<String>,
}

/// Apply Kubernetes objects (server-side, as the harness): `manifest` (one or more YAML documents written inline) or `file` (a YAML file relative to the scenario file); `${...}` is rendered at run time. Objects in the scenario's destination namespaces are mapped with them; AppProjects (and Secrets in `argocd`) go to Argo CD's namespace under run-unique names that `app: {project}` maps the same way. Everything applied is deleted at the end of the run.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Apply")]
#[schemars(extend("oneOf" = [{"required": ["manifest"]}, {"required": ["file"]}]))]
pub struct ApplyFile {
    /// One or more YAML documents.
    pub manifest: Option<Located<String>>,
    /// A YAML file of one or more documents, relative to the scenario file.
    pub file: Option<Located<String>>,
}

/// Stop, start or restart one component of the lab: exactly one of the keys, naming `registry`, `argocd-repo-server`, `argocd-application-controller` or `redis`. A scenario with a fault runs alone on its lab, and the runner starts again whatever it left stopped, even when it fails.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Fault")]
#[schemars(extend("oneOf" = [{"required": ["stop"]}, {"required": ["start"]}, {"required": ["restart"]}]))]
pub struct FaultFile {
    /// Stop the component (its ports and data stay for a later `start`).
    pub stop: Option<Located<String>>,
    /// Start a component an earlier step stopped, and wait until it is ready.
    pub start: Option<Located<String>>,
    /// Stop the component and start it again, waiting until it is ready.
    pub restart: Option<Located<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Refresh")]
pub struct RefreshFile {
    /// Name of an Application created by an earlier `app` step.
    pub app: Located<String>,
    /// A hard refresh (regenerate manifests, bypass caches); default false.
    #[serde(default)]
    pub hard: bool,
}

/// A condition that must become true (`within`, default 2m), stay true (`for`), or stay true through the next N reconciliations of the app (`reconciles`).
/// About an Application: `app` plus any of sync, health, revision, operation, condition, matches.
/// About a Kubernetes object: `resource`, plus `matches` or `absent` (with `reconciles`, `app` may name the Application whose reconciliations count).
/// About the referrers of a manifest in the registry: `referrers`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend(
    "oneOf" = [{"anyOf": [{"required": ["app"]}, {"required": ["resource"]}]}, {"required": ["referrers"]}],
    "allOf" = [
        {"not": {"required": ["within", "for"]}},
        {"not": {"required": ["within", "reconciles"]}},
        {"not": {"required": ["for", "reconciles"]}},
        {"if": {"required": ["app", "resource"]}, "then": {"required": ["reconciles"]}},
        {"if": {"required": ["absent"], "properties": {"absent": {"const": true}}}, "then": {"not": {"required": ["matches"]}}}
    ]
))]
#[schemars(rename = "Expect")]
pub struct ExpectFile {
    /// The Application whose status is checked.
    pub app: Option<Located<String>>,
    /// `status.sync.status`.
    pub sync: Option<Located<SyncStatus>>,
    /// `status.health.status`.
    pub health: Option<Located<HealthStatus>>,
    /// `status.sync.revision`, exactly (a `sha256:` digest, e.g. `${v1.digest}`).
    pub revision: Option<Located<String>>,
    /// Phase of the last operation.
    pub operation: Option<Located<OperationPhase>>,
    /// An Application condition of this type, whose message contains `message`.
    pub condition: Option<Located<ConditionFile>>,
    /// The Kubernetes object checked.
    pub resource: Option<Located<ResourceRefFile>>,
    /// Subset match of the object (with `resource`) or of the whole Application object (with `app`, e.g. `status.sourceType`, `status.resources`): every key given must be present with a matching value, recursively; lists match element-wise in any order. Strings may hold `${...}`.
    pub matches: Option<Located<serde_json::Value>>,
    /// `true`: the object must not exist.
    pub absent: Option<Located<bool>>,
    /// The referrers of a pushed manifest (OCI 1.1: SBOMs, signatures... attached to it).
    pub referrers: Option<Located<ReferrersFile>>,
    /// The condition must become true within this long; default `2m`.
    pub within: Option<Located<DurationText>>,
    /// Instead of `within`: the condition must hold during the whole window.
    #[serde(rename = "for")]
    pub hold_for: Option<Located<DurationText>>,
    /// Instead of `within` or `for`: the condition holds now, and throughout the next N reconciliations of the app, each requested (a refresh) and acknowledged by Argo CD (the refresh annotation gone, `status.reconciledAt` not earlier than the request). Fails if Argo CD does not reconcile within 1m of a request: proof that Argo CD looked again, where `for` only shows that nothing changed.
    #[schemars(range(min = 1, max = 20))]
    pub reconciles: Option<Located<u32>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Condition")]
pub struct ConditionFile {
    /// Condition type, e.g. `ComparisonError`, `SyncError`.
    #[serde(rename = "type")]
    pub kind: Located<String>,
    /// A substring of the condition's message.
    pub message: Option<Located<String>>,
}

/// A Kubernetes object; names and namespaces as written in the file (the runner maps them).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "ResourceRef")]
pub struct ResourceRefFile {
    /// e.g. `v1`, `apps/v1`.
    pub api_version: Located<String>,
    /// e.g. `ConfigMap`, `Deployment`.
    pub kind: Located<String>,
    /// Namespace; leave it out for cluster-scoped objects.
    pub namespace: Option<Located<String>>,
    pub name: Located<String>,
}

/// The key that signs or verifies: one generated for the run (`key`) or a
/// cosign public key file (`publicKey`, verifying only).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend("oneOf" = [{"required": ["key"]}, {"required": ["publicKey"]}]))]
#[schemars(rename = "SignatureKey")]
pub struct SignatureKeyFile {
    /// Name of a key generated for this run (ECDSA P-256, never written to disk); the first use creates it.
    pub key: Option<Located<String>>,
    /// A cosign public key (`cosign.pub`, PEM), relative to the scenario file.
    pub public_key: Option<Located<String>>,
}

/// Sign a manifest the way `cosign sign --key` does, offline (no Fulcio, no Rekor).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Sign")]
pub struct SignFile {
    /// Repository pushed to by an earlier step.
    pub repository: Located<String>,
    /// The manifest digest to sign, e.g. `${v1.digest}` (a digest, not a tag: tags move).
    pub digest: Located<String>,
    /// Name of a key generated for this run; the first use creates it.
    pub key: Located<String>,
}

/// Check a manifest's cosign signatures against a key.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend("oneOf" = [{"required": ["key"]}, {"required": ["publicKey"]}]))]
#[schemars(rename = "Verify")]
pub struct VerifyFile {
    /// Repository pushed to by an earlier step.
    pub repository: Located<String>,
    /// The manifest digest whose signatures are checked, e.g. `${v1.digest}`.
    pub digest: Located<String>,
    /// Name of a key generated for this run (a new name gives a key that signed nothing).
    pub key: Option<Located<String>>,
    /// A cosign public key (`cosign.pub`, PEM), relative to the scenario file.
    pub public_key: Option<Located<String>>,
    /// `signed` (default), `unsigned` or `wrongKey`.
    pub expect: Option<Located<SignatureState>>,
}

/// Attach a document to a pushed manifest as an OCI 1.1 referrer (`subject` = that manifest).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend("oneOf" = [{"required": ["source"]}, {"required": ["content"]}]))]
#[schemars(rename = "Attach")]
pub struct AttachFile {
    /// Repository pushed to by an earlier step.
    pub repository: Located<String>,
    /// The manifest digest to attach to, e.g. `${v1.digest}`.
    pub subject: Located<String>,
    /// The referrer's `artifactType`, e.g. `application/spdx+json` or `application/vnd.cyclonedx+json`.
    pub artifact_type: Located<String>,
    /// The document, a file relative to the scenario file. Exactly one of `source` / `content`.
    pub source: Option<Located<String>>,
    /// The document, inline (may hold `${...}`). Exactly one of `source` / `content`.
    pub content: Option<Located<String>>,
    /// Media type of the document's layer; default: the `artifactType`.
    pub media_type: Option<Located<String>>,
    /// Annotations of the referrer's manifest.
    #[serde(default)]
    pub annotations: BTreeMap<String, Located<String>>,
    /// Binds `${NAME.digest}` to the referrer manifest's digest.
    #[serde(rename = "as")]
    pub bind: Option<Located<String>>,
}

/// The referrers of a manifest, as the registry lists them (referrers API, or the `sha256-<hex>` fallback tag).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Referrers")]
pub struct ReferrersFile {
    /// Repository pushed to by an earlier step.
    pub repository: Located<String>,
    /// The manifest digest whose referrers are listed, e.g. `${v1.digest}`.
    pub subject: Located<String>,
    /// Count only referrers of this `artifactType`.
    pub artifact_type: Option<Located<String>>,
    /// How many referrers there must be.
    pub count: Located<u32>,
}
