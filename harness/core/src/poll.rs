//! Polling a condition: `eventually` (until it holds, within a window),
//! `consistently` (it must hold through a whole window) and
//! `eventually_try` (like `eventually`, for probes that can fail for good).
//! The one polling loop of the harness: expectations
//! (`harness_engine::expect`), Argo CD's sync and delete waits, lab
//! readiness (`harness_labs`) and the podman service start all wait
//! through it.
//!
//! `eventually_watched` and `consistently_watched` also take the
//! observations a watch makes (one per change of the object): each is
//! judged as it arrives, between probes, so an update is seen the moment
//! it is made and none is missed between two probes; the probes go on at
//! the backoff's pace, so a watch that breaks costs nothing but speed.
//!
//! Time is `tokio::time`, so tests run these with paused time.

use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use tokio::sync::mpsc;
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
        None,
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
        None,
        Location::caller(),
        |_| false,
    )
}

/// [`eventually`], also judging each observation `updates` brings (a
/// watch's, one per change) the moment it comes: the first that holds ends
/// the poll. The probes go on as in `eventually`; when `updates` closes
/// (the watch ended) only they remain.
#[track_caller]
pub fn eventually_watched<D, F, Fut>(
    deadline: Instant,
    backoff: Backoff,
    cancel: &CancellationToken,
    updates: mpsc::UnboundedReceiver<Observation<D>>,
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
        Some(updates),
        Location::caller(),
        |_| false,
    )
}

/// [`consistently`], also judging each observation `updates` brings: the
/// first that does not hold ends the poll as [`PollOutcome::Broke`], so a
/// change that is undone before the next probe is still caught.
#[track_caller]
pub fn consistently_watched<D, F, Fut>(
    until: Instant,
    backoff: Backoff,
    cancel: &CancellationToken,
    updates: mpsc::UnboundedReceiver<Observation<D>>,
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
        Some(updates),
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
        None,
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
#[allow(clippy::too_many_arguments)]
async fn poll<D, F, Fut>(
    goal: Goal,
    end: Instant,
    backoff: Backoff,
    cancel: &CancellationToken,
    probe: F,
    updates: Option<mpsc::UnboundedReceiver<Observation<D>>>,
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
    let watched = updates.is_some();
    tracing::debug!(
        caller,
        goal = goal.name(),
        window_ms,
        watched,
        "wait starts"
    );
    let outcome = poll_loop(goal, end, backoff, cancel, probe, updates).await;
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
    mut updates: Option<mpsc::UnboundedReceiver<Observation<D>>>,
) -> PollOutcome<D>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Observation<D>>,
{
    let started = Instant::now();
    let mut delay = backoff.initial;
    let mut probes = 0;
    let mut last = None;
    // An update that came while waiting: judged instead of a probe.
    let mut pending: Option<Observation<D>> = None;
    // When the next probe is due; an update does not move it.
    let mut next_probe: Option<Instant> = None;
    loop {
        let from_update = pending.is_some();
        let observation = if let Some(update) = pending.take() {
            update
        } else {
            tokio::select! {
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
            }
        };
        probes += 1;
        let elapsed = started.elapsed();
        tracing::trace!(
            probes,
            holds = observation.holds,
            from_update,
            ?elapsed,
            "probe"
        );
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
        // The probes keep their pace whatever the updates do: an update
        // judged leaves the next probe where it was.
        let wake = match next_probe {
            Some(at) if from_update => at,
            _ => {
                let at = (now + delay).min(end);
                delay = backoff.next(delay);
                at
            }
        };
        next_probe = Some(wake);
        let woke = tokio::select! {
            biased;
            _ = cancel.cancelled() => return PollOutcome::Cancelled { last, probes, elapsed: started.elapsed() },
            _ = tokio::time::sleep_until(wake) => Woke::Probe,
            seen = next_update(updates.as_mut()) => match seen {
                Some(seen) => Woke::Update(seen),
                None => Woke::WatchEnded,
            },
        };
        match woke {
            Woke::Probe => next_probe = None,
            Woke::Update(seen) => pending = Some(seen),
            // The watch ended: the probes go on alone.
            Woke::WatchEnded => {
                updates = None;
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => next_probe = None,
                    _ = cancel.cancelled() => return PollOutcome::Cancelled { last, probes, elapsed: started.elapsed() },
                }
            }
        }
    }
}

/// What ended a wait between observations.
enum Woke<D> {
    /// The next probe is due.
    Probe,
    /// The watch saw a change.
    Update(Observation<D>),
    /// The watch's channel closed.
    WatchEnded,
}

/// The next update, or never when there is no watch.
async fn next_update<D>(
    updates: Option<&mut mpsc::UnboundedReceiver<Observation<D>>>,
) -> Option<Observation<D>> {
    match updates {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
