//! Polling a condition: `eventually` (until it holds, within a window),
//! `consistently` (it must hold through a whole window) and
//! `eventually_try` (like `eventually`, for probes that can fail for good).
//! The one polling loop of the harness: expectations
//! (`harness_engine::expect`), Argo CD's sync and delete waits, lab
//! readiness (`harness_labs`) and the podman service start all wait
//! through it.
//!
//! Time is `tokio::time`, so tests run these with paused time.

use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long `eventually` waits past its deadline for a probe in flight.
pub const PROBE_OVERRUN: Duration = Duration::from_secs(1);

/// Delays between probes: `initial`, growing by `factor`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub factor: f64,
    pub max: Duration,
}

/// Probes are cheap GETs; a short ceiling keeps the time the harness adds
/// over Argo CD's own reaction small (`cargo xtask bench` measured a median
/// 752 ms added with a 2 s ceiling, 363 ms with 500 ms).
impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            factor: 1.5,
            max: Duration::from_millis(500),
        }
    }
}

impl Backoff {
    fn next(&self, delay: Duration) -> Duration {
        delay.mul_f64(self.factor).min(self.max)
    }
}

/// What one probe saw: whether the condition holds, and what was observed
/// (reported when the expectation fails).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation<D> {
    pub holds: bool,
    pub detail: D,
}

impl<D> Observation<D> {
    pub fn holds(detail: D) -> Self {
        Observation {
            holds: true,
            detail,
        }
    }
    pub fn fails(detail: D) -> Self {
        Observation {
            holds: false,
            detail,
        }
    }
}

/// How a poll ended.
#[derive(Debug, Clone, PartialEq)]
pub enum PollOutcome<D> {
    /// The condition held (at the end of the window for `consistently`).
    Held {
        last: D,
        probes: u32,
        elapsed: Duration,
    },
    /// `eventually`: the window ended without the condition holding.
    TimedOut {
        last: D,
        probes: u32,
        elapsed: Duration,
    },
    /// `consistently`: an observation did not hold.
    Broke {
        last: D,
        probes: u32,
        elapsed: Duration,
    },
    /// `consistently`: a probe was still running [`PROBE_OVERRUN`] after
    /// the window ended; `last` is the observation before it (which held).
    Unanswered {
        last: D,
        probes: u32,
        elapsed: Duration,
    },
    /// The run was cancelled; `last` is the latest observation, if any.
    Cancelled {
        last: Option<D>,
        probes: u32,
        elapsed: Duration,
    },
}

impl<D> PollOutcome<D> {
    pub fn is_success(&self) -> bool {
        matches!(self, PollOutcome::Held { .. })
    }
    pub fn probes(&self) -> u32 {
        match self {
            PollOutcome::Held { probes, .. }
            | PollOutcome::TimedOut { probes, .. }
            | PollOutcome::Broke { probes, .. }
            | PollOutcome::Unanswered { probes, .. }
            | PollOutcome::Cancelled { probes, .. } => *probes,
        }
    }

    /// For the log: how it ended, the probes made and the time taken.
    fn summary(&self) -> (&'static str, u32, Duration) {
        match self {
            PollOutcome::Held {
                probes, elapsed, ..
            } => ("held", *probes, *elapsed),
            PollOutcome::TimedOut {
                probes, elapsed, ..
            } => ("timed out", *probes, *elapsed),
            PollOutcome::Broke {
                probes, elapsed, ..
            } => ("broke", *probes, *elapsed),
            PollOutcome::Unanswered {
                probes, elapsed, ..
            } => ("unanswered", *probes, *elapsed),
            PollOutcome::Cancelled {
                probes, elapsed, ..
            } => ("cancelled", *probes, *elapsed),
        }
    }
}

/// What a poll waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// `eventually`: the first observation that holds ends the poll.
    Holds,
    /// `consistently`: the first observation that does not hold ends it.
    KeepsHolding,
}

