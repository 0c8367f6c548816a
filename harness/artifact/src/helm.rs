//! Helm charts as OCI artifacts, packed the way `helm package` + `helm push`
//! (Helm v3) do it:
//! - config `application/vnd.cncf.helm.config.v1+json`: the chart metadata
//!   (Chart.yaml's known fields) as JSON, in the field order and with the
//!   omit-empty rules of Helm's `chart.Metadata`;
//! - one layer `application/vnd.cncf.helm.chart.content.v1.tar+gzip`: a tar
//!   of `<name>/Chart.yaml` (re-serialised from the metadata, keys sorted, as
//!   Helm writes it), `<name>/values.yaml`, `<name>/values.schema.json`, then
//!   `templates/...` and the other files, regular files only (no directory
//!   entries), mode 0644;
//! - tag: the chart version (`+` written `_`, as `helm push` does).
//!
//! Unlike Helm, mtimes are 0 and gzip has a fixed header, so the same chart
//! always gives the same digests (Helm's archives carry the packing time:
//! compare contents, not digests). `dependencies:` in Chart.yaml are kept
//! (in the config and the archive's Chart.yaml) with nothing vendored, as a
//! chart whose `charts/` is absent: Argo CD runs `helm dependency build`
//! for it (a `Chart.lock` is packed as written, after Chart.yaml, where
//! Helm puts it). Not supported, with a clear error: `charts/`,
//! `requirements.yaml` and `.helmignore`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::pack::{gzip_deterministic, sha256_digest};
use crate::{ArtifactFiles, Blob, MANIFEST_MEDIA_TYPE, OciError, PackedArtifact, Symlinks};

pub const HELM_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
pub const HELM_CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
pub const CHART_FILE: &str = "Chart.yaml";

/// Why a chart directory cannot be pushed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    #[error(
        "{dir} has no Chart.yaml: `chart` names a Helm chart directory (`helm create NAME` makes one)"
    )]
    NoChartFile { dir: String },
    #[error("cannot read {path}: {detail}")]
    Unreadable { path: String, detail: String },
    #[error("{path} is not a valid Chart.yaml: {detail}")]
    Invalid { path: String, detail: String },
    #[error("{path}: {detail}")]
    Unsupported { path: String, detail: String },
}

/// A chart maintainer, in Helm's field order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Maintainer {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// Helm's `chart.Metadata`: the fields of Chart.yaml that Helm keeps, in its
/// struct order (the JSON config follows it), empty ones left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartMetadata {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub home: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<Maintainer>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tags: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_version: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<ChartDependency>,
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub chart_type: String,
}

/// One entry of Chart.yaml's `dependencies:`, Helm's `chart.Dependency`
/// in its struct order (`name` and `repository` always written).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ChartDependency {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default)]
    pub repository: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enabled: bool,
    #[serde(
        default,
        rename = "import-values",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub import_values: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alias: String,
}

impl ChartMetadata {
    /// The config blob `helm push` uploads: `json.Marshal(metadata)`.
    pub fn config_json(&self) -> Result<Vec<u8>, OciError> {
        serde_json::to_vec(self).map_err(|e| OciError::Pack(format!("chart metadata: {e}")))
    }

    /// Chart.yaml as `helm package` writes it into the archive
    /// (sigs.k8s.io/yaml: JSON field names, keys sorted).
    pub fn chart_yaml(&self) -> Result<Vec<u8>, OciError> {
        let value = serde_json::to_value(self)
            .map_err(|e| OciError::Pack(format!("chart metadata: {e}")))?;
        let mut out = String::new();
        go_yaml(&value, 0, &mut out);
        Ok(out.into_bytes())
    }

    /// The tag `helm push` uses: the version with `+` replaced by `_`
    /// (tags cannot hold `+`).
    pub fn tag(&self) -> String {
        self.version.replace('+', "_")
    }
}

