//! `cargo xtask`: the project's command line. Thin by design: every
//! command parses its flags and calls into the `harness` library.

mod logging;
mod test_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use harness_core::progress::Progress;
use harness_labs::LabKind;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "End-to-end tests of GitOps delivery of OCI artifacts with Argo CD",
    after_help = "Examples:\n  cargo xtask e2e                          run every scenario in scenarios/ on the default lab\n  cargo xtask e2e scenarios/latest-moves.yaml --lab local --keep\n  cargo xtask check scenarios/\n  cargo xtask lab up --lab local           start a lab and leave it running\n  cargo xtask test                         the project's own test suite"
)]
struct Cli {
    /// Write a structured log of what the harness does (registry and
    /// apiserver requests, processes started, waits, steps) to harness.log
    /// in the run's folder (JSON lines; the last line printed names it);
    /// progress is printed line by line. `RUST_LOG` (e.g.
    /// `harness_oci=trace,kube_client=debug`) writes the log too and
    /// chooses more or less.
    #[arg(long, short = 'v', global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LabArg {
    Local,
    Kind,
    Existing,
}

impl From<LabArg> for LabKind {
    fn from(l: LabArg) -> Self {
        match l {
            LabArg::Local => LabKind::Local,
            LabArg::Kind => LabKind::Kind,
            LabArg::Existing => LabKind::Existing,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run scenario files on a lab (exit 0 all passed, 1 a scenario failed, 2 bad input or lab failure).
    #[command(
        after_help = "Example:\n  cargo xtask e2e scenarios/ --lab local --jobs 4 --report target/e2e/mine\n  cargo xtask e2e --shard 2/4 --retries 1 --report target/e2e/shard-2\n  cargo xtask e2e --lab existing --registry registry.example.com/team/e2e --argocd-namespace argocd\n  cargo xtask e2e --lab existing --kubeconfig kubeconfig --registry 127.0.0.1:5000 --plain-http\n  cargo xtask e2e --name 'latest-*' --repeat 5"
    )]
    E2e(E2eArgs),
    /// Write a self-contained scenario from a live Application with an OCI source (on a lab that is up, or --lab existing).
    #[command(
        after_help = "Examples:\n  cargo xtask e2e scenarios/tagged-release.yaml --lab local --keep   then, for one of its Applications:\n  cargo xtask capture demo-ab12cd3 --lab local -o my-bug.yaml\n  cargo xtask capture my-app --lab existing --registry registry.example.com/team -o bug.yaml --fixtures bug-files\n  cargo xtask e2e my-bug.yaml --lab local"
    )]
    Capture(CaptureArgs),
    /// Find the Argo CD release where a scenario's outcome changes: binary search between a good and a bad release, one lab per release tried.
    #[command(
        after_help = "Example:\n  cargo xtask bisect scenarios/layers-extra-blob-skipped.yaml --bad v3.1.0 --good v3.3.10\n  cargo xtask bisect my-bug.yaml --good v3.1.8 --bad v3.3.10 --releases v3.1.8,v3.2.12,v3.3.10"
    )]
    Bisect(BisectArgs),
    /// Validate scenario files without a lab (exit 0 valid, 2 otherwise).
    #[command(after_help = "Example:\n  cargo xtask check scenarios/ my-bug.yaml")]
    Check {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of scenario files (for editors).
    #[command(after_help = "Example:\n  cargo xtask schema > scenario.schema.json")]
    Schema,
    /// Start, stop or inspect a lab.
    #[command(
        after_help = "Examples:\n  cargo xtask lab up --lab local\n  cargo xtask lab up --lab local --registry-auth --registry-tls\n  cargo xtask lab status --lab local\n  cargo xtask lab up --lab kind --dry-run\n  cargo xtask lab down --lab local"
    )]
    Lab {
        #[arg(value_enum)]
        action: LabAction,
        #[arg(long, value_enum)]
        lab: Option<LabArg>,
        /// Print what would be done, touch nothing.
        #[arg(long)]
        dry_run: bool,
        /// KIND lab: build and run the offline node and component images
        /// (docs/labs/kind.md) even where kind's can be pulled.
        #[arg(long)]
        build_images: bool,
        /// Argo CD release of the lab (`lab up`; default: the version table's).
        #[arg(long, value_name = "V")]
        argocd_version: Option<String>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Work with reports of earlier runs.
    Report {
        #[command(subcommand)]
        action: ReportAction,
    },
    /// Provision the local lab's binaries and report where each came from.
    #[command(after_help = "Example:\n  cargo xtask tools")]
    Tools {
        /// Also provision oras (benchmarks).
        #[arg(long)]
        with_oras: bool,
    },
    /// The project's test suite: installs what it needs, then runs cargo nextest.
    #[command(
        after_help = "Example:\n  cargo xtask test\n  cargo xtask test -- oci_   (arguments after -- go to cargo nextest run)"
    )]
    Test {
        /// Arguments passed to `cargo nextest run`.
        #[arg(last = true)]
        nextest_args: Vec<String>,
    },
    /// Interrupt runs at random moments (SIGINT, SIGTERM, SIGKILL) and count what each left behind: processes, ports, containers, lab directories, Applications (exit 0 nothing left, 1 something was, 2 could not run).
    #[command(
        after_help = "Examples:\n  cargo xtask soak --runs 100               the figure in docs/reliability.md (about 40 minutes)\n  cargo xtask soak --runs 5 --seed 42 scenarios/pinned-digest.yaml"
    )]
    Soak {
        /// How many interrupted runs.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10000))]
        runs: u32,
        /// Seed of the interrupts (signal, lab, moment); printed, so a soak can be replayed.
        #[arg(long)]
        seed: Option<u64>,
        /// Latest moment of an interrupt after a run starts, in seconds. A run
        /// of the default subset lasts 5-10 s on its own lab (from the lab's
        /// seed), about 3 s on a kept one: later interrupts find it ended.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=3600))]
        max_delay: u64,
        /// Only runs that start their own lab (no kept lab, so no Argo CD objects to count).
        #[arg(long)]
        own_lab_only: bool,
        /// Where labs, reports and each run's log go (default: a new folder under target/soak).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Scenario files or folders (default: a short subset of scenarios/).
        paths: Vec<PathBuf>,
    },
    /// Benchmarks on the local lab (lab start, push vs oras, push to Synced, suite, memory); figures in target/bench/bench.{json,md}. Reports, never fails the suite.
    #[command(
        after_help = "Examples:\n  cargo xtask bench                        everything, 3 iterations (about 7 minutes on 2 cores)\n  cargo xtask bench --iterations 5\n  cargo xtask bench --only push,sync --large-mib 10"
    )]
    Bench {
        /// Samples per measurement (the suite runs once per --jobs value).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
        iterations: u32,
        /// Argo CD reconciliation interval of the benchmark's labs, in seconds.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
        reconciliation: u64,
        /// Size of the large artifact in MiB.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=2048))]
        large_mib: u32,
        /// Only these sections (comma-separated): lab, push, sync, suite.
        #[arg(long, value_delimiter = ',')]
        only: Vec<harness_bench::Section>,
        /// Scenario directory for the suite section.
        #[arg(long, default_value = "scenarios")]
        scenarios: PathBuf,
        /// Where bench.json, bench.md and the suite reports go.
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LabAction {
    Up,
    Down,
    Status,
}

#[derive(Args)]
struct E2eArgs {
    /// Scenario files or directories (default: scenarios/).
    paths: Vec<PathBuf>,
    /// Which lab (default: kind when a Docker engine and `kind` are usable, local otherwise).
    #[arg(long, value_enum)]
    lab: Option<LabArg>,
    /// Where JUnit XML, the JSON summary and diagnostics go (default target/e2e/<run-id>/).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Leave the lab running afterwards, and what the scenarios leave in it (their `finally` steps still run).
    #[arg(long)]
    keep: bool,
    /// Run on a lab that is already up (`cargo xtask lab up`).
    #[arg(long)]
    reuse: bool,
    /// KIND lab: run the node and component images built here from Debian
    /// packages and Go modules (cached), even where kind's can be pulled.
    #[arg(long)]
    build_images: bool,
    /// Only scenarios with this label (repeatable: any of them).
    #[arg(long)]
    select: Vec<String>,
    /// Scenarios run in parallel.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Only scenarios whose name matches (repeatable: any of them); with * or ? a glob on the whole name, otherwise a substring.
    #[arg(long = "name", value_name = "PATTERN")]
    names: Vec<String>,
    /// Run only shard K of N of the selected scenarios (round-robin over names sorted; every scenario is in exactly one shard).
    #[arg(long, value_name = "K/N")]
    shard: Option<harness_e2e::Shard>,
    /// Re-run failed scenarios up to N times (new names each time); one that then passes is reported flaky, and counts as passed for the exit code.
    #[arg(long, default_value_t = 0, value_name = "N")]
    retries: u32,
    /// Run every selected scenario N times, each with its own names (flake hunting); reported as NAME#K.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: u32,
    /// Argo CD release(s) to run on (local and kind labs): one, or a comma-separated list for a matrix (one lab each, a scenario × version table).
    #[arg(long, value_name = "V[,V...]", value_delimiter = ',')]
    argocd_version: Vec<String>,
    /// A matrix over the documented default set of releases (docs/argocd-versions.md).
    #[arg(long, conflicts_with = "argocd_version")]
    argocd_matrix: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    existing: ExistingArgs,
}

/// How the local lab secures its registry.
#[derive(Args)]
#[command(next_help_heading = "Lab registry (--lab local)")]
struct RegistryArgs {
    /// The lab registry wants a user and password (htpasswd, random per lab); the harness and Argo CD (a repo-creds Secret) use them.
    #[arg(long)]
    registry_auth: bool,
    /// The lab registry serves HTTPS from a CA made for the lab; the harness trusts that CA, Argo CD through argocd-tls-certs-cm.
    #[arg(long)]
    registry_tls: bool,
}

impl RegistryArgs {
    fn security(&self) -> harness_e2e::RegistrySecurity {
        harness_e2e::RegistrySecurity {
            auth: self.registry_auth,
            tls: self.registry_tls,
        }
    }

    /// The lab: `--lab` if given; the local lab when these flags are
    /// given without it (only it has them); else the default.
    async fn lab_kind(&self, arg: Option<LabArg>, progress: &Progress) -> LabKind {
        if arg.is_none() && self.security().any() {
            progress.info(format!(
                "lab: local ({} apply to it only; choose with --lab)",
                self.security().flags().join(", ")
            ));
            return LabKind::Local;
        }
        lab_kind(arg, progress).await
    }

    /// Whether these flags fit lab `kind`; if not, says why on stderr.
    fn fit(&self, kind: LabKind) -> bool {
        match harness_labs::session::check_registry_security(kind, self.security()) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("error: {e}");
                false
            }
        }
    }
}

