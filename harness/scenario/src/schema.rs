//! The JSON Schema of scenario files, for editors (`cargo xtask schema`).

use super::file::ScenarioFile;

/// JSON Schema (draft 2020-12) of a scenario file. Editors with a YAML
/// language server use it for completion and inline help; `check` remains
/// the authority (variables, app references, paths are beyond a schema).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<ScenarioFile>();
    schema.to_value()
}
