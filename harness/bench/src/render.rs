//! The Markdown report, and the findings read off the figures.

use std::fmt::Write;

use super::stats::Stats;
use super::sync::SyncMode;
use super::{BenchReport, Finding};

/// What `expect` may add over Argo CD's own push → Synced, seconds
/// (issue 17's target): more is a finding.
pub const EXPECT_OVERHEAD_TARGET: f64 = 0.02;

/// `0.123` → `123 ms`, `12.345` → `12.35 s`, `123.4` → `123 s`.
pub fn fmt_seconds(s: f64) -> String {
    if s.abs() < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s.abs() < 100.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.0} s")
    }
}

fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// One row of the main table.
fn row(out: &mut String, what: &str, stats: Option<&Stats>, note: &str) {
    let cells = match stats {
        Some(s) => format!(
            "{} | {} | {} | {}",
            s.n,
            fmt_seconds(s.min),
            fmt_seconds(s.median),
            fmt_seconds(s.p95)
        ),
        None => "– | – | – | –".to_string(),
    };
    let _ = writeln!(out, "| {what} | {cells} | {note} |");
}

fn sync_rows(out: &mut String, mode: &str, m: &SyncMode) {
    let probes = m
        .harness_probes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    row(
        out,
        &format!("Push → Synced, {mode}: Argo CD (floor)"),
        m.floor.as_ref(),
        "a watch on the Application sees Synced at the new digest",
    );
    row(
        out,
        &format!("Push → Synced, {mode}: harness `expect`"),
        m.harness.as_ref(),
        &format!(
            "the expect engine: a watch, and probes at the runner's backoff; judged (probes + changes watched): {probes}"
        ),
    );
    row(
        out,
        &format!("Push → Synced, {mode}: harness overhead"),
        m.overhead.as_ref(),
        "harness − floor, per iteration",
    );
    row(
        out,
        &format!("Push → Synced, {mode}: polling alone, overhead"),
        m.tight_overhead.as_ref(),
        "the same probe without the watch, 100 ms ×1.5 up to 500 ms, − floor",
    );
    row(
        out,
        &format!("Push → Synced, {mode}: Argo CD `finishedAt`"),
        m.recorded_finish.as_ref(),
        "status.operationState.finishedAt − push end (1 s resolution, truncated)",
    );
}

/// The cold starts' timeline: when each component was started and ready
/// (medians over the starts), and what it waited for.
fn timeline(out: &mut String, phases: &[crate::PhaseStats]) {
    let _ = writeln!(out, "\n## Lab start timeline (cold, medians)\n");
    let _ = writeln!(out, "| Component | started | ready | took |");
    let _ = writeln!(out, "|---|---|---|---|");
    for p in phases {
        let (Some(started), Some(ready)) = (&p.started, &p.ready) else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            p.name,
            fmt_seconds(started.median),
            fmt_seconds(ready.median),
            fmt_seconds((ready.median - started.median).max(0.0))
        );
    }
}