#[derive(Args)]
struct BisectArgs {
    /// The scenario file.
    file: PathBuf,
    /// A release on which the scenario passes.
    #[arg(long, value_name = "V")]
    good: String,
    /// A release on which it fails (older or newer than --good).
    #[arg(long, value_name = "V")]
    bad: String,
    /// Only these releases are candidates (e.g. the ones already built); default: every release between --good and --bad that builds.
    #[arg(long, value_name = "V[,V...]", value_delimiter = ',')]
    releases: Vec<String>,
    /// Which lab (local or kind; default as for e2e).
    #[arg(long, value_enum)]
    lab: Option<LabArg>,
    /// Where each version's report goes (default target/bisect/<run-id>/).
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(Args)]
struct CaptureArgs {
    /// The Application's name (in Argo CD's namespace).
    app: String,
    /// Which lab holds it (default: kind when a Docker engine and `kind` are usable, local otherwise).
    #[arg(long, value_enum)]
    lab: Option<LabArg>,
    /// Write the scenario to FILE (default: standard output).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write the artifact's files under DIR (one directory per layer) instead of inline; needed for large or binary files.
    #[arg(long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
    /// The scenario's name (default: the Application's, without a run suffix).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    existing: ExistingArgs,
}

/// Flags of `--lab existing` (an error with any other lab).
#[derive(Args)]
#[command(next_help_heading = "Existing cluster (--lab existing)")]
struct ExistingArgs {
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Namespace where Argo CD runs (default: argocd).
    #[arg(long, value_name = "NAMESPACE")]
    argocd_namespace: Option<String>,
    /// Registry to push to: host[:port][/prefix]. Credentials: OCI_E2E_REGISTRY_USERNAME/PASSWORD, else ~/.docker/config.json auths.
    #[arg(long, value_name = "HOST[/PREFIX]")]
    registry: Option<String>,
    /// The same registry as Argo CD reaches it, when that differs (without /prefix the push prefix is used).
    #[arg(long, value_name = "HOST[/PREFIX]")]
    registry_from_argo: Option<String>,
    /// Speak plain HTTP to the registry (TLS otherwise).
    #[arg(long)]
    plain_http: bool,
    /// Do not verify the registry's TLS certificate.
    #[arg(long)]
    insecure_tls: bool,
    /// Create an Argo CD repo-creds secret for this run's repositories (deleted at the end).
    #[arg(long)]
    create_repo_creds: bool,
}