/// Parse and check Chart.yaml's text (`path` for messages only).
pub fn parse_chart_yaml(text: &str, path: &str) -> Result<ChartMetadata, ChartError> {
    let invalid = |detail: String| ChartError::Invalid {
        path: path.to_string(),
        detail,
    };
    let metadata: ChartMetadata = serde_saphyr::from_str(text).map_err(|e| {
        let message = e.to_string();
        let hint = if message.contains("string") {
            " (quote versions: `appVersion: \"1.0\"`)"
        } else {
            ""
        };
        invalid(format!("{message}{hint}"))
    })?;
    if metadata.api_version.is_empty() {
        return Err(invalid(
            "`apiVersion` is missing: write `apiVersion: v2`".into(),
        ));
    }
    if metadata.name.is_empty() {
        return Err(invalid("`name` is missing".into()));
    }
    let name_ok =
        metadata.name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.'
        }) && metadata
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if !name_ok {
        return Err(invalid(format!(
            "chart name `{}` is not valid: lowercase letters, digits, `-`, starting with a letter or digit",
            metadata.name
        )));
    }
    if metadata.version.is_empty() {
        return Err(invalid(
            "`version` is missing: give a SemVer 2 version like `0.1.0`".into(),
        ));
    }
    if let Err(e) = semver::Version::parse(&metadata.version) {
        return Err(invalid(format!(
            "`version: {}` is not a SemVer 2 version ({e}): write MAJOR.MINOR.PATCH like `0.1.0`",
            metadata.version
        )));
    }
    check_dependencies(&metadata.dependencies).map_err(invalid)?;
    Ok(metadata)
}

/// Helm's checks on `dependencies:` (a name, names and aliases unique), and
/// a `repository` for each, since nothing is vendored under `charts/`.
fn check_dependencies(dependencies: &[ChartDependency]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for (index, dependency) in dependencies.iter().enumerate() {
        let which = format!("dependency {} of {}", index + 1, dependencies.len());
        if dependency.name.is_empty() {
            return Err(format!("{which} has no `name`"));
        }
        let which = format!("dependency `{}`", dependency.name);
        if dependency.repository.is_empty() {
            return Err(format!(
                "{which} has no `repository`: name where Argo CD fetches it, e.g. `repository: oci://${{lab.argoRegistry}}/${{repo:charts}}` (vendored `charts/` are not supported)"
            ));
        }
        let effective = if dependency.alias.is_empty() {
            &dependency.name
        } else {
            &dependency.alias
        };
        if !seen.insert(effective.clone()) {
            return Err(format!(
                "more than one dependency is named or aliased `{effective}`: Helm refuses that; give each an `alias`"
            ));
        }
    }
    Ok(())
}

/// Read `dir/Chart.yaml` and check it (name, SemVer version, dependencies
/// named and located), and that the directory holds nothing push cannot
/// pack.
pub fn read_chart_metadata(dir: &Path) -> Result<ChartMetadata, ChartError> {
    let path = dir.join(CHART_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ChartError::NoChartFile {
                dir: dir.display().to_string(),
            });
        }
        Err(e) => {
            return Err(ChartError::Unreadable {
                path: path.display().to_string(),
                detail: e.to_string(),
            });
        }
    };
    let metadata = parse_chart_yaml(&text, &path.display().to_string())?;
    for (unsupported, why) in [
        (
            "charts",
            "vendored subcharts are not packed: name them in Chart.yaml's `dependencies:` with a `repository`, and Argo CD fetches them",
        ),
        (
            "requirements.yaml",
            "Helm v2's dependency file is not packed: move its entries to `dependencies:` in Chart.yaml",
        ),
        (".helmignore", "ignore rules are not applied"),
    ] {
        if dir.join(unsupported).exists() {
            return Err(ChartError::Unsupported {
                path: dir.join(unsupported).display().to_string(),
                detail: format!(
                    "`{unsupported}` is not supported by `push: {{chart: ...}}` ({why}): remove it"
                ),
            });
        }
    }
    Ok(metadata)
}

/// A chart read from a directory: its metadata and its files.
#[derive(Debug, Clone)]
pub struct Chart {
    pub metadata: ChartMetadata,
    /// Every file of the directory, relative paths.
    pub files: ArtifactFiles,
}

impl Chart {
    pub fn from_dir(dir: &Path) -> Result<Self, OciError> {
        let metadata = read_chart_metadata(dir).map_err(|e| OciError::Pack(e.to_string()))?;
        // `helm package` follows symlinks.
        let files = ArtifactFiles::from_dir(dir, Symlinks::Follow)?;
        Ok(Chart { metadata, files })
    }

