//! Scenario files: the typed plan, loading with positions, lint, schema.
//!
//! `file` mirrors the YAML (serde, with positions); `load` validates it into
//! `plan` (what the runner executes); `diagnostic` renders problems as
//! `file:line:col: error: ...` with a snippet; `check` and `schema` back the
//! `cargo xtask check` / `schema` commands; `template` and `vars` handle
//! `${...}` variables at run time; `yaml` parses Kubernetes objects on a
//! stack deep enough for CRDs.

#[macro_use]
mod kinds;
mod check;
mod diagnostic;
mod duration;
pub mod file;
mod load;
mod names;
pub mod plan;
mod schema;
mod template;
mod vars;
pub mod yaml;

pub use check::check_paths;
pub use diagnostic::{Diagnostic, Snippet};
pub use duration::parse_duration;
pub use load::{load_file, load_paths, load_source};
pub use names::MAX_APP_NAME_LEN;
pub use plan::*;
pub use schema::json_schema;
pub use template::{UndefinedVariable, VarRef};
pub use vars::{Vars, render_json};