impl ExistingArgs {
    /// The flags given, by name (to refuse them with another lab).
    fn given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        let flags = [
            ("--kubeconfig", self.kubeconfig.is_some()),
            ("--context", self.context.is_some()),
            ("--argocd-namespace", self.argocd_namespace.is_some()),
            ("--registry", self.registry.is_some()),
            ("--registry-from-argo", self.registry_from_argo.is_some()),
            ("--plain-http", self.plain_http),
            ("--insecure-tls", self.insecure_tls),
            ("--create-repo-creds", self.create_repo_creds),
        ];
        for (flag, set) in flags {
            if set {
                given.push(flag);
            }
        }
        given
    }

    /// Whether these flags fit lab `kind`; if not, says so on stderr
    /// (`doing`: "this run uses", for "... the local lab").
    fn fit(&self, kind: LabKind, doing: &str) -> bool {
        let given = self.given();
        if kind == LabKind::Existing || given.is_empty() {
            return true;
        }
        eprintln!(
            "error: {} apply only to --lab existing ({doing} the {kind} lab); drop them or pass --lab existing",
            given.join(", ")
        );
        false
    }

    fn config(self) -> harness_labs::existing::ExistingLabConfig {
        let defaults = harness_labs::existing::ExistingLabConfig::default();
        harness_labs::existing::ExistingLabConfig {
            kubeconfig: self.kubeconfig,
            context: self.context,
            argocd_namespace: self.argocd_namespace.unwrap_or(defaults.argocd_namespace),
            registry: self.registry,
            registry_from_argo: self.registry_from_argo,
            plain_http: self.plain_http,
            insecure_tls: self.insecure_tls,
            create_repo_creds: self.create_repo_creds,
            ..defaults
        }
    }
}