    /// The archive entries in the order `helm package` writes them, paths
    /// relative to the chart (without the `<name>/` prefix).
    pub fn archive_entries(&self) -> Result<Vec<(String, Vec<u8>)>, OciError> {
        let mut entries = vec![(CHART_FILE.to_string(), self.metadata.chart_yaml()?)];
        for special in ["Chart.lock", "values.yaml", "values.schema.json"] {
            if let Some(data) = self.files.files.get(special) {
                entries.push((special.to_string(), data.clone()));
            }
        }
        let is_special = |p: &str| {
            matches!(
                p,
                "Chart.yaml" | "Chart.lock" | "values.yaml" | "values.schema.json"
            )
        };
        // Helm skips hidden files under templates/ (its default ignore rule).
        let templates = self.files.files.iter().filter(|(p, _)| {
            p.starts_with("templates/") && !p.rsplit('/').next().is_some_and(|n| n.starts_with('.'))
        });
        let others = self
            .files
            .files
            .iter()
            .filter(|(p, _)| !p.starts_with("templates/") && !is_special(p));
        for (path, data) in templates.chain(others) {
            entries.push((path.clone(), data.clone()));
        }
        Ok(entries)
    }

    /// The `.tgz` `helm package` would write (entries under `<name>/`), with
    /// fixed mtimes and gzip header.
    pub fn package(&self) -> Result<Vec<u8>, OciError> {
        let pack_err =
            |e: std::io::Error| OciError::Pack(format!("writing the chart archive: {e}"));
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in self.archive_entries()? {
            let mut header = tar::Header::new_ustar();
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            let name = format!("{}/{path}", self.metadata.name);
            builder
                .append_data(&mut header, &name, data.as_slice())
                .map_err(pack_err)?;
        }
        let tar = builder.into_inner().map_err(pack_err)?;
        Ok(gzip_deterministic(&tar))
    }
}

/// Manifest annotations `helm push` sets from the metadata (without
/// `org.opencontainers.image.created`, which would change every push).
pub fn chart_annotations(metadata: &ChartMetadata) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([
        (
            "org.opencontainers.image.title".to_string(),
            metadata.name.clone(),
        ),
        (
            "org.opencontainers.image.version".to_string(),
            metadata.version.clone(),
        ),
    ]);
    if !metadata.description.is_empty() {
        annotations.insert(
            "org.opencontainers.image.description".into(),
            metadata.description.clone(),
        );
    }
    if !metadata.home.is_empty() {
        annotations.insert("org.opencontainers.image.url".into(), metadata.home.clone());
    }
    annotations
}

/// Pack a chart as `helm push` does; `annotations` add to (and override)
/// the ones taken from the metadata.
pub fn pack_chart(
    chart: &Chart,
    annotations: &BTreeMap<String, String>,
) -> Result<PackedArtifact, OciError> {
    let layer = Blob::new(HELM_CHART_LAYER_MEDIA_TYPE, chart.package()?);
    let config = Blob::new(HELM_CONFIG_MEDIA_TYPE, chart.metadata.config_json()?);
    let mut all_annotations = chart_annotations(&chart.metadata);
    all_annotations.extend(annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.bytes.len()},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.bytes.len()}],
        "annotations": all_annotations,
    });
    let manifest = serde_json::to_vec(&manifest)
        .map_err(|e| OciError::Pack(format!("serializing the manifest: {e}")))?;
    let digest = sha256_digest(&manifest);
    Ok(PackedArtifact {
        config,
        layers: vec![layer],
        manifest,
        digest,
    })
}

/// YAML as go-yaml v2 writes a JSON value (what sigs.k8s.io/yaml gives):
/// keys sorted, block style, sequences not indented under their key.
fn go_yaml(value: &serde_json::Value, indent: usize, out: &mut String) {
    use serde_json::Value;
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                let item = &map[key];
                out.push_str(&pad);
                out.push_str(&go_scalar_string(key));
                out.push(':');
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        out.push('\n');
                        go_yaml(item, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push('\n');
                        go_yaml(item, indent, out);
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(&go_scalar(item));
                        out.push('\n');
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // First key on the dash line, the rest aligned under it.
                        let mut nested = String::new();
                        go_yaml(item, indent + 2, &mut nested);
                        out.push(' ');
                        out.push_str(nested.trim_start());
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(&go_scalar(item));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&go_scalar(other));
            out.push('\n');
        }
    }
}

