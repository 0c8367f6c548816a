//! The scenario file `capture` writes, as serializable structs in the order
//! a person writes the keys (the scenario format of docs/scenario-format.md).

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ScenarioOut {
    pub name: String,
    pub description: String,
    pub labels: Vec<String>,
    pub steps: Vec<StepOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub finally: Vec<StepOut>,
}

#[derive(Debug, Default, Serialize)]
pub struct StepOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<PushOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<ApplyOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<AppOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<ExpectOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete: Option<DeleteOut>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushOut {
    pub repository: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(rename = "as", skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigOut>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub layers: Vec<LayerOut>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigOut {
    pub media_type: String,
    pub content: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<BTreeMap<String, FileOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FileOut {
    Text(String),
    Symlink { symlink: String },
}

#[derive(Debug, Serialize)]
pub struct ApplyOut {
    pub manifest: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppOut {
    pub name: String,
    pub repository: String,
    pub revision: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub sync: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<serde_json::Value>,
}

#[derive(Debug, Default, Serialize)]
pub struct ExpectOut {
    pub app: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct ConditionOut {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DeleteOut {
    pub app: String,
}

/// The file's text: `notes` as comments at the top, then the YAML.
pub fn render(scenario: &ScenarioOut, notes: &[String]) -> Result<String, String> {
    let yaml = serde_saphyr::to_string(scenario).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for note in notes {
        for (i, line) in note.lines().enumerate() {
            out.push_str(if i == 0 { "# " } else { "#   " });
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&yaml);
    Ok(out)
}
