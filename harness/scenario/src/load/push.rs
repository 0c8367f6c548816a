//! `push`: what a push may carry (files, a source directory, a Helm chart,
//! an index of variants), its repository, tags, layer media type.

use super::*;

impl Loader<'_> {
    pub(super) fn push(
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
            ("layers", body.layers.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect();
        let whole_kind = body.chart.is_some() || body.index.is_some() || body.layers.is_some();
        let content = match (&body.source, &body.files) {
            _ if content_keys.len() > 1 && whole_kind => {
                self.error(
                    push.location(),
                    format!(
                        "{} together: a push packs one kind of content, keep one of `source`, `files`, `chart`, `index`, `layers`",
                        content_keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                    ),
                );
                PushContent::Files(BTreeMap::new())
            }
            (None, None) if whole_kind => {
                if let Some(chart) = &body.chart {
                    self.chart(chart, body, scope, definitions)
                } else if let Some(index) = &body.index {
                    PushContent::Index(self.index(index, scope, definitions))
                } else if let Some(layers) = &body.layers {
                    PushContent::Layers(self.layers(layers, scope, definitions))
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
                    "push needs `source:` (a directory, relative to this file), `files:` (inline contents), `chart:` (a Helm chart directory), `index:` (an image index of variants) or `layers:` (every layer, in order)",
                );
                PushContent::Files(BTreeMap::new())
            }
        };
        let symlinks = self.symlinks(body.symlinks.as_ref());
        if let Some(given) = &body.symlinks {
            let has_directory = body.source.is_some()
                || body.index.as_ref().is_some_and(|index| {
                    index
                        .value()
                        .manifests
                        .value()
                        .iter()
                        .any(|v| v.value().source.is_some())
                });
            if !has_directory {
                self.error(
                    given.location(),
                    "`symlinks` applies to a `source` directory (or an index variant's): inline `files` write `{symlink: TARGET}`, a chart's links are always followed, and a `layers:` entry takes its own `symlinks`",
                );
            }
        }
        let whole_manifest = body.chart.is_some() || body.index.is_some();
        let config = body.config.as_ref().map(|config| {
            if whole_manifest {
                self.error(
                    config.location(),
                    "`config` does not apply to `chart` or `index`: a chart's config is its Chart.yaml, an index has none",
                );
            }
            RawBlob {
                media_type: self.media_type(&config.value().media_type, "mediaType"),
                content: config.value().content.value().clone(),
            }
        });
        let artifact_type = body.artifact_type.as_ref().map(|artifact_type| {
            if whole_manifest {
                self.error(
                    artifact_type.location(),
                    "`artifactType` does not apply to `chart` or `index`: give it on a `source`, `files` or `layers` push",
                );
            }
            self.media_type(artifact_type, "artifactType")
        });
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
            Some(media_type) if body.layers.is_some() => {
                self.error(
                    media_type.location(),
                    "`layerMediaType` does not apply to `layers`: give each layer its `mediaType`",
                );
                DEFAULT_LAYER_MEDIA_TYPE.to_string()
            }
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
            symlinks,
            config,
            artifact_type,
        }
    }

    fn symlinks(&mut self, given: Option<&Located<SymlinksFile>>) -> Symlinks {
        match given.map(|g| *g.value()) {
            None | Some(SymlinksFile::Keep) => Symlinks::Keep,
            Some(SymlinksFile::Follow) => Symlinks::Follow,
        }
    }

    /// `layers:`: each is `source`, `files` or `content` (with `mediaType`).
    fn layers(
        &mut self,
        layers: &Located<Vec<Located<LayerFile>>>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> Vec<Layer> {
        if layers.value().is_empty() {
            self.error(
                layers.location(),
                "`layers` is empty: a manifest has at least one layer (`- files: ...`, `- source: ...` or `- content: ...` with `mediaType`)",
            );
        }
        let mut out = Vec::new();
        for layer in layers.value() {
            let given = layer.value();
            let keys: Vec<&str> = [
                ("source", given.source.is_some()),
                ("files", given.files.is_some()),
                ("content", given.content.is_some()),
            ]
            .into_iter()
            .filter_map(|(key, present)| present.then_some(key))
            .collect();
            if keys.len() != 1 {
                self.error(
                    layer.location(),
                    if keys.is_empty() {
                        "this layer needs `source:` (a directory), `files:` (inline files) or `content:` (a raw blob, with `mediaType`)".to_string()
                    } else {
                        format!(
                            "{} together: a layer is one of `source`, `files`, `content`",
                            keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                        )
                    },
                );
            }
            if let Some(symlinks) = &given.symlinks
                && given.source.is_none()
            {
                self.error(
                    symlinks.location(),
                    "`symlinks` applies to a layer's `source` directory (inline `files` write `{symlink: TARGET}`)",
                );
            }
            let media_type = match &given.media_type {
                Some(media_type) => self.media_type(media_type, "mediaType"),
                None if given.content.is_some() => {
                    self.error(
                        layer.location(),
                        "a `content:` layer needs its `mediaType` (a raw blob has no default), like `application/vnd.cncf.helm.chart.provenance.v1.prov`",
                    );
                    String::new()
                }
                None => DEFAULT_LAYER_MEDIA_TYPE.to_string(),
            };
            let content = if let Some(source) = &given.source {
                LayerContent::Directory {
                    path: self.source_directory(source),
                    symlinks: self.symlinks(given.symlinks.as_ref()),
                }
            } else if let Some(files) = &given.files {
                LayerContent::Files(self.inline_files(files, scope, definitions))
            } else if let Some(content) = &given.content {
                LayerContent::Raw(content.value().clone())
            } else {
                LayerContent::Raw(String::new())
            };
            let annotations = given
                .annotations
                .iter()
                .map(|(key, value)| {
                    if key.trim().is_empty() {
                        self.error(value.location(), "an annotation key is empty: give a name like `org.opencontainers.image.title`");
                    }
                    (key.clone(), value.value().clone())
                })
                .collect();
            out.push(Layer {
                content,
                media_type,
                annotations,
            });
        }
        out
    }

    /// `chart:`: a directory with a valid Chart.yaml (read now, so that a
    /// bad chart is reported before any lab starts).
    pub(super) fn chart(
        &mut self,
        chart: &Located<String>,
        body: &PushFile,
        scope: &Scope,
        definitions: &Definitions,
    ) -> PushContent {
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
            Ok(metadata) => {
                // A dependency's `repository` may name the run's registry and
                // repositories (`oci://${lab.argoRegistry}/${repo:charts}`);
                // its problems are reported at `chart:`, naming Chart.yaml.
                let chart_file = directory.join(harness_artifact::helm::CHART_FILE);
                let dependency_repositories = metadata
                    .dependencies
                    .iter()
                    .map(|dependency| {
                        for (_, _, message) in
                            self.template_problems(&dependency.repository, scope, definitions)
                        {
                            self.error(
                                chart.location(),
                                format!(
                                    "{}: dependency `{}`, `repository`: {message}",
                                    chart_file.display(),
                                    dependency.name
                                ),
                            );
                        }
                        Template(dependency.repository.clone())
                    })
                    .collect();
                PushContent::Chart(ChartSource {
                    directory,
                    name: metadata.name,
                    version: metadata.version,
                    dependency_repositories,
                })
            }
            Err(error) => {
                self.error(chart.location(), error.to_string());
                PushContent::Files(BTreeMap::new())
            }
        }
    }

    /// `index:`: each variant is `source` or `files`, plus platform,
    /// annotations and its own `as`.
    pub(super) fn index(
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
    pub(super) fn helm(
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

    pub(super) fn source_directory(&mut self, source: &Located<String>) -> PathBuf {
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

    pub(super) fn inline_files(
        &mut self,
        files: &Located<BTreeMap<String, Located<FileValue>>>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> BTreeMap<String, InlineFile> {
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
            let file = match content.value() {
                FileValue::Text(text) => {
                    let located = Located(serde_saphyr::Spanned {
                        value: text.clone(),
                        referenced: *content.location(),
                        defined: *content.location(),
                    });
                    InlineFile::Text(self.template(&located, scope, definitions))
                }
                FileValue::Symlink(target) => {
                    if target.is_empty() || target.contains('\0') {
                        self.error(
                            content.location(),
                            "`symlink:` needs a target, written as the link should hold it: `other.yaml`, `../x`, `/etc/hostname`",
                        );
                    }
                    InlineFile::Symlink {
                        symlink: target.clone(),
                    }
                }
            };
            out.insert(name.clone(), file);
        }
        out
    }

    pub(super) fn repository(&mut self, repository: &Located<String>) -> String {
        if let Some(problem) = names::repository_problem(repository.value()) {
            self.error(repository.location(), problem);
        }
        repository.value().clone()
    }

    pub(super) fn tag_template(
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

    pub(super) fn media_type(&mut self, text: &Located<String>, key: &str) -> String {
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
}
