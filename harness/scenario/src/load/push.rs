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
    pub(super) fn chart(&mut self, chart: &Located<String>, body: &PushFile) -> PushContent {
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