/// The whole report as Markdown.
pub fn markdown(r: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Run {} on the local lab ({:.0} s in all), {} iteration(s) per measurement, Argo CD reconciliation {} s. Machine: {}.\n",
        r.started,
        r.wall_seconds,
        r.settings.iterations,
        r.settings.reconciliation_seconds,
        r.machine.one_line()
    );
    let _ = writeln!(out, "| Measurement | n | min | median | p95 | Notes |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    if let Some(l) = &r.lab_start {
        row(
            &mut out,
            "Lab start, cold → Argo CD ready",
            l.cold.as_ref(),
            "tools cached, nothing running",
        );
        row(
            &mut out,
            "Lab start, `--reuse` (attach)",
            l.reuse.as_ref(),
            &l.note,
        );
        row(
            &mut out,
            "Lab stop",
            l.stop.as_ref(),
            "stop every process, remove the directory",
        );
    }
    if let Some(p) = &r.push {
        for (label, pair) in [("small", &p.small), ("large", &p.large)] {
            let Some(pair) = pair else { continue };
            let what = format!(
                "{} file(s), {} → layer {}",
                pair.files,
                fmt_bytes(pair.bytes),
                fmt_bytes(pair.layer_bytes)
            );
            let pack = pair
                .harness_pack
                .as_ref()
                .map(|s| format!("; read + pack median {}", fmt_seconds(s.median)))
                .unwrap_or_default();
            row(
                &mut out,
                &format!("Push {label}: harness"),
                pair.harness.as_ref(),
                &format!("{what}{pack}"),
            );
            let ratio = pair
                .ratio
                .map(|x| format!("harness / oras (medians) = {x:.2}"))
                .unwrap_or_else(|| "no comparison".into());
            row(
                &mut out,
                &format!("Push {label}: `oras push`"),
                pair.oras.as_ref(),
                &ratio,
            );
        }
        if let Some(b) = &p.large_pack_breakdown {
            let level1_note = format!(
                "same library, level 1: layer {} instead of {}",
                fmt_bytes(b.layer_bytes_level1),
                fmt_bytes(b.layer_bytes_level6)
            );
            for (part, stats, note) in [
                ("read files", &b.read, "ArtifactFiles::from_dir"),
                ("tar", &b.tar, "tar_files, in memory"),
                (
                    "gzip",
                    &b.gzip,
                    "gzip_deterministic: miniz_oxide deflate level 6",
                ),
                (
                    "deflate level 1 (comparison)",
                    &b.deflate_level1,
                    &level1_note,
                ),
                (
                    "sha256 of the layer",
                    &b.sha256_layer,
                    "done twice per push: in pack and again in RegistryClient::push",
                ),
            ] {
                row(
                    &mut out,
                    &format!("Pack large, {part}"),
                    stats.as_ref(),
                    note,
                );
            }
        }
        if let Some(re) = &p.repush {
            row(
                &mut out,
                "Re-push unchanged (large): harness",
                Some(&re.harness),
                &format!(
                    "{} blob(s) uploaded, {} skipped: {}; {} layer(s) packed again{}",
                    re.blobs_uploaded,
                    re.blobs_skipped,
                    if re.skipped_every_blob {
                        "every blob skipped"
                    } else {
                        "NOT every blob skipped"
                    },
                    re.layers_packed,
                    if re.layers_packed == 0 {
                        " (the packer's cache)"
                    } else {
                        ""
                    }
                ),
            );
        }
        if let Some(o) = &p.oras_repush {
            row(
                &mut out,
                "Re-push unchanged (large): `oras push`",
                Some(o),
                "",
            );
        }
    }
    if let Some(s) = &r.push_to_synced {
        if let Some(m) = &s.refresh {
            sync_rows(&mut out, "refresh", m);
        }
        if let Some(m) = &s.polling {
            sync_rows(&mut out, "polling", m);
        }
        if let Some(d) = &s.delete {
            row(
                &mut out,
                "Delete Application: Argo CD (floor)",
                d.floor.as_ref(),
                "a watch sees the Application gone (cascade, finalizer)",
            );
            row(
                &mut out,
                "Delete Application: harness `delete`",
                d.harness.as_ref(),
                "ArgoCd::delete returns",
            );
        }
    }
    if let Some(s) = &r.suite {
        for run in &s.runs {
            let one = Stats::from_samples(&[run.wall_seconds]);
            row(
                &mut out,
                &format!("Suite, `--jobs {}` (wall)", run.jobs),
                one.as_ref(),
                &format!(
                    "{} scenario(s): {} passed, {} failed",
                    run.scenarios.len(),
                    run.passed,
                    run.failed
                ),
            );
        }
    }

    if let Some(l) = &r.lab_start
        && !l.timeline.is_empty()
    {
        timeline(&mut out, &l.timeline);
    }

    if let Some(s) = &r.suite
        && let Some(first) = s.runs.first()
    {
        let _ = writeln!(out, "\n## Scenarios\n");
        let _ = write!(out, "| Scenario |");
        for run in &s.runs {
            let _ = write!(out, " `--jobs {}` |", run.jobs);
        }
        let _ = writeln!(
            out,
            " `for:` windows | active (jobs {}) | slowest step (jobs {}) |",
            first.jobs, first.jobs
        );
        let _ = writeln!(out, "|---|{}---|---|---|", "---|".repeat(s.runs.len()));
        for sc in &first.scenarios {
            let _ = write!(out, "| {} |", sc.name);
            for run in &s.runs {
                let cell = run
                    .scenarios
                    .iter()
                    .find(|x| x.name == sc.name)
                    .map(|x| {
                        let mark = if x.status == "passed" { "" } else { " ✗" };
                        format!("{}{mark}", fmt_seconds(x.seconds))
                    })
                    .unwrap_or_else(|| "–".into());
                let _ = write!(out, " {cell} |");
            }
            let _ = writeln!(
                out,
                " {} | {} | {} |",
                fmt_seconds(sc.fixed_window_seconds),
                fmt_seconds(sc.active_seconds),
                sc.slowest_step
            );
        }
        let active = Stats::from_samples(
            &first
                .scenarios
                .iter()
                .map(|x| x.active_seconds)
                .collect::<Vec<_>>(),
        );
        let _ = writeln!(
            out,
            "\nReference: Argo CD's own e2e tests take {} for a comparable test (not measured here). Here the median scenario is active for {} once its `for:` windows (waiting by design) are taken out.",
            s.reference,
            active.map_or("–".into(), |a| fmt_seconds(a.median))
        );
    }

    if let Some(f) = &r.footprint {
        let _ = writeln!(out, "\n## Footprint (peak resident memory, VmHWM)\n");
        let _ = writeln!(out, "| Process | Peak RSS |");
        let _ = writeln!(out, "|---|---|");
        for p in &f.lab {
            let _ = writeln!(out, "| {} | {:.1} MiB |", p.name, p.peak_rss_mib);
        }
        let _ = writeln!(out, "| **lab total** | **{:.1} MiB** |", f.lab_total_mib);
        if let Some(h) = f.harness_before_push_mib {
            let _ = writeln!(out, "| harness (lab, sync, suite) | {h:.1} MiB |");
        }
        if let Some(h) = f.harness_peak_mib {
            let _ = writeln!(out, "| harness (with the large push) | {h:.1} MiB |");
        }
    }

    if !r.findings.is_empty() {
        let _ = writeln!(out, "\n## Where the harness adds time\n");
        for f in &r.findings {
            let _ = writeln!(
                out,
                "- **{}**\n  Evidence: {}\n  Proposed change: {}",
                f.title, f.evidence, f.proposal
            );
        }
    }
    if !r.problems.is_empty() {
        let _ = writeln!(out, "\n## Not measured\n");
        for p in &r.problems {
            let _ = writeln!(out, "- {}", p.replace('\n', " "));
        }
    }

    let _ = writeln!(out, "\n## Machine and versions\n");
    let m = &r.machine;
    let _ = writeln!(
        out,
        "- {} CPU(s): {}\n- {} GiB memory\n- Linux {} ({})\n- harness built in {} mode",
        m.nproc, m.cpu_model, m.memory_gib, m.kernel, m.os, m.build_profile
    );
    for v in &r.versions {
        let _ = writeln!(out, "- {} {} ({})", v.component, v.version, v.source);
    }
    out
}

