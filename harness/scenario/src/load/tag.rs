//! `tag`: re-tagging a pushed artifact.

use super::*;

impl Loader<'_> {
    pub(super) fn tag(
        &mut self,
        tag: &Located<TagFile>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> Tag {
        let body = tag.value();
        let repository = self.repository(&body.repository);
        if !scope.repositories.contains(&repository) {
            self.error(
                body.repository.location(),
                format!(
                    "no earlier push step in this scenario pushes repository `{repository}`: `tag` can only point at manifests this scenario pushed"
                ),
            );
        }
        let from = self.template(&body.from, scope, definitions);
        if let Some(literal) = from.as_literal()
            && !names::is_digest(&literal)
            && let Some(problem) = names::tag_problem(&literal)
        {
            self.error(
                body.from.location(),
                format!("`from` is neither a tag nor a `sha256:` digest: {problem}"),
            );
        }
        if body.tags.value().is_empty() {
            self.error(
                body.tags.location(),
                "`tags` is empty: give the tags to set, like `[stable]`",
            );
        }
        let tags = body
            .tags
            .value()
            .iter()
            .map(|t| self.tag_template(t, scope, definitions))
            .collect();
        Tag {
            repository,
            from,
            tags,
        }
    }
}
