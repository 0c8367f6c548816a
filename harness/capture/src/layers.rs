//! A pulled manifest as a scenario's `push: {layers: ..., config: ...}`:
//! every layer in order with its media type and annotations, tar layers as
//! files (inline, or in a fixtures directory), other blobs as `content`.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Deserialize;

use crate::CaptureError;
use crate::output::{ConfigOut, FileOut, LayerOut};
use crate::portable::Origin;

/// The empty config every plain push carries (the harness's default).
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The artifact type oras (and the harness) set with the empty config.
pub const DEFAULT_ARTIFACT_TYPE: &str = "application/vnd.unknown.artifact.v1";
/// Above this many bytes of file contents in all layers, `--fixtures` is
/// needed (a scenario stays readable).
pub const INLINE_LIMIT: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// One entry of a tar layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File(Vec<u8>),
    Symlink(String),
}

/// A layer read from the registry.
#[derive(Debug)]
pub enum LayerBody {
    /// A tar (gzip or not) with its entries, paths as in the archive.
    Tar(BTreeMap<String, Entry>),
    /// Any other blob.
    Raw(Vec<u8>),
}

/// What could not be kept exactly, for the notes at the top of the file.
pub type Notes = Vec<String>;

/// Read a layer: a tar when its media type says so (or its bytes are gzip
/// holding a tar), else raw.
pub fn read_layer(
    index: usize,
    media_type: &str,
    bytes: &[u8],
    notes: &mut Notes,
) -> Result<LayerBody, CaptureError> {
    let gzip = bytes.starts_with(&[0x1f, 0x8b]);
    let says_tar = media_type.contains("tar");
    if !says_tar && !gzip {
        return Ok(LayerBody::Raw(bytes.to_vec()));
    }
    let tar_bytes = if gzip {
        let mut out = Vec::new();
        match flate2::read::GzDecoder::new(bytes).read_to_end(&mut out) {
            Ok(_) => out,
            Err(_) if !says_tar => return Ok(LayerBody::Raw(bytes.to_vec())),
            Err(e) => {
                return Err(CaptureError::Layer {
                    index,
                    media_type: media_type.into(),
                    detail: format!("not gzip as its media type says: {e}"),
                });
            }
        }
    } else {
        bytes.to_vec()
    };
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut entries = BTreeMap::new();
    let bad = |detail: String| CaptureError::Layer {
        index,
        media_type: media_type.into(),
        detail,
    };
    let iter = match archive.entries() {
        Ok(iter) => iter,
        Err(_) if !says_tar => return Ok(LayerBody::Raw(bytes.to_vec())),
        Err(e) => return Err(bad(format!("not a tar archive: {e}"))),
    };
    let mut skipped_dirs = 0;
    for entry in iter {
        let mut entry = entry.map_err(|e| bad(format!("reading the tar: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("an entry's path: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| bad(format!("reading {path}: {e}")))?;
                entries.insert(path, Entry::File(data));
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| bad(format!("the target of {path}: {e}")))?
                    .map(|t| t.to_string_lossy().to_string())
                    .unwrap_or_default();
                entries.insert(path, Entry::Symlink(target));
            }
            tar::EntryType::Directory => skipped_dirs += 1,
            other => {
                return Err(bad(format!(
                    "{path} is a tar entry of type {other:?}: the scenario format holds files and symlinks only"
                )));
            }
        }
    }
    if skipped_dirs > 0 {
        notes.push(format!(
            "layer {}: {skipped_dirs} directory entries are not written (the harness packs files and symlinks; directories are implied by their paths)",
            index + 1
        ));
    }
    Ok(LayerBody::Tar(entries))
}

/// Where large or binary layers go.
pub struct Fixtures<'a> {
    /// The directory to write into.
    pub dir: &'a std::path::Path,
    /// How the scenario names it (relative to the scenario file).
    pub from_scenario: String,
    /// Before `layer-N` in the directories' names (one push's from another's).
    pub prefix: String,
}

/// A directory of fixture files to write: relative path -> entry.
pub type FixtureDir = (std::path::PathBuf, BTreeMap<String, Entry>);