/// Where the figures show the harness adding time over the floor.
pub fn findings(r: &BenchReport) -> Vec<Finding> {
    let mut out = vec![];
    if let Some(p) = &r.push
        && let Some(large) = &p.large
        && let (Some(ratio), Some(h), Some(o), Some(b)) = (
            large.ratio,
            &large.harness,
            &large.oras,
            &p.large_pack_breakdown,
        )
        && ratio > 1.2
        && let (Some(gzip), Some(fast), Some(tar), Some(sha)) =
            (&b.gzip, &b.deflate_level1, &b.tar, &b.sha256_layer)
    {
        let pack = large
            .harness_pack
            .as_ref()
            .map_or("?".into(), |s| fmt_seconds(s.median));
        out.push(Finding {
            title: "Large pushes: deflate level 6 dominates".into(),
            evidence: format!(
                "the harness pushes {} in {} against {} for `oras push` (medians, ratio {ratio:.2}); reading and packing take {pack} of it: gzip alone {}, tar {}, one sha256 of the layer {} (done twice per push). Level 1 of the same library takes {} and gives a layer of {} instead of {} on this content. The push step also packs on the async runtime's worker thread, so parallel scenarios wait while a large artifact compresses.",
                fmt_bytes(large.bytes),
                fmt_seconds(h.median),
                fmt_seconds(o.median),
                fmt_seconds(gzip.median),
                fmt_seconds(tar.median),
                fmt_seconds(sha.median),
                fmt_seconds(fast.median),
                fmt_bytes(b.layer_bytes_level1),
                fmt_bytes(b.layer_bytes_level6)
            ),
            proposal: "in harness/artifact/src/pack.rs, `gzip_deterministic`: deflate at level 1 when the tar is larger than 8 MiB, level 6 below (still a pure function of the files, so packing stays reproducible; artifacts of manifest size, and so GOLDEN_DIGEST in harness/testkit/tests/oci_registry.rs and every digest users pinned, keep their digests); and in harness/engine/src/steps/push.rs run `ArtifactFiles::from_dir` + `oci::pack` inside `tokio::task::spawn_blocking`. Scenario fixtures are small: this matters for large artifacts only.".into(),
        });
    }
    if let Some(s) = &r.push_to_synced {
        for (mode, m) in [("refresh", &s.refresh), ("polling", &s.polling)] {
            let Some(m) = m else { continue };
            let (Some(floor), Some(over), Some(tight)) = (&m.floor, &m.overhead, &m.tight_overhead)
            else {
                continue;
            };
            // With its watch, `expect` should be a few milliseconds behind.
            if over.median < EXPECT_OVERHEAD_TARGET {
                continue;
            }
            out.push(Finding {
                title: format!("`expect` sees the new digest late (push → Synced, {mode})"),
                evidence: format!(
                    "Argo CD reports Synced {} (median) after the push; the expect engine notices {} later (median, p95 {}), observations per wait {:?}. With its watch it should see the change within milliseconds; polling alone at its backoff ({}) is bound by the probes' spacing. Polling alone ({}) is {} (median) behind Argo CD.",
                    fmt_seconds(floor.median),
                    fmt_seconds(over.median),
                    fmt_seconds(over.p95),
                    m.harness_probes,
                    s.harness_backoff,
                    s.tight_backoff,
                    fmt_seconds(tight.median)
                ),
                proposal: "run the bench with `--verbose` and look in harness.log for `watch:` lines (harness/engine/src/argocd/mod.rs, `watch_loop`): a watch that cannot start or keeps failing leaves the expect to its probes. A probe is one GET of one object from the lab's apiserver; the runner takes its backoff from `RunOptions::backoff` (= `Backoff::default()`).".into(),
            });
        }
        if let Some(d) = &s.delete
            && let (Some(floor), Some(harness)) = (&d.floor, &d.harness)
            && harness.median - floor.median >= 0.2
        {
            out.push(Finding {
                title: "`delete` waits in whole 500 ms sleeps".into(),
                evidence: format!(
                    "the Application is gone {} (median) after the delete call; ArgoCd::delete returns after {} (median): it checks, then sleeps a fixed 500 ms between checks. Every scenario's `finally` deletes its Application, and cleanup deletes again.",
                    fmt_seconds(floor.median),
                    fmt_seconds(harness.median)
                ),
                proposal: "in harness/engine/src/argocd/mod.rs, `ArgoCd::delete`: replace `tokio::time::sleep(Duration::from_millis(500))` with a growing delay (start at 50 ms, ×1.5, at most 500 ms), e.g. `let mut delay = Duration::from_millis(50);` before the loop and `tokio::time::sleep(delay).await; delay = (delay * 3 / 2).min(Duration::from_millis(500));` in it. The same applies to the 500 ms sleep in `ArgoCd::sync` (waiting for a running operation).".into(),
            });
        }
    }
    if let Some(logs) = &r.lab_logs
        && logs.kwok_watch_progress_warnings > 0
    {
        let etcd = r
            .versions
            .iter()
            .find(|v| v.component == "etcd")
            .map_or("?".to_string(), |v| format!("{} ({})", v.version, v.source));
        let slowest = r
            .suite
            .iter()
            .flat_map(|s| &s.runs)
            .flat_map(|run| run.scenarios.iter().map(move |sc| (run.jobs, sc)))
            .max_by(|a, b| a.1.active_seconds.total_cmp(&b.1.active_seconds))
            .map(|(jobs, sc)| {
                format!(
                    " The slowest scenario, {} (`--jobs {jobs}`), was active for {}; its slowest step: {}.",
                    sc.name,
                    fmt_seconds(sc.active_seconds),
                    sc.slowest_step
                )
            })
            .unwrap_or_default();
        out.push(Finding {
            title: "The lab (not the harness): kwok sees pods late with etcd 3.4".into(),
            evidence: format!(
                "kwok.log has {} warnings that the apiserver cannot serve watch progress requests (`RequestWatchProgress is disabled`: etcd {etcd} lacks them); kwok acts on a pod (ready, deleted) only right after such a warning, when its watch restarts, so pods become ready and go away tens of seconds late. Deployments' health and every cascade deletion of a pod wait for it.{slowest} Compare with `OCI_E2E_ETCD=go cargo xtask bench --only suite` (etcd 3.6).",
                logs.kwok_watch_progress_warnings
            ),
            proposal: "in harness/tools/src/versions.rs, make the Go-built etcd 3.6.8 the default (`DEFAULT_ETCD_SOURCE`), since Debian's etcd 3.4.23 lacks watch progress requests (etcd 3.4.31+/3.5.13+ have them); the build is cached once (~3 min cold, 43 s with a warm Go cache).".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LabStartResult, Settings, push};

    fn phase(name: &str, started_ms: u64, ready_ms: u64) -> harness_labs::local::StartupPhase {
        harness_labs::local::StartupPhase {
            name: name.into(),
            started_ms,
            ready_ms,
        }
    }

    #[test]
    fn the_timeline_has_medians_per_component_in_order_of_readiness() {
        let md = markdown(&report());
        let table: Vec<&str> = md
            .lines()
            .skip_while(|l| !l.starts_with("## Lab start timeline"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert_eq!(
            table,
            [
                "| Component | started | ready | took |",
                "|---|---|---|---|",
                "| etcd | 10 ms | 800 ms | 790 ms |",
                "| kube-apiserver | 13 ms | 3.00 s | 2.99 s |",
                "| argocd-application-controller | 4.00 s | 4.60 s | 600 ms |",
            ],
            "{md}"
        );
    }

    fn report() -> BenchReport {
        BenchReport {
            started: "2026-01-01T00:00:00Z".into(),
            wall_seconds: 300.0,
            settings: Settings {
                iterations: 3,
                reconciliation_seconds: 5.0,
                large_mib: 50,
                suite_jobs: vec![1, 4],
                sections: vec![],
            },
            machine: super::super::Machine {
                nproc: 2,
                memory_gib: 24.0,
                kernel: "6.1.0".into(),
                cpu_model: "Test CPU".into(),
                os: "Debian".into(),
                build_profile: "debug".into(),
                load_average: "0.50 0.40 0.30".into(),
            },
            versions: vec![],
            lab_start: Some(LabStartResult {
                cold: Stats::from_samples(&[20.0, 22.5, 21.0]),
                reuse: Stats::from_samples(&[0.05]),
                stop: None,
                note: String::new(),
                timeline: crate::phase_stats(&[
                    vec![phase("etcd", 10, 700), phase("kube-apiserver", 12, 3100)],
                    vec![
                        phase("kube-apiserver", 14, 2900),
                        phase("etcd", 10, 900),
                        phase("argocd-application-controller", 4000, 4600),
                    ],
                ]),
            }),
            push: Some(push::PushResult {
                small: Some(push::PushPair {
                    files: 3,
                    bytes: 2048,
                    layer_bytes: 1024,
                    harness: Stats::from_samples(&[0.01, 0.02, 0.03]),
                    harness_pack: None,
                    oras: Stats::from_samples(&[0.04, 0.05, 0.06]),
                    ratio: Some(0.4),
                }),
                ..Default::default()
            }),
            push_to_synced: None,
            suite: None,
            footprint: None,
            lab_logs: None,
            findings: vec![],
            problems: vec!["oras could not be provisioned".into()],
        }
    }

    fn sync_mode(floor: &[f64], harness: &[f64]) -> SyncMode {
        let over: Vec<f64> = harness.iter().zip(floor).map(|(h, f)| h - f).collect();
        SyncMode {
            floor: Stats::from_samples(floor),
            harness: Stats::from_samples(harness),
            overhead: Stats::from_samples(&over),
            tight: Stats::from_samples(floor),
            tight_overhead: Stats::from_samples(&[0.05, 0.05, 0.05]),
            recorded_finish: None,
            harness_probes: vec![9, 9, 9],
        }
    }

    #[test]
    fn findings_name_the_watch_only_when_expect_adds_time() {
        let mut r = report();
        r.push_to_synced = Some(crate::sync::SyncResult {
            reconciliation_seconds: 5.0,
            harness_backoff: "100 ms ×1.5 up to 500 ms".into(),
            tight_backoff: "100 ms ×1.5 up to 500 ms".into(),
            // Refresh: the expect saw it 5 ms after Argo CD; polling: 1.5 s.
            refresh: Some(sync_mode(&[0.6, 0.6, 0.6], &[0.605, 0.605, 0.605])),
            polling: Some(sync_mode(&[8.0, 8.0, 8.0], &[9.5, 9.5, 9.5])),
            delete: None,
        });
        let found = findings(&r);
        let titles: Vec<&str> = found.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(
            titles,
            ["`expect` sees the new digest late (push → Synced, polling)"],
            "{found:#?}"
        );
        assert!(
            found[0].evidence.contains("1.50 s later"),
            "{}",
            found[0].evidence
        );
        assert!(
            found[0]
                .proposal
                .contains("harness/engine/src/argocd/mod.rs")
        );
        // The findings are rendered into the Markdown.
        r.findings = found;
        assert!(markdown(&r).contains("## Where the harness adds time"));
    }

    #[test]
    fn seconds_are_formatted_by_magnitude() {
        assert_eq!(fmt_seconds(0.1234), "123 ms");
        assert_eq!(fmt_seconds(1.5), "1.50 s");
        assert_eq!(fmt_seconds(123.4), "123 s");
        assert_eq!(fmt_seconds(-0.2), "-200 ms");
    }

    #[test]
    fn markdown_has_a_row_per_measurement_with_min_median_p95() {
        let md = markdown(&report());
        assert!(
            md.contains("| Measurement | n | min | median | p95 | Notes |"),
            "{md}"
        );
        assert!(
            md.contains("| Lab start, cold → Argo CD ready | 3 | 20.00 s | 21.00 s | 22.50 s | tools cached, nothing running |"),
            "{md}"
        );
        assert!(md.contains("| Lab stop | – | – | – | – |"), "{md}");
        assert!(
            md.contains("| Push small: `oras push` | 3 | 40 ms | 50 ms | 60 ms | harness / oras (medians) = 0.40 |"),
            "{md}"
        );
        assert!(
            md.contains("## Not measured\n\n- oras could not be provisioned"),
            "{md}"
        );
        assert!(md.contains("- 2 CPU(s): Test CPU"), "{md}");
        // Every row of the main table has the header's six cells.
        let table: Vec<&str> = md
            .lines()
            .skip_while(|l| !l.starts_with("| Measurement"))
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert_eq!(table.len(), 2 + 3 + 2, "{md}");
        for line in table {
            assert_eq!(line.matches('|').count(), 7, "{line}");
        }
    }
}
