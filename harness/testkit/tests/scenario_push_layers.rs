//! Loading the 1.1 push keys (`symlinks`, `{symlink: TARGET}`, `layers`,
//! `config`, `artifactType`): what the plan holds, and bad input reported
//! at file:line:column.

use harness_scenario::{
    Action, InlineFile, LayerContent, Push, PushContent, RawBlob, Scenario, Symlinks, Template,
};

mod common;

/// A scenario file next to a directory `dir/` holding one file.
fn load(yaml: &str) -> Result<Scenario, Vec<String>> {
    common::load_scenario(yaml, |directory| {
        std::fs::create_dir_all(directory.join("dir")).expect("dir");
        std::fs::write(directory.join("dir/a.yaml"), "kind: ConfigMap\n").expect("file");
    })
}

fn push(scenario: &Scenario, index: usize) -> &Push {
    match &scenario.steps[index].action {
        Action::Push(push) => push,
        other => panic!("step {index} is {other:?}"),
    }
}

#[test]
fn inline_symlinks_and_the_symlinks_mode_reach_the_plan() {
    let scenario = load(
        "name: s
steps:
  - push:
      repository: r
      files:
        a.yaml: 'x: 1'
        n.yaml: 12
        link.yaml: {symlink: ../../etc/passwd}
  - push: {source: dir, repository: r, symlinks: follow}
  - push: {source: dir, repository: r}
",
    )
    .expect("valid");
    let PushContent::Files(files) = &push(&scenario, 0).content else {
        panic!("inline files");
    };
    assert_eq!(files["a.yaml"], InlineFile::Text(Template("x: 1".into())));
    // A number stays the text it was before symlinks existed.
    assert_eq!(files["n.yaml"], InlineFile::Text(Template("12".into())));
    assert_eq!(
        files["link.yaml"],
        InlineFile::Symlink {
            symlink: "../../etc/passwd".into()
        }
    );
    assert_eq!(push(&scenario, 1).symlinks, Symlinks::Follow);
    assert_eq!(
        push(&scenario, 2).symlinks,
        Symlinks::Keep,
        "oras's way is the default"
    );
}

#[test]
fn layers_config_and_artifact_type_reach_the_plan_in_order() {
    let scenario = load(
        "name: s
steps:
  - push:
      repository: r
      config: {mediaType: application/vnd.oci.empty.v1+json, content: ''}
      artifactType: application/vnd.example.t
      layers:
        - source: dir
          symlinks: follow
        - files: {b.yaml: 'y: ${lab.registry}'}
          mediaType: application/vnd.oci.image.layer.v1.tar
        - content: raw text
          mediaType: application/vnd.example.note
          annotations: {k: v}
",
    )
    .expect("valid");
    let push = push(&scenario, 0);
    assert_eq!(
        push.config,
        Some(RawBlob {
            media_type: "application/vnd.oci.empty.v1+json".into(),
            content: String::new()
        })
    );
    assert_eq!(
        push.artifact_type.as_deref(),
        Some("application/vnd.example.t")
    );
    let PushContent::Layers(layers) = &push.content else {
        panic!("layers");
    };
    assert_eq!(layers.len(), 3);
    assert!(matches!(
        &layers[0].content,
        LayerContent::Directory { symlinks: Symlinks::Follow, path } if path.ends_with("dir")
    ));
    assert_eq!(
        layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert!(
        layers[0].annotations.is_empty(),
        "a layer has exactly the annotations written"
    );
    assert!(matches!(&layers[1].content, LayerContent::Files(f) if f.contains_key("b.yaml")));
    assert_eq!(
        layers[1].media_type,
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert!(matches!(&layers[2].content, LayerContent::Raw(text) if text == "raw text"));
    assert_eq!(layers[2].annotations["k"], "v");
}

#[test]
fn bad_new_keys_are_reported_where_they_are_written() {
    let errors = load(
        "name: s
steps:
  - push: {files: {a.yaml: x}, repository: r, symlinks: follow}
  - push: {chart: dir, repository: r, config: {mediaType: a/b, content: x}}
  - push: {index: {manifests: [{files: {a.yaml: x}}]}, repository: r, artifactType: a/b}
  - push: {layers: [], repository: r}
  - push: {layers: [{content: x}], repository: r}
  - push: {layers: [{files: {a.yaml: x}, content: x, mediaType: a/b}], repository: r}
  - push: {layers: [{files: {a.yaml: x}}], repository: r, layerMediaType: a/b}
  - push: {files: {a.yaml: {symlink: ''}}, repository: r}
  - push: {source: dir, layers: [{files: {a.yaml: x}}], repository: r}
  - push: {files: {a.yaml: x}, repository: r, artifactType: not-a-type}
  - push: {layers: [{files: {a.yaml: x}, symlinks: keep}], repository: r}
",
    )
    .expect_err("invalid");
    let expected = [
        ("3:57: ", "`symlinks` applies to a `source` directory"),
        ("4:19: ", "has no Chart.yaml"),
        ("4:47: ", "`config` does not apply to `chart` or `index`"),
        (
            "5:85: ",
            "`artifactType` does not apply to `chart` or `index`",
        ),
        ("6:20: ", "`layers` is empty"),
        ("7:21: ", "a `content:` layer needs its `mediaType`"),
        ("8:21: ", "`files`, `content` together"),
        ("9:75: ", "`layerMediaType` does not apply to `layers`"),
        ("10:28: ", "`symlink:` needs a target"),
        ("11:11: ", "`source`, `layers` together"),
        ("12:61: ", "`artifactType: not-a-type` is not a media type"),
        (
            "13:52: ",
            "`symlinks` applies to a layer's `source` directory",
        ),
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for ((at, message), error) in expected.iter().zip(&errors) {
        assert!(
            error.starts_with(at) && error.contains(message),
            "want {at}{message}\ngot {errors:#?}"
        );
    }
}

#[test]
fn a_structural_mistake_in_a_symlink_value_names_its_place() {
    let errors = load(
        "name: s
steps:
  - push: {files: {a.yaml: {link: x}}, repository: r}
",
    )
    .expect_err("invalid");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("3:"), "{errors:?}");
    assert!(
        errors[0].contains("`link`") && errors[0].contains("{symlink: TARGET}"),
        "{errors:?}"
    );
}