fn go_scalar(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::String(s) => go_scalar_string(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// A string plain when YAML reads it back as the same string, else
/// double-quoted.
fn go_scalar_string(s: &str) -> String {
    let resolves_to_other = matches!(
        s.to_ascii_lowercase().as_str(),
        "" | "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    ) || s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o");
    let special_start = s
        .chars()
        .next()
        .is_some_and(|c| "-?:,[]{}#&*!|>'\"%@` ".contains(c));
    let special_inner =
        s.contains(": ") || s.contains(" #") || s.ends_with(' ') || s.ends_with(':');
    if resolves_to_other || s.chars().any(|c| c.is_control()) {
        // go-yaml asks for double quotes when plain text would read back as
        // another type...
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    } else if special_start || special_inner {
        // ...and its emitter falls back to single quotes when plain style
        // is not allowed for the characters.
        format!("'{}'", s.replace('\'', "''"))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_yaml_is_sorted_and_config_keeps_helms_order() {
        let metadata = parse_chart_yaml(
            "apiVersion: v2\nname: demo\nversion: 0.1.0\ndescription: 'A demo: chart'\nappVersion: \"1.0\"\nkeywords: [a, b]\nmaintainers:\n  - name: me\n    email: me@example.com\nunknownField: dropped\n",
            "Chart.yaml",
        )
        .expect("valid chart");
        let yaml = String::from_utf8(metadata.chart_yaml().expect("yaml")).expect("utf8");
        assert_eq!(
            yaml,
            "apiVersion: v2\nappVersion: \"1.0\"\ndescription: 'A demo: chart'\nkeywords:\n- a\n- b\nmaintainers:\n- email: me@example.com\n  name: me\nname: demo\nversion: 0.1.0\n"
        );
        let config = String::from_utf8(metadata.config_json().expect("json")).expect("utf8");
        assert_eq!(
            config,
            r#"{"name":"demo","version":"0.1.0","description":"A demo: chart","keywords":["a","b"],"maintainers":[{"name":"me","email":"me@example.com"}],"apiVersion":"v2","appVersion":"1.0"}"#
        );
    }

    #[test]
    fn dependencies_keep_helms_field_order_and_sorted_yaml() {
        let metadata = parse_chart_yaml(
            "apiVersion: v2\nname: app\nversion: 0.1.0\ntype: application\ndependencies:\n  - repository: oci://r:5000/charts\n    version: \">=0.1.0\"\n    name: sub\n    alias: lib\n    import-values: [data]\n",
            "Chart.yaml",
        )
        .expect("valid chart");
        let config = String::from_utf8(metadata.config_json().expect("json")).expect("utf8");
        assert_eq!(
            config,
            r#"{"name":"app","version":"0.1.0","apiVersion":"v2","dependencies":[{"name":"sub","version":">=0.1.0","repository":"oci://r:5000/charts","import-values":["data"],"alias":"lib"}],"type":"application"}"#
        );
        let yaml = String::from_utf8(metadata.chart_yaml().expect("yaml")).expect("utf8");
        assert_eq!(
            yaml,
            "apiVersion: v2\ndependencies:\n- alias: lib\n  import-values:\n  - data\n  name: sub\n  repository: oci://r:5000/charts\n  version: '>=0.1.0'\nname: app\ntype: application\nversion: 0.1.0\n"
        );
    }

    #[test]
    fn dependencies_need_a_name_a_repository_and_unique_names() {
        for (deps, needle) in [
            (
                "  - version: 0.1.0\n    repository: oci://r/c\n",
                "dependency 1 of 1 has no `name`",
            ),
            (
                "  - name: sub\n    version: 0.1.0\n",
                "dependency `sub` has no `repository`",
            ),
            (
                "  - {name: sub, repository: oci://r/c}\n  - {name: sub, repository: oci://r/d}\n",
                "more than one dependency is named or aliased `sub`",
            ),
        ] {
            let text = format!("apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n{deps}");
            let error = parse_chart_yaml(&text, "Chart.yaml")
                .expect_err(&text)
                .to_string();
            assert!(error.contains(needle), "{error}");
        }
    }

    #[test]
    fn bad_versions_and_names_are_rejected() {
        for (text, needle) in [
            ("apiVersion: v2\nname: demo\nversion: one\n", "SemVer"),
            ("apiVersion: v2\nname: demo\n", "`version` is missing"),
            ("apiVersion: v2\nname: Demo\nversion: 0.1.0\n", "chart name"),
            ("name: demo\nversion: 0.1.0\n", "apiVersion"),
        ] {
            let error = parse_chart_yaml(text, "Chart.yaml")
                .expect_err(text)
                .to_string();
            assert!(error.contains(needle), "{error}");
        }
    }

    #[test]
    fn tag_replaces_plus() {
        let metadata = ChartMetadata {
            version: "1.0.0+build.1".into(),
            ..Default::default()
        };
        assert_eq!(metadata.tag(), "1.0.0_build.1");
    }
}