/// The scenario layers for `layers`, writing them under `fixtures` when
/// given (or when they are too large or binary to inline, an error then).
pub fn scenario_layers(
    manifest: &Manifest,
    bodies: Vec<LayerBody>,
    origin: &Origin,
    fixtures: Option<&Fixtures<'_>>,
    notes: &mut Notes,
) -> Result<(Vec<LayerOut>, Vec<FixtureDir>), CaptureError> {
    let total: usize = bodies
        .iter()
        .map(|b| match b {
            LayerBody::Tar(entries) => entries
                .values()
                .map(|e| match e {
                    Entry::File(d) => d.len(),
                    Entry::Symlink(t) => t.len(),
                })
                .sum(),
            LayerBody::Raw(bytes) => bytes.len(),
        })
        .sum();
    if fixtures.is_none() && total > INLINE_LIMIT {
        return Err(CaptureError::TooLarge {
            bytes: total,
            limit: INLINE_LIMIT,
        });
    }
    let mut layers = Vec::new();
    let mut dirs = Vec::new();
    for (index, (descriptor, body)) in manifest.layers.iter().zip(bodies).enumerate() {
        let mut layer = LayerOut {
            media_type: Some(descriptor.media_type.clone()),
            annotations: descriptor.annotations.clone(),
            ..LayerOut::default()
        };
        match body {
            LayerBody::Tar(mut entries) => {
                redact_secrets(&mut entries, index, notes);
                // A file naming the lab's registry or the run's repositories
                // must become a template to replay elsewhere, and only
                // inline contents are templates.
                let names_the_lab = entries.values().any(|e| {
                    matches!(e, Entry::File(d) if std::str::from_utf8(d).is_ok_and(|t| origin.template(t) != t))
                });
                let all_text = entries
                    .values()
                    .all(|e| !matches!(e, Entry::File(d) if std::str::from_utf8(d).is_err()));
                let to_fixtures = match fixtures {
                    Some(_) if names_the_lab && all_text => {
                        notes.push(format!(
                            "layer {}: inline although --fixtures was given, since its files name the lab's registry (written as ${{lab.argoRegistry}} / ${{repo:NAME}})",
                            index + 1
                        ));
                        None
                    }
                    Some(f) => {
                        if names_the_lab {
                            notes.push(format!(
                                "layer {}: its files name the lab's registry but hold binary data, so they are written as they are and name the captured lab",
                                index + 1
                            ));
                        }
                        Some(f)
                    }
                    None => None,
                };
                match to_fixtures {
                    Some(fixtures) => {
                        let name = format!("{}layer-{}", fixtures.prefix, index + 1);
                        layer.source = Some(format!("{}/{name}", fixtures.from_scenario));
                        dirs.push((fixtures.dir.join(&name), entries));
                    }
                    None => {
                        let mut files = BTreeMap::new();
                        for (path, entry) in entries {
                            let value = match entry {
                                Entry::Symlink(target) => FileOut::Symlink { symlink: target },
                                Entry::File(data) => match String::from_utf8(data) {
                                    // Inline contents are templates.
                                    Ok(text) => FileOut::Text(origin.template(&text)),
                                    Err(_) => {
                                        return Err(CaptureError::Binary {
                                            what: format!("layer {}, file {path}", index + 1),
                                        });
                                    }
                                },
                            };
                            files.insert(path, value);
                        }
                        layer.files = Some(files);
                    }
                }
            }
            LayerBody::Raw(bytes) => match String::from_utf8(bytes) {
                // `content:` is written byte for byte (no variables).
                Ok(text) => layer.content = Some(text),
                Err(_) => {
                    return Err(CaptureError::Binary {
                        what: format!(
                            "layer {} ({}), a raw blob: `content:` holds text only",
                            index + 1,
                            descriptor.media_type
                        ),
                    });
                }
            },
        }
        layers.push(layer);
    }
    Ok((layers, dirs))
}

