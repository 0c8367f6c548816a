//! What `cargo xtask e2e` and `cargo xtask lab` do, as library calls:
//! load and select scenarios, bring a lab up, run, report, tear down —
//! including on Ctrl-C and when a lab component crashes.

use std::path::PathBuf;

use crate::lab::LabKind;
use crate::lab::session::{self, LabOptions};
use crate::progress::Progress;

/// Exit codes of the contract.
pub const EXIT_PASSED: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Clone)]
pub struct E2eOptions {
    pub paths: Vec<PathBuf>,
    pub lab: LabKind,
    pub report_dir: Option<PathBuf>,
    pub keep: bool,
    pub reuse: bool,
    /// Labels: a scenario runs when it has any of them (all when empty).
    pub select: Vec<String>,
    pub jobs: usize,
}

/// `cargo xtask lab up|down|status [--dry-run]`.
pub async fn lab_command(
    kind: LabKind,
    up: bool,
    down: bool,
    dry_run: bool,
    progress: &Progress,
) -> anyhow::Result<()> {
    let mut opts = LabOptions::new(kind);
    opts.keep = true;
    match kind {
        LabKind::Local => {
            let root = session::labs_root();
            if up && dry_run {
                print!("{}", crate::lab::local::plan_text(&root));
            } else if up {
                let lab = session::start(&opts, progress).await?;
                println!("{}", lab.usage());
            } else if down {
                let done = crate::lab::local::down(&root, progress).await?;
                if done.is_empty() {
                    println!("no local lab was running");
                }
                for line in done {
                    println!("{line}");
                }
            } else {
                print!(
                    "{}",
                    crate::lab::local::status_text(&crate::lab::local::status(&root))
                );
            }
        }
        LabKind::Kind => {
            let cfg = &opts.kind_config;
            if up && dry_run {
                print!("{}", crate::lab::kind::plan(cfg)?);
            } else if up {
                let lab = session::start(&opts, progress).await?;
                println!("{}", lab.usage());
            } else if down {
                crate::lab::kind::down(cfg, progress).await?;
            } else {
                print!("{}", crate::lab::kind::status(cfg).await);
            }
        }
        LabKind::Existing => {
            anyhow::bail!("the existing lab is not implemented yet; use --lab local or --lab kind")
        }
    }
    Ok(())
}

/// Keeps the scenarios that carry any of `labels` (all when empty).
pub fn select(
    scenarios: Vec<crate::scenario::Scenario>,
    labels: &[String],
) -> Vec<crate::scenario::Scenario> {
    if labels.is_empty() {
        return scenarios;
    }
    scenarios
        .into_iter()
        .filter(|s| s.labels.iter().any(|l| labels.contains(l)))
        .collect()
}

/// `cargo xtask e2e`: returns the exit code of the contract.
pub async fn run(opts: E2eOptions, progress: &Progress) -> u8 {
    use crate::runner::{self, RunOptions};

    // Bad input is found before any lab starts.
    let scenarios = match crate::scenario::load_paths(&opts.paths) {
        Ok(s) => s,
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            eprintln!(
                "{} error(s) in the scenario files; nothing was run",
                diagnostics.len()
            );
            return EXIT_BAD_INPUT;
        }
    };
    let total = scenarios.len();
    let scenarios = select(scenarios, &opts.select);
    if scenarios.is_empty() {
        eprintln!(
            "error: none of the {total} scenario(s) has a label among --select {}",
            opts.select.join(", ")
        );
        return EXIT_BAD_INPUT;
    }

    let run_id = runner::new_run_id();
    let report_dir = opts
        .report_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/e2e").join(&run_id));
    progress.info(format!(
        "run {run_id}: {} scenario(s) on the {} lab, report in {}",
        scenarios.len(),
        opts.lab,
        report_dir.display()
    ));

    // Ctrl-C: the first one cancels (finally steps, cleanup and lab
    // shutdown still run); a second one exits at once — children that
    // are not kept die with us (PDEATHSIG).
    let cancel = tokio_util::sync::CancellationToken::new();
    {
        let cancel = cancel.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                progress.warn("interrupted: stopping scenarios, running finally steps and cleanup (Ctrl-C again to quit now)");
                cancel.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("interrupted twice: exiting now");
                    std::process::exit(130);
                }
            }
        });
    }

    let mut lab_opts = LabOptions::new(opts.lab);
    lab_opts.keep = opts.keep;
    lab_opts.reuse = opts.reuse;
    let lab = tokio::select! {
        lab = session::start(&lab_opts, progress) => match lab {
            Ok(lab) => lab,
            Err(e) => {
                eprintln!("error: the {} lab could not start: {e:#}", opts.lab);
                return EXIT_BAD_INPUT;
            }
        },
        _ = cancel.cancelled() => {
            eprintln!("interrupted while the lab was starting");
            return EXIT_BAD_INPUT;
        }
    };

    // A crashed lab component cancels the run too.
    if let Some(crashed) = lab.crashed() {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            crashed.cancelled().await;
            cancel.cancel();
        });
    }

    let mut run_opts = RunOptions::new(run_id, &report_dir);
    run_opts.jobs = opts.jobs.max(1);
    run_opts.keep = opts.keep;
    run_opts.progress = progress.clone();
    run_opts.cancel = cancel.clone();
    let summary = runner::run(lab.lab(), scenarios, run_opts).await;

    let crash = lab.crash_report();
    let failed = !summary.all_passed();
    if opts.keep && crash.is_none() {
        println!("{}", lab.usage());
    }
    let logs = failed.then(|| report_dir.join("lab-logs"));
    if let Err(e) = lab.shutdown(&lab_opts, progress, logs.as_deref()).await {
        progress.warn(format!("stopping the lab: {e:#}"));
    }

    for s in &summary.scenarios {
        let line = match &s.failure {
            Some(f) => format!(
                "{:<10} {} ({:.1}s): {}",
                format!("{:?}", s.status).to_uppercase(),
                s.name,
                s.duration.as_secs_f64(),
                f.headline()
            ),
            None => format!(
                "{:<10} {} ({:.1}s)",
                format!("{:?}", s.status).to_uppercase(),
                s.name,
                s.duration.as_secs_f64()
            ),
        };
        println!("{line}");
    }
    println!(
        "{} passed, {} failed, {} cancelled in {:.1}s; report: {}",
        summary.passed,
        summary.failed,
        summary.cancelled,
        summary.duration.as_secs_f64(),
        report_dir.display()
    );
    if let Some(crash) = crash {
        eprintln!("error: a lab component crashed during the run:\n{crash}");
        return EXIT_BAD_INPUT;
    }
    if summary.all_passed() {
        EXIT_PASSED
    } else {
        EXIT_FAILED
    }
}
