//! The poller behind `expect`: eventually / consistently with backoff, driven
//! by a scripted probe closure under paused tokio time (no real waiting).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness_engine::expect::poll::{
    Backoff, Observation, PollOutcome, consistently, consistently_watched, eventually,
    eventually_try, eventually_watched,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A probe that answers from a script (the last answer repeats) and records
/// when it was called, relative to the start.
#[derive(Clone)]
struct Script {
    answers: Vec<bool>,
    calls: Arc<Mutex<Vec<Duration>>>,
    start: Instant,
}

impl Script {
    fn new(answers: &[bool]) -> Self {
        Script {
            answers: answers.to_vec(),
            calls: Arc::default(),
            start: Instant::now(),
        }
    }

    fn probe(&self) -> impl Future<Output = Observation<usize>> + use<> {
        let mut calls = self.calls.lock().unwrap();
        let n = calls.len();
        calls.push(self.start.elapsed());
        let holds = *self.answers.get(n).or(self.answers.last()).unwrap();
        async move { Observation { holds, detail: n } }
    }

    fn call_times_ms(&self) -> Vec<u128> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(Duration::as_millis)
            .collect()
    }
}

/// Whole-millisecond delays (tokio's timer rounds sub-millisecond deadlines up).
fn doubling() -> Backoff {
    Backoff {
        initial: Duration::from_millis(100),
        factor: 2.0,
        max: Duration::from_secs(1),
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[tokio::test(start_paused = true)]
async fn eventually_holds_on_first_probe() {
    let script = Script::new(&[true]);
    let outcome = eventually(
        Instant::now() + secs(10.0),
        Backoff::default(),
        &CancellationToken::new(),
        || script.probe(),
    )
    .await;
    assert_eq!(
        outcome,
        PollOutcome::Held {
            last: 0,
            probes: 1,
            elapsed: Duration::ZERO
        }
    );
}

#[tokio::test(start_paused = true)]
async fn eventually_backs_off_until_it_holds() {
    let script = Script::new(&[false, false, false, false, false, false, true]);
    let outcome = eventually(
        Instant::now() + secs(60.0),
        doubling(),
        &CancellationToken::new(),
        || script.probe(),
    )
    .await;
    // Delays 100, 200, 400, 800, then capped at 1000 ms.
    assert_eq!(
        script.call_times_ms(),
        vec![0, 100, 300, 700, 1500, 2500, 3500]
    );
    assert_eq!(
        outcome,
        PollOutcome::Held {
            last: 6,
            probes: 7,
            elapsed: secs(3.5)
        }
    );
}

#[test]
fn default_backoff_is_100ms_growing_by_half_up_to_500ms() {
    let backoff = Backoff::default();
    assert_eq!(
        (backoff.initial, backoff.factor, backoff.max),
        (Duration::from_millis(100), 1.5, Duration::from_millis(500))
    );
}

#[tokio::test(start_paused = true)]
async fn eventually_delay_is_capped() {
    let script = Script::new(&[false]);
    let backoff = Backoff {
        initial: Duration::from_millis(250),
        factor: 1.5,
        max: Duration::from_secs(2),
    };
    let _ = eventually(
        Instant::now() + secs(12.0),
        backoff,
        &CancellationToken::new(),
        || script.probe(),
    )
    .await;
    let times = script.call_times_ms();
    let gaps: Vec<u128> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g <= 2000), "{gaps:?}");
    assert!(gaps.iter().filter(|g| **g == 2000).count() >= 3, "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn eventually_times_out_with_the_last_observation_and_probes_at_the_deadline() {
    let script = Script::new(&[false]);
    let outcome = eventually(
        Instant::now() + secs(3.0),
        Backoff::default(),
        &CancellationToken::new(),
        || script.probe(),
    )
    .await;
    let times = script.call_times_ms();
    assert_eq!(*times.last().unwrap(), 3000, "{times:?}");
    match outcome {
        PollOutcome::TimedOut {
            last,
            probes,
            elapsed,
        } => {
            assert_eq!(last as u32 + 1, probes);
            assert_eq!(probes as usize, times.len());
            assert_eq!(elapsed, secs(3.0));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn eventually_with_a_past_deadline_probes_once() {
    let script = Script::new(&[false]);
    let outcome = eventually(
        Instant::now(),
        Backoff::default(),
        &CancellationToken::new(),
        || script.probe(),
    )
    .await;
    assert!(
        matches!(outcome, PollOutcome::TimedOut { probes: 1, .. }),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn consistently_holds_through_the_window_and_probes_at_its_end() {
    let script = Script::new(&[true]);
    let outcome = consistently(
        Instant::now() + secs(5.0),
        Backoff::default(),
        &CancellationToken::new(),
        || script.probe(),
    )
    .await;
    let times = script.call_times_ms();
    assert_eq!(times.first(), Some(&0));
    assert_eq!(times.last(), Some(&5000));
    assert!(
        matches!(outcome, PollOutcome::Held { elapsed, .. } if elapsed == secs(5.0)),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn consistently_fails_at_the_first_observation_that_does_not_hold() {
    let script = Script::new(&[true, true, true, false, true]);
    let outcome = consistently(
        Instant::now() + secs(30.0),
        doubling(),
        &CancellationToken::new(),
        || script.probe(),
    )
    .await;
    assert_eq!(
        script.call_times_ms(),
        vec![0, 100, 300, 700],
        "no probe after the failure"
    );
    assert_eq!(
        outcome,
        PollOutcome::Broke {
            last: 3,
            probes: 4,
            elapsed: secs(0.7)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn cancellation_stops_polling_and_keeps_the_last_observation() {
    let script = Script::new(&[false]);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(secs(1.0)).await;
        trigger.cancel();
    });
    let outcome = eventually(
        Instant::now() + secs(60.0),
        Backoff::default(),
        &cancel,
        || script.probe(),
    )
    .await;
    match outcome {
        PollOutcome::Cancelled {
            last,
            probes,
            elapsed,
        } => {
            assert_eq!(probes, 5, "probes at 0, 100, 250, 475 and 812.5 ms");
            assert_eq!(last, Some(4));
            assert_eq!(elapsed, secs(1.0));
        }
        other => panic!("expected cancellation, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn already_cancelled_token_stops_before_the_first_probe_finishes() {
    let cancel = CancellationToken::new();
    cancel.cancel();
    let outcome = consistently(
        Instant::now() + secs(5.0),
        Backoff::default(),
        &cancel,
        || async {
            tokio::time::sleep(secs(1.0)).await;
            Observation::holds(())
        },
    )
    .await;
    assert!(
        matches!(
            outcome,
            PollOutcome::Cancelled {
                last: None,
                probes: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
}

mod explained {
    //! What a failed expect says: the last observation, the failing paths
    //! and the diff; and that the scenario deadline cuts a window short.

    use super::*;
    use harness_engine::expect::{
        PollPlan, ResourceCheckWanted, ResourceWanted, judge_resource, run_poll,
    };
    use harness_scenario::Timing;
    use serde_json::json;

    fn wanted() -> ResourceWanted {
        ResourceWanted {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("demo-x".into()),
            name: "demo-config".into(),
            check: ResourceCheckWanted::Matches(json!({"data": {"version": "2.0.0"}})),
        }
    }

    fn plan(timing: Timing, scenario_left: Duration) -> PollPlan {
        PollPlan {
            timing,
            scenario_deadline: Instant::now() + scenario_left,
            backoff: doubling(),
            cancel: CancellationToken::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn eventually_reports_the_last_observation_with_a_diff() {
        // The object moves from 0.9.0 to 1.0.0 but never reaches 2.0.0.
        let versions = Mutex::new(vec!["1.0.0", "0.9.0"]);
        let wanted = wanted();
        let result = run_poll(
            "ConfigMap demo-x/demo-config",
            &plan(Timing::Within(secs(2.0)), secs(300.0)),
            || {
                let version = {
                    let mut v = versions.lock().unwrap();
                    if v.len() > 1 { v.pop().unwrap() } else { v[0] }
                };
                let object =
                    json!({"metadata": {"name": "demo-config"}, "data": {"version": version}});
                let observation = judge_resource(&wanted, Some(&object));
                async move { observation }
            },
        )
        .await;
        assert!(!result.passed && !result.cancelled);
        assert_eq!(
            result.observed,
            json!({"present": true, "matched": {"data": {"version": "1.0.0"}}})
        );
        insta::assert_snapshot!(result.message, @r#"
        ConfigMap demo-x/demo-config: not met within 2s (6 probes over 2.0s)
          data.version: expected "2.0.0", found "1.0.0"
          last observed: ConfigMap demo-x/demo-config does not match
        --- expected
        +++ observed
        @@ -1,2 +1,2 @@
         data:
        -  version: "2.0.0"
        +  version: "1.0.0"
        "#);
    }

    #[tokio::test(start_paused = true)]
    async fn consistently_reports_when_it_stopped_holding() {
        let probes = Mutex::new(0);
        let wanted = ResourceWanted {
            check: ResourceCheckWanted::Absent,
            ..wanted()
        };
        let result = run_poll(
            "ConfigMap demo-x/demo-config",
            &plan(Timing::For(secs(30.0)), secs(300.0)),
            || {
                let n = {
                    let mut n = probes.lock().unwrap();
                    *n += 1;
                    *n
                };
                let object = json!({"metadata": {"name": "demo-config"}});
                let observation = judge_resource(&wanted, (n >= 3).then_some(&object));
                async move { observation }
            },
        )
        .await;
        assert!(!result.passed);
        insta::assert_snapshot!(result.message, @r"
        ConfigMap demo-x/demo-config: stopped holding 0.3s into the 30s window (probe 3)
          ConfigMap demo-x/demo-config still exists
          last observed: ConfigMap demo-x/demo-config exists
        ");
    }

    #[tokio::test(start_paused = true)]
    async fn the_scenario_deadline_cuts_the_window_short() {
        let wanted = wanted();
        let start = Instant::now();
        let result = run_poll(
            "ConfigMap demo-x/demo-config",
            &plan(Timing::Within(secs(120.0)), secs(5.0)),
            || {
                let observation = judge_resource(&wanted, None);
                async move { observation }
            },
        )
        .await;
        assert_eq!(start.elapsed(), secs(5.0));
        assert!(result.message.starts_with("ConfigMap demo-x/demo-config: not met within 2m (cut short by the scenario timeout)"), "{}", result.message);
        assert!(
            result
                .message
                .contains("last observed: ConfigMap demo-x/demo-config does not exist"),
            "{}",
            result.message
        );
    }
}

/// A probe that observes `holds` with its call number, and whose fourth
/// call hangs (an API call that never answers).
fn hangs_from_the_fourth_probe(
    holds: bool,
) -> impl FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = Observation<u32>> + Send>> {
    let calls = Arc::new(Mutex::new(0u32));
    move || {
        let n = {
            let mut calls = calls.lock().unwrap();
            *calls += 1;
            *calls
        };
        Box::pin(async move {
            if n >= 4 {
                tokio::time::sleep(secs(3600.0)).await;
            }
            Observation { holds, detail: n }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn eventually_abandons_a_probe_that_hangs_past_the_deadline() {
    let start = Instant::now();
    let outcome = eventually(
        Instant::now() + secs(3.0),
        doubling(),
        &CancellationToken::new(),
        hangs_from_the_fourth_probe(false),
    )
    .await;
    // Probes at 0, 100, 300 ms answer; the one at 700 ms hangs.
    assert_eq!(
        outcome,
        PollOutcome::TimedOut {
            last: 3,
            probes: 3,
            elapsed: secs(4.0)
        }
    );
    assert_eq!(start.elapsed(), secs(4.0), "deadline (3s) + overrun (1s)");
}

/// The hung-probe guard holds for `consistently` too: a probe that never
/// answers must not let the window pass as held (a stopped apiserver would
/// otherwise "hold" any condition for ever).
#[tokio::test(start_paused = true)]
async fn consistently_does_not_pass_a_window_whose_last_probe_hangs() {
    let start = Instant::now();
    let outcome = consistently(
        Instant::now() + secs(3.0),
        doubling(),
        &CancellationToken::new(),
        hangs_from_the_fourth_probe(true),
    )
    .await;
    assert!(!outcome.is_success(), "{outcome:?}");
    assert_eq!(
        outcome,
        PollOutcome::Unanswered {
            last: 3,
            probes: 3,
            elapsed: secs(4.0)
        }
    );
    assert_eq!(start.elapsed(), secs(4.0), "window (3s) + overrun (1s)");
}

/// `eventually_try`: an `Err` from the probe ends the poll at once with that
/// error (no more probes); `Ok` observations behave as in `eventually`.
#[tokio::test(start_paused = true)]
async fn eventually_try_stops_at_the_first_error() {
    let calls = Arc::new(Mutex::new(0u32));
    let probe = || {
        let calls = calls.clone();
        async move {
            let mut n = calls.lock().unwrap();
            *n += 1;
            if *n == 3 {
                Err(format!("probe {n} failed for good"))
            } else {
                Ok(Observation::fails(*n))
            }
        }
    };
    let start = Instant::now();
    let outcome = eventually_try(
        start + secs(60.0),
        doubling(),
        &CancellationToken::new(),
        probe,
    )
    .await;
    assert_eq!(outcome, Err("probe 3 failed for good".to_string()));
    assert_eq!(*calls.lock().unwrap(), 3, "no probe after the error");
    assert!(
        start.elapsed() < secs(1.0),
        "ended at the error, not the deadline: {:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn eventually_try_holds_and_times_out_like_eventually() {
    let script = Script::new(&[false, false, true]);
    let held = eventually_try(
        Instant::now() + secs(10.0),
        doubling(),
        &CancellationToken::new(),
        || {
            let probe = script.probe();
            async move { Ok::<_, String>(probe.await) }
        },
    )
    .await
    .expect("no error");
    assert!(
        matches!(
            held,
            PollOutcome::Held {
                last: 2,
                probes: 3,
                ..
            }
        ),
        "{held:?}"
    );
    let never = Script::new(&[false]);
    let start = Instant::now();
    let timed_out = eventually_try(
        start + secs(1.0),
        doubling(),
        &CancellationToken::new(),
        || {
            let probe = never.probe();
            async move { Ok::<_, String>(probe.await) }
        },
    )
    .await
    .expect("no error");
    assert!(
        matches!(timed_out, PollOutcome::TimedOut { .. }),
        "{timed_out:?}"
    );
    assert_eq!(start.elapsed(), secs(1.0), "waited the whole window");
}

/// Sends `updates` (detail, holds) at the given times from the start, then
/// keeps the channel open (a watch that sees nothing more) unless `close`.
fn watch_script(
    updates: &[(u64, usize, bool)],
    close: bool,
) -> mpsc::UnboundedReceiver<Observation<usize>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let updates = updates.to_vec();
    tokio::spawn(async move {
        let start = Instant::now();
        for (at_ms, detail, holds) in updates {
            tokio::time::sleep_until(start + Duration::from_millis(at_ms)).await;
            let _ = tx.send(Observation { holds, detail });
        }
        if !close {
            std::future::pending::<()>().await;
        }
    });
    rx
}

#[tokio::test(start_paused = true)]
async fn eventually_watched_holds_on_an_update_between_probes() {
    let script = Script::new(&[false]);
    let updates = watch_script(&[(150, 1000, true)], false);
    let outcome = eventually_watched(
        Instant::now() + secs(10.0),
        doubling(),
        &CancellationToken::new(),
        updates,
        || script.probe(),
    )
    .await;
    // Probes at 0 and 100 ms; the update at 150 ms ends it, before the
    // probe due at 300 ms.
    assert_eq!(script.call_times_ms(), vec![0, 100]);
    assert_eq!(
        outcome,
        PollOutcome::Held {
            last: 1000,
            probes: 3,
            elapsed: Duration::from_millis(150)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn updates_that_do_not_hold_leave_the_probes_on_their_pace() {
    let script = Script::new(&[false, false, false, false, true]);
    let updates = watch_script(
        &[(30, 1000, false), (60, 1001, false), (250, 1002, false)],
        false,
    );
    let outcome = eventually_watched(
        Instant::now() + secs(10.0),
        doubling(),
        &CancellationToken::new(),
        updates,
        || script.probe(),
    )
    .await;
    assert_eq!(script.call_times_ms(), vec![0, 100, 300, 700, 1500]);
    assert_eq!(
        outcome,
        PollOutcome::Held {
            last: 4,
            probes: 8,
            elapsed: secs(1.5)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn consistently_watched_breaks_on_a_change_undone_before_the_next_probe() {
    let script = Script::new(&[true]);
    // Broken at 120 ms, mended at 125 ms: between the probes at 100 and 300.
    let updates = watch_script(&[(120, 1000, false), (125, 1001, true)], false);
    let outcome = consistently_watched(
        Instant::now() + secs(2.0),
        doubling(),
        &CancellationToken::new(),
        updates,
        || script.probe(),
    )
    .await;
    assert_eq!(script.call_times_ms(), vec![0, 100]);
    assert_eq!(
        outcome,
        PollOutcome::Broke {
            last: 1000,
            probes: 3,
            elapsed: Duration::from_millis(120)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_watch_that_ends_leaves_the_probes_alone() {
    let script = Script::new(&[false, false, false, true]);
    let updates = watch_script(&[(50, 1000, false)], true);
    let outcome = eventually_watched(
        Instant::now() + secs(10.0),
        doubling(),
        &CancellationToken::new(),
        updates,
        || script.probe(),
    )
    .await;
    assert_eq!(script.call_times_ms(), vec![0, 100, 300, 700]);
    assert_eq!(
        outcome,
        PollOutcome::Held {
            last: 3,
            probes: 5,
            elapsed: secs(0.7)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn consistently_watched_holds_through_its_window_with_updates_that_hold() {
    let script = Script::new(&[true]);
    let updates = watch_script(&[(50, 1000, true), (450, 1001, true)], false);
    let outcome = consistently_watched(
        Instant::now() + secs(1.0),
        doubling(),
        &CancellationToken::new(),
        updates,
        || script.probe(),
    )
    .await;
    // Probes at 0, 100, 300, 700 and at the window's end.
    assert_eq!(script.call_times_ms(), vec![0, 100, 300, 700, 1000]);
    assert!(
        matches!(outcome, PollOutcome::Held { probes: 7, .. }),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_watched_poll_is_cancelled_like_any_other() {
    let script = Script::new(&[false]);
    let updates = watch_script(&[], false);
    let cancel = CancellationToken::new();
    let cancelling = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            cancel.cancel();
        })
    };
    let outcome = eventually_watched(
        Instant::now() + secs(10.0),
        doubling(),
        &cancel,
        updates,
        || script.probe(),
    )
    .await;
    cancelling.await.unwrap();
    assert_eq!(
        outcome,
        PollOutcome::Cancelled {
            last: Some(1),
            probes: 2,
            elapsed: Duration::from_millis(250)
        }
    );
}