/// The `config:` to write: none for the harness's default (the empty config
/// with oras's artifact type), else the blob as text.
pub fn scenario_config(
    manifest: &Manifest,
    config: &[u8],
) -> Result<(Option<ConfigOut>, Option<String>), CaptureError> {
    let Some(descriptor) = &manifest.config else {
        return Ok((None, manifest.artifact_type.clone()));
    };
    let artifact_type = manifest.artifact_type.clone();
    if descriptor.media_type == EMPTY_CONFIG_MEDIA_TYPE && config == b"{}" {
        let artifact_type = artifact_type.filter(|t| t != DEFAULT_ARTIFACT_TYPE);
        return Ok((None, artifact_type));
    }
    let content = String::from_utf8(config.to_vec()).map_err(|_| CaptureError::Binary {
        what: format!("the config ({})", descriptor.media_type),
    })?;
    Ok((
        Some(ConfigOut {
            media_type: descriptor.media_type.clone(),
            content,
        }),
        artifact_type,
    ))
}

/// Secrets' data never enters a captured file: in YAML files of the
/// artifact, each value of a Secret's `data` / `stringData` is replaced
/// (by `redacted`, base64 in `data`), the rest of the file kept.
fn redact_secrets(entries: &mut BTreeMap<String, Entry>, layer: usize, notes: &mut Notes) {
    for (path, entry) in entries.iter_mut() {
        let Entry::File(data) = entry else { continue };
        let Ok(text) = std::str::from_utf8(data) else {
            continue;
        };
        if !text.contains("Secret") {
            continue;
        }
        let Ok(documents) = harness_scenario::yaml::documents(text) else {
            continue;
        };
        if !documents
            .iter()
            .any(|d| d.get("kind").and_then(|k| k.as_str()) == Some("Secret"))
        {
            continue;
        }
        let mut out = String::new();
        for mut document in documents.into_iter().filter(|d| !d.is_null()) {
            if document.get("kind").and_then(|k| k.as_str()) == Some("Secret") {
                for (key, value) in [("data", "cmVkYWN0ZWQ="), ("stringData", "redacted")] {
                    if let Some(map) = document.get_mut(key).and_then(|m| m.as_object_mut()) {
                        for v in map.values_mut() {
                            *v = serde_json::Value::String(value.into());
                        }
                    }
                }
            }
            out.push_str("---\n");
            out.push_str(&serde_saphyr::to_string(&document).unwrap_or_default());
        }
        *data = out.into_bytes();
        notes.push(format!(
            "layer {}, {path}: the Secret's data values are replaced by `redacted`",
            layer + 1
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(entries: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, link, data) in entries {
            let mut header = tar::Header::new_ustar();
            match link {
                Some(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder
                        .append_link(&mut header, path, target)
                        .expect("link");
                }
                None => {
                    header.set_size(data.len() as u64);
                    header.set_mode(0o644);
                    builder.append_data(&mut header, path, *data).expect("file");
                }
            }
        }
        let tar = builder.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).expect("gzip");
        gz.finish().expect("gzip")
    }

    #[test]
    fn tar_layers_keep_files_and_symlinks_and_secrets_lose_their_data() {
        let secret =
            b"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: aHVudGVyMg==}\n";
        let bytes = tar_gz(&[
            ("cm.yaml", None, b"kind: ConfigMap\n"),
            ("link.yaml", Some("cm.yaml"), b""),
            ("secret.yaml", None, secret),
        ]);
        let mut notes = Vec::new();
        let LayerBody::Tar(mut entries) = read_layer(
            0,
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &bytes,
            &mut notes,
        )
        .expect("a tar") else {
            panic!("a tar layer");
        };
        assert_eq!(
            entries["cm.yaml"],
            Entry::File(b"kind: ConfigMap\n".to_vec())
        );
        assert_eq!(entries["link.yaml"], Entry::Symlink("cm.yaml".into()));
        redact_secrets(&mut entries, 0, &mut notes);
        let Entry::File(redacted) = &entries["secret.yaml"] else {
            panic!("a file");
        };
        let text = String::from_utf8(redacted.clone()).expect("text");
        assert!(!text.contains("aHVudGVyMg=="), "{text}");
        assert!(
            text.contains("cmVkYWN0ZWQ=") && text.contains("name: s"),
            "{text}"
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
    }

    #[test]
    fn a_blob_that_is_no_tar_is_raw() {
        let mut notes = Vec::new();
        let body = read_layer(
            0,
            "application/spdx+json",
            b"{\"spdxVersion\":1}",
            &mut notes,
        )
        .expect("raw");
        assert!(matches!(body, LayerBody::Raw(b) if b == b"{\"spdxVersion\":1}"));
    }
}