impl Goal {
    /// For the log: which kind of wait.
    fn name(self) -> &'static str {
        match self {
            Goal::Holds => "eventually",
            Goal::KeepsHolding => "consistently",
        }
    }
}

/// Probe until the condition holds or `deadline` passes. The probe always
/// runs at least once, and once more at the deadline when the last wait
/// reaches it. A probe still running [`PROBE_OVERRUN`] after the deadline
/// is abandoned (the first one is awaited, so there is something to report).
///
/// Logged (debug, "wait starts" / "wait ends") with the caller's source
/// location as `caller`: what is awaited, with the span context around it.
#[track_caller]
pub fn eventually<D, F, Fut>(
    deadline: Instant,
    backoff: Backoff,
    cancel: &CancellationToken,
    probe: F,
) -> impl Future<Output = PollOutcome<D>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Observation<D>>,
{
    poll(
        Goal::Holds,
        deadline,
        backoff,
        cancel,
        probe,
        Location::caller(),
        |_| false,
    )
}

/// Probe through the window ending at `until`; fail at the first observation
/// that does not hold. The probe runs at the start and at the end of the
/// window, and in between with the backoff delays. A probe still running
/// [`PROBE_OVERRUN`] after the window ends is abandoned and the poll is
/// [`PollOutcome::Unanswered`]: what the condition was at the end is not
/// known, so it is not reported as held.
#[track_caller]
pub fn consistently<D, F, Fut>(
    until: Instant,
    backoff: Backoff,
    cancel: &CancellationToken,
    probe: F,
) -> impl Future<Output = PollOutcome<D>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Observation<D>>,
{
    poll(
        Goal::KeepsHolding,
        until,
        backoff,
        cancel,
        probe,
        Location::caller(),
        |_| false,
    )
}

/// [`eventually`] for a probe that may also fail for good (an API error, a
/// pod that will never start): its first `Err` ends the poll with that
/// error; otherwise the outcome is `eventually`'s.
#[track_caller]
pub fn eventually_try<D, E, F, Fut>(
    deadline: Instant,
    backoff: Backoff,
    cancel: &CancellationToken,
    probe: F,
) -> impl Future<Output = Result<PollOutcome<D>, E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Observation<D>, E>>,
{
    poll_try(deadline, backoff, cancel, probe, Location::caller())
}

async fn poll_try<D, E, F, Fut>(
    deadline: Instant,
    backoff: Backoff,
    cancel: &CancellationToken,
    mut probe: F,
    caller: &'static Location<'static>,
) -> Result<PollOutcome<D>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Observation<D>, E>>,
{
    // An error "holds": it ends the poll at once, and is taken out after.
    let probe = || {
        let probe = probe();
        async move {
            match probe.await {
                Ok(seen) => Observation {
                    holds: seen.holds,
                    detail: Ok(seen.detail),
                },
                Err(error) => Observation::holds(Err(error)),
            }
        }
    };
    // The probe's error ends the wait: "failed" in the log.
    let failed = |outcome: &PollOutcome<Result<D, E>>| {
        matches!(
            outcome,
            PollOutcome::Held { last: Err(_), .. }
                | PollOutcome::Cancelled {
                    last: Some(Err(_)),
                    ..
                }
        )
    };
    let outcome = poll(
        Goal::Holds,
        deadline,
        backoff,
        cancel,
        probe,
        caller,
        failed,
    )
    .await;
    // Only a held observation can be an error; the others were kept
    // because they did not hold.
    let ok = |last: Result<D, E>| last;
    Ok(match outcome {
        PollOutcome::Held {
            last,
            probes,
            elapsed,
        } => PollOutcome::Held {
            last: ok(last)?,
            probes,
            elapsed,
        },
        PollOutcome::TimedOut {
            last,
            probes,
            elapsed,
        } => PollOutcome::TimedOut {
            last: ok(last)?,
            probes,
            elapsed,
        },
        PollOutcome::Broke {
            last,
            probes,
            elapsed,
        } => PollOutcome::Broke {
            last: ok(last)?,
            probes,
            elapsed,
        },
        PollOutcome::Unanswered {
            last,
            probes,
            elapsed,
        } => PollOutcome::Unanswered {
            last: ok(last)?,
            probes,
            elapsed,
        },
        PollOutcome::Cancelled {
            last,
            probes,
            elapsed,
        } => PollOutcome::Cancelled {
            last: last.transpose()?,
            probes,
            elapsed,
        },
    })
}