#[derive(Subcommand)]
enum ReportAction {
    /// Merge the reports of several runs (e.g. the shards of one suite) into one junit.xml and summary.json.
    #[command(
        after_help = "Example:\n  cargo xtask report merge target/e2e/shard-1 target/e2e/shard-2 --out target/e2e/all"
    )]
    Merge {
        /// Report directories (or junit.xml files).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Where the merged junit.xml and summary.json go.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Where a command's log goes (`--verbose` or `RUST_LOG`): `now`, a
/// folder known before it runs (`--report`, `--out`), opened at once;
/// otherwise the run's folder once the library names it, or `fallback` at
/// the end when it never does (bad input before a run has a folder, `lab`,
/// `capture`, `tools`...).
struct LogPlace {
    now: Option<PathBuf>,
    fallback: PathBuf,
}

impl LogPlace {
    fn of(command: &Command) -> LogPlace {
        use logging::LOG_FILE;
        let labs = || harness_labs::session::labs_root();
        let here = |name: &str| PathBuf::from("target/xtask").join(format!("harness-{name}.log"));
        let (now, fallback) = match command {
            Command::E2e(a) => (
                a.report.as_ref().map(|d| d.join(LOG_FILE)),
                PathBuf::from("target/e2e").join(LOG_FILE),
            ),
            Command::Bisect(a) => (
                a.report.as_ref().map(|d| d.join(LOG_FILE)),
                PathBuf::from("target/bisect").join(LOG_FILE),
            ),
            // The folder of its seed, named once the seed is drawn.
            Command::Soak { out, .. } => (out.as_ref().map(|d| d.join(LOG_FILE)), here("soak")),
            Command::Bench { out, .. } => (Some(out.join(LOG_FILE)), here("bench")),
            Command::Report {
                action: ReportAction::Merge { out, .. },
            } => (Some(out.join(LOG_FILE)), here("report")),
            // No run folder: the labs' directory.
            Command::Lab { action, .. } => {
                let action = match action {
                    LabAction::Up => "up",
                    LabAction::Down => "down",
                    LabAction::Status => "status",
                };
                (None, labs().join(format!("harness-lab-{action}.log")))
            }
            Command::Capture(_) => (None, labs().join("harness-capture.log")),
            Command::Tools { .. } => (None, here("tools")),
            Command::Test { .. } => (None, here("test")),
            Command::Check { .. } => (None, here("check")),
            Command::Schema => (None, here("schema")),
        };
        LogPlace { now, fallback }
    }
}

fn main() -> ExitCode {
    harness_core::init_crypto();
    let cli = Cli::parse();
    let log = logging::init(cli.verbose);
    let place = LogPlace::of(&cli.command);
    if let (Some(log), Some(now)) = (&log, &place.now) {
        log.open(now);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(run(cli));
    // The last line: where the log is (stderr, so that what a command
    // prints on stdout, a scenario or a schema, stays as it is).
    if let Some(log) = &log {
        eprintln!("{}", log.finish(&place.fallback));
    }
    ExitCode::from(code)
}

async fn lab_kind(arg: Option<LabArg>, progress: &Progress) -> LabKind {
    match arg {
        Some(l) => l.into(),
        None => {
            let (kind, why) = harness_labs::session::default_kind().await;
            progress.info(format!("lab: {kind} ({why}; choose with --lab)"));
            kind
        }
    }
}

/// Ctrl-C or SIGTERM (what CI cancellation, `timeout` and container
/// runtimes send): the first cancels the returned token (steps stop;
/// `finally`, cleanup and the lab's shutdown still run); a second exits at
/// once, and children that are not kept die with us (PDEATHSIG).
fn interrupt_cancels(progress: &Progress) -> tokio_util::sync::CancellationToken {
    let cancel = tokio_util::sync::CancellationToken::new();
    let token = cancel.clone();
    let progress = progress.clone();
    tokio::spawn(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let Some(first) = next_interrupt(&mut terminate).await else {
            return;
        };
        progress.warn(format!(
            "interrupted ({first}): stopping scenarios, running finally steps and cleanup (Ctrl-C again to quit now)"
        ));
        token.cancel();
        if let Some(second) = next_interrupt(&mut terminate).await {
            eprintln!("interrupted twice ({second}): exiting now");
            std::process::exit(if second == "SIGTERM" { 143 } else { 130 });
        }
    });
    cancel
}

/// The next Ctrl-C (SIGINT) or SIGTERM, by name; `None` if neither can be
/// listened for.
async fn next_interrupt(
    terminate: &mut Option<tokio::signal::unix::Signal>,
) -> Option<&'static str> {
    let sigterm = async {
        match terminate {
            Some(signal) => signal.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.ok().map(|()| "Ctrl-C"),
        received = sigterm => received.map(|()| "SIGTERM"),
    }
}

async fn run(cli: Cli) -> u8 {
    let progress = if cli.verbose {
        Progress::lines()
    } else {
        Progress::new()
    };
    match cli.command {
        Command::E2e(a) => {
            let kind = a.registry.lab_kind(a.lab, &progress).await;
            if !a.existing.fit(kind, "this run uses") || !a.registry.fit(kind) {
                return 2;
            }
            let opts = harness_e2e::E2eOptions {
                paths: if a.paths.is_empty() {
                    vec![PathBuf::from("scenarios")]
                } else {
                    a.paths
                },
                lab: kind,
                report_dir: a.report,
                keep: a.keep,
                reuse: a.reuse,
                select: a.select,
                jobs: a.jobs.max(1),
                names: a.names,
                shard: a.shard,
                retries: a.retries,
                repeat: a.repeat,
                existing: a.existing.config(),
                cancel: interrupt_cancels(&progress),
                build_images: a.build_images,
                kind_config: None,
                argocd_versions: if a.argocd_matrix {
                    harness_e2e::matrix::DEFAULT_MATRIX
                        .iter()
                        .map(|v| v.to_string())
                        .collect()
                } else {
                    a.argocd_version
                },
                registry: a.registry.security(),
            };
            let outcome = harness_e2e::run(opts, &progress).await;
            for line in &outcome.output {
                println!("{line}");
            }
            for line in &outcome.errors {
                eprintln!("{line}");
            }
            outcome.code
        }
        Command::Capture(a) => {
            let kind = lab_kind(a.lab, &progress).await;
            if !a.existing.fit(kind, "this capture reads") {
                return 2;
            }
            let cmd = harness_e2e::CaptureCommand {
                lab: kind,
                existing: a.existing.config(),
                capture: harness_e2e::CaptureOptions {
                    app: a.app,
                    name: a.name,
                    fixtures: a.fixtures,
                    output: a.output,
                },
            };
            match harness_e2e::capture_command(cmd, &progress).await {
                Ok(text) => {
                    print!("{text}");
                    0
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    2
                }
            }
        }
        Command::Bisect(a) => {
            let kind = lab_kind(a.lab, &progress).await;
            let opts = harness_e2e::bisect::BisectOptions {
                file: a.file,
                good: a.good,
                bad: a.bad,
                releases: a.releases,
                lab: kind,
                report_dir: a.report,
                cancel: interrupt_cancels(&progress),
            };
            let outcome = harness_e2e::bisect::run(opts, &progress).await;
            for line in &outcome.output {
                println!("{line}");
            }
            for line in &outcome.errors {
                eprintln!("{line}");
            }
            outcome.code
        }
        Command::Report {
            action: ReportAction::Merge { inputs, out },
        } => match harness_engine::report::merge_reports(&inputs, &out) {
            Ok(outcome) => {
                println!(
                    "merged {} report(s): {} testsuite(s), {} test(s), {} failure(s), {} error(s) into {}",
                    outcome.inputs,
                    outcome.suites,
                    outcome.tests,
                    outcome.failures,
                    outcome.errors,
                    out.display()
                );
                for (name, inputs) in &outcome.duplicates {
                    let inputs: Vec<String> =
                        inputs.iter().map(|p| p.display().to_string()).collect();
                    eprintln!(
                        "warning: scenario {name} is in more than one report ({}): did every shard select from the same files with the same filters?",
                        inputs.join(", ")
                    );
                }
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        },
        Command::Check { paths } => {
            let mut out = std::io::stdout();
            if harness_scenario::check_paths(&paths, &mut out) {
                0
            } else {
                2
            }
        }
        Command::Schema => match serde_json::to_string_pretty(&harness_scenario::json_schema()) {
            Ok(s) => {
                println!("{s}");
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        },
        Command::Lab {
            action,
            lab,
            dry_run,
            build_images,
            argocd_version,
            registry,
        } => {
            let kind = registry.lab_kind(lab, &progress).await;
            if !registry.fit(kind) {
                return 2;
            }
            let cmd = harness_e2e::LabCommand {
                kind,
                up: matches!(action, LabAction::Up),
                down: matches!(action, LabAction::Down),
                dry_run,
                build_images,
                argocd_version,
                registry: registry.security(),
            };
            match harness_e2e::lab_command(cmd, &progress).await {
                Ok(text) => {
                    print!("{text}");
                    0
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    2
                }
            }
        }
        Command::Tools { with_oras } => {
            let mut opts = harness_tools::ProvisionOptions::default();
            if with_oras {
                opts.tools.insert(harness_tools::Tool::Oras);
            }
            match harness_tools::provision(&opts, &progress).await {
                Ok(tb) => {
                    print!("{}", tb.render_report());
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            }
        }
        Command::Test { nextest_args } => test_cmd::run(&nextest_args, &progress).await,
        Command::Soak {
            runs,
            seed,
            max_delay,
            own_lab_only,
            out,
            paths,
        } => {
            let program = match std::env::current_exe() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: cannot find this program's own executable: {e}");
                    return 2;
                }
            };
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
            let work_dir =
                out.unwrap_or_else(|| PathBuf::from("target/soak").join(format!("seed-{seed}")));
            harness_core::log::run_folder(&work_dir);
            let scenarios = if paths.is_empty() {
                harness_e2e::soak::DEFAULT_SCENARIOS
                    .iter()
                    .map(PathBuf::from)
                    .collect()
            } else {
                paths
            };
            progress.info(format!(
                "soak: {runs} run(s), seed {seed}, in {}",
                work_dir.display()
            ));
            let opts = harness_e2e::soak::SoakOptions {
                program,
                runs,
                seed,
                scenarios,
                work_dir,
                max_delay: std::time::Duration::from_secs(max_delay),
                kept_lab: !own_lab_only,
                cancel: interrupt_cancels(&progress),
            };
            let outcome = harness_e2e::soak::run(opts, &progress).await;
            for line in &outcome.output {
                println!("{line}");
            }
            for line in &outcome.errors {
                eprintln!("{line}");
            }
            outcome.code
        }
        Command::Bench {
            iterations,
            reconciliation,
            large_mib,
            only,
            scenarios,
            out,
        } => {
            let mut opts = harness_bench::BenchOptions {
                iterations: iterations as usize,
                reconciliation: std::time::Duration::from_secs(reconciliation),
                large_mib: large_mib as usize,
                scenarios,
                out_dir: out,
                ..Default::default()
            };
            if !only.is_empty() {
                opts.sections = only.into_iter().collect();
            }
            match harness_bench::run(&opts, &progress).await {
                Ok(report) => {
                    print!("{}", harness_bench::render::markdown(&report));
                    println!(
                        "\nfigures: {}/bench.json and {}/bench.md",
                        opts.out_dir.display(),
                        opts.out_dir.display()
                    );
                    0
                }
                Err(e) => {
                    eprintln!("error: the benchmark could not run: {e:#}");
                    2
                }
            }
        }
    }
}
