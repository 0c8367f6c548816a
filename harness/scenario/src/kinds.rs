//! The one list of step kinds. Each entry names a kind's key, its file
//! form (in `file.rs` or the kind's own module), the plan type it loads
//! into, and how `load` builds that plan (a method in the kind's module of
//! `load/`). Everything that enumerates step kinds is generated from this
//! list: the `StepFile` struct and its JSON Schema (`file.rs`), `Action`
//! and its key (`plan.rs`), the loader's dispatch and its "exactly one
//! operation" check (`load/mod.rs`), and the engine's `action_of`
//! (`harness_engine::steps`).
//!
//! Adding a step kind: its file form and plan type, a loader method in a
//! new `load/<kind>.rs`, a `StepAction` in a new
//! `harness_engine::steps::<kind>`, and one entry here.
//!
//! The entries are handed to a callback macro, which picks what it needs:
//!
//! ```text
//! /// doc (the schema's description of the key)
//! key: FileForm as "FileForm" => Variant(PlanType) by |loader, file, scope, definitions, timeout| plan;
//! ```

/// Calls `$callback! { entries }` with every step kind, in the order the
/// keys are listed in messages and the schema.
#[macro_export]
macro_rules! with_step_kinds {
    ($callback:ident) => {
        $callback! {
            /// Package files as an OCI artifact and push it to the lab registry.
            push: PushFile as "PushFile" => Push(Push)
                by |loader, file, scope, definitions, _timeout| loader.push(file, scope, definitions);
            /// Point more tags at an existing manifest (no blob upload).
            tag: TagFile as "TagFile" => Tag(Tag)
                by |loader, file, scope, definitions, _timeout| loader.tag(file, scope, definitions);
            /// Create or update an Argo CD Application for an OCI source. A second `app` step with the same name updates it.
            app: AppFile as "AppFile" => App(App)
                by |loader, file, scope, definitions, _timeout| loader.app(file, scope, definitions);
            /// Start a sync operation (for `sync: manual` apps).
            sync: AppRefFile as "AppRefFile" => Sync(SyncApp)
                by |loader, file, scope, definitions, _timeout| SyncApp {
                    app: loader.app_ref(file.value(), scope, definitions),
                };
            /// Set the refresh annotation so Argo CD looks at the registry now.
            refresh: RefreshFile as "RefreshFile" => Refresh(Refresh)
                by |loader, file, scope, definitions, _timeout| loader.refresh(file.value(), scope, definitions);
            /// Wait for a condition on an Application or a Kubernetes object (`within`), or check that it holds for a while (`for`).
            expect: ExpectFile as "ExpectFile" => Expect(Expect)
                by |loader, file, scope, definitions, timeout| loader.expect(file, scope, definitions, timeout);
            /// Delete an Application, cascading to its resources.
            delete: AppRefFile as "AppRefFile" => Delete(Delete)
                by |loader, file, scope, definitions, _timeout| Delete {
                    app: loader.app_ref(file.value(), scope, definitions),
                };
            /// Sign a pushed manifest, cosign-compatible, with a key generated for the run.
            sign: SignFile as "SignFile" => Sign(Sign)
                by |loader, file, scope, definitions, _timeout| loader.sign(file, scope, definitions);
            /// Check a manifest's cosign signatures against a key: signed, unsigned or signed with another key.
            verify: VerifyFile as "VerifyFile" => Verify(Verify)
                by |loader, file, scope, definitions, _timeout| loader.verify(file, scope, definitions);
            /// Attach a document (an SBOM) to a pushed manifest as an OCI 1.1 referrer.
            attach: AttachFile as "AttachFile" => Attach(Attach)
                by |loader, file, scope, definitions, _timeout| loader.attach(file, scope, definitions);
            /// Stop, start or restart a lab component (registry, argocd-repo-server, argocd-application-controller, redis): what Argo CD does when one is down.
            fault: FaultFile as "FaultFile" => Fault(Fault)
                by |loader, file, _scope, _definitions, _timeout| loader.fault(file);
            /// Apply Kubernetes objects: AppProjects and Secrets for Argo CD, objects in the apps' namespaces.
            apply: ApplyFile as "ApplyFile" => Apply(Apply)
                by |loader, file, scope, definitions, _timeout| loader.apply(file, scope, definitions);
        }
    };
}