/// [`poll_loop`], logged: "wait starts" with the caller, the kind of wait
/// and its window, "wait ends" with the outcome (`failed`: the probe's
/// error ended it), the probes made and the time taken.
async fn poll<D, F, Fut>(
    goal: Goal,
    end: Instant,
    backoff: Backoff,
    cancel: &CancellationToken,
    probe: F,
    caller: &'static Location<'static>,
    failed: fn(&PollOutcome<D>) -> bool,
) -> PollOutcome<D>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Observation<D>>,
{
    let caller = format!("{}:{}", caller.file(), caller.line());
    let window_ms = u64::try_from(end.saturating_duration_since(Instant::now()).as_millis())
        .unwrap_or(u64::MAX);
    tracing::debug!(caller, goal = goal.name(), window_ms, "wait starts");
    let outcome = poll_loop(goal, end, backoff, cancel, probe).await;
    let (mut name, attempts, elapsed) = outcome.summary();
    if failed(&outcome) {
        name = "failed";
    }
    tracing::debug!(
        caller,
        goal = goal.name(),
        outcome = name,
        attempts,
        elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "wait ends"
    );
    outcome
}

/// The one polling loop behind [`eventually`] and [`consistently`]: probes
/// with backoff until `goal` decides or `end` passes, with the same
/// cancellation and hung-probe guard for both.
async fn poll_loop<D, F, Fut>(
    goal: Goal,
    end: Instant,
    backoff: Backoff,
    cancel: &CancellationToken,
    mut probe: F,
) -> PollOutcome<D>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Observation<D>>,
{
    let started = Instant::now();
    let mut delay = backoff.initial;
    let mut probes = 0;
    let mut last = None;
    loop {
        let observation = tokio::select! {
            observation = probe() => observation,
            _ = cancel.cancelled() => return PollOutcome::Cancelled { last, probes, elapsed: started.elapsed() },
            // A probe that hangs past the window ends it with what was seen before.
            _ = tokio::time::sleep_until(end + PROBE_OVERRUN), if last.is_some() => match last {
                Some(last) => {
                    let elapsed = started.elapsed();
                    return match goal {
                        Goal::Holds => PollOutcome::TimedOut { last, probes, elapsed },
                        Goal::KeepsHolding => PollOutcome::Unanswered { last, probes, elapsed },
                    };
                }
                None => continue,
            },
        };
        probes += 1;
        let elapsed = started.elapsed();
        tracing::trace!(probes, holds = observation.holds, ?elapsed, "probe");
        match (goal, observation.holds) {
            (Goal::Holds, true) => {
                return PollOutcome::Held {
                    last: observation.detail,
                    probes,
                    elapsed,
                };
            }
            (Goal::KeepsHolding, false) => {
                return PollOutcome::Broke {
                    last: observation.detail,
                    probes,
                    elapsed,
                };
            }
            _ => {}
        }
        let now = Instant::now();
        if now >= end {
            let last = observation.detail;
            return match goal {
                Goal::Holds => PollOutcome::TimedOut {
                    last,
                    probes,
                    elapsed,
                },
                Goal::KeepsHolding => PollOutcome::Held {
                    last,
                    probes,
                    elapsed,
                },
            };
        }
        last = Some(observation.detail);
        let wake = (now + delay).min(end);
        delay = backoff.next(delay);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = cancel.cancelled() => return PollOutcome::Cancelled { last, probes, elapsed: started.elapsed() },
        }
    }
}
