//! The sliding window every kind of move runs in: at most `concurrency` moves in flight, and a
//! new one started as soon as one settles, so a slow partition holds up one slot rather than a
//! whole batch.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{ExecuteError, ExecuteOptions, ExecutionReport, Progress};

/// A partition, by topic and number.
pub(super) type Key = (String, i32);

/// How a move in flight ended.
pub(super) enum Settled {
    /// It reached its target.
    Done,
    /// It was cancelled from outside (`sluice balance stop`): the execution stops.
    Cancelled,
}

/// One kind of move: started a few at a time, then watched until each settles.
pub(super) trait Moves {
    /// What a move is made from.
    type Item;
    /// The move's name in reports ("reassignment").
    const NAME: &'static str;
    /// Starts `items`; returns the partitions whose move the cluster accepted, and reports the
    /// others as failed.
    async fn start(
        &mut self,
        items: &[Self::Item],
        report: &mut ExecutionReport,
    ) -> Result<Vec<Key>, ExecuteError>;
    /// Those of `in_flight` that have settled; one still settling is left out.
    async fn settled(&mut self, in_flight: &[Key]) -> Result<Vec<(Key, Settled)>, ExecuteError>;
    /// Counts one move done in the report.
    fn count_done(report: &mut ExecutionReport);
    /// Stops watching a move that timed out.
    fn forget(&mut self, key: &Key);
}

/// Runs `items` through `moves`, calling `progress` as they settle; false if the execution
/// was stopped from outside. A move still running after `options.move_timeout` is reported
/// and leaves the window: it goes on in the cluster, beside the moves started after it.
pub(super) async fn run<M: Moves>(
    moves: &mut M,
    items: Vec<M::Item>,
    phase: &'static str,
    options: &ExecuteOptions,
    report: &mut ExecutionReport,
    progress: &mut impl FnMut(&Progress),
) -> Result<bool, ExecuteError> {
    let total = items.len();
    let width = options.concurrency.max(1);
    let mut queue = items.into_iter().peekable();
    let mut in_flight: BTreeMap<Key, Instant> = BTreeMap::new();
    let mut done = 0;
    loop {
        let room = width.saturating_sub(in_flight.len());
        let next: Vec<M::Item> = queue.by_ref().take(room).collect();
        if !next.is_empty() {
            let started = moves.start(&next, report).await?;
            // Those refused are over (and reported).
            done += next.len().saturating_sub(started.len());
            let now = Instant::now();
            in_flight.extend(started.into_iter().map(|key| (key, now)));
        }
        progress(&Progress { phase, done, total });
        if in_flight.is_empty() {
            if queue.peek().is_none() {
                return Ok(true);
            }
            continue;
        }
        tokio::time::sleep(options.poll).await;
        let keys: Vec<Key> = in_flight.keys().cloned().collect();
        let mut cancelled = false;
        for (key, settled) in moves.settled(&keys).await? {
            if in_flight.remove(&key).is_none() {
                continue;
            }
            done += 1;
            match settled {
                Settled::Done => M::count_done(report),
                Settled::Cancelled => {
                    report
                        .failed
                        .push(format!("{}-{}: {} cancelled", key.0, key.1, M::NAME));
                    cancelled = true;
                }
            }
        }
        if cancelled {
            progress(&Progress { phase, done, total });
            return Ok(false);
        }
        let now = Instant::now();
        let late: Vec<Key> = in_flight
            .iter()
            .filter(|(_, since)| now.duration_since(**since) > options.move_timeout)
            .map(|(key, _)| key.clone())
            .collect();
        for key in late {
            in_flight.remove(&key);
            moves.forget(&key);
            report.failed.push(format!(
                "{}-{}: {} still running after the timeout",
                key.0,
                key.1,
                M::NAME
            ));
            done += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    /// Moves that settle after a set number of polls each (`u32::MAX`: never), or are cancelled.
    struct Scripted {
        polls: HashMap<Key, u32>,
        cancel: Option<Key>,
        in_flight_max: usize,
        started_order: Vec<Key>,
    }

    impl Moves for Scripted {
        type Item = (Key, u32);
        const NAME: &'static str = "scripted move";

        async fn start(
            &mut self,
            items: &[Self::Item],
            report: &mut ExecutionReport,
        ) -> Result<Vec<Key>, ExecuteError> {
            // 0 polls: the cluster refuses the move.
            let mut started = Vec::new();
            for (key, polls) in items {
                if *polls == 0 {
                    report.failed.push(format!("{}-{}: refused", key.0, key.1));
                    continue;
                }
                self.polls.insert(key.clone(), *polls);
                self.started_order.push(key.clone());
                started.push(key.clone());
            }
            self.in_flight_max = self.in_flight_max.max(self.polls.len());
            Ok(started)
        }

        async fn settled(
            &mut self,
            in_flight: &[Key],
        ) -> Result<Vec<(Key, Settled)>, ExecuteError> {
            let mut out = Vec::new();
            for key in in_flight {
                if self.cancel.as_ref() == Some(key) {
                    out.push((key.clone(), Settled::Cancelled));
                    continue;
                }
                let Some(left) = self.polls.get_mut(key) else {
                    continue;
                };
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.polls.remove(key);
                    out.push((key.clone(), Settled::Done));
                }
            }
            Ok(out)
        }

        fn count_done(report: &mut ExecutionReport) {
            report.reassigned += 1;
        }

        fn forget(&mut self, key: &Key) {
            self.polls.remove(key);
        }
    }

    fn scripted(cancel: Option<Key>) -> Scripted {
        Scripted {
            polls: HashMap::new(),
            cancel,
            in_flight_max: 0,
            started_order: Vec::new(),
        }
    }

    fn options(timeout: Duration) -> ExecuteOptions {
        ExecuteOptions {
            concurrency: 3,
            poll: Duration::from_millis(1),
            move_timeout: timeout,
            ..ExecuteOptions::default()
        }
    }

    fn key(i: i32) -> Key {
        ("t".to_owned(), i)
    }

    #[tokio::test]
    async fn a_slow_move_holds_one_slot_not_the_others() {
        // Partition 0 takes 40 polls; the 9 others one poll each. In batches of 3 the others
        // would wait for it; in a window they pass it by.
        let items: Vec<(Key, u32)> = (0..10)
            .map(|i| (key(i), if i == 0 { 40 } else { 1 }))
            .collect();
        let mut moves = scripted(None);
        let mut report = ExecutionReport::default();
        let mut seen = Vec::new();
        let finished = run(
            &mut moves,
            items,
            "moving",
            &options(Duration::from_secs(60)),
            &mut report,
            &mut |p| seen.push(p.done),
        )
        .await
        .expect("run");
        assert!(finished);
        assert_eq!(report.reassigned, 10);
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(
            moves.in_flight_max, 3,
            "never more than the concurrency in flight"
        );
        // Every other partition started before partition 0 finished (at its 40th poll).
        assert_eq!(moves.started_order.len(), 10);
        assert!(seen.iter().take(10).any(|&d| d >= 9), "{seen:?}");
        assert_eq!(seen.last(), Some(&10));
    }

    #[tokio::test]
    async fn a_cancelled_move_stops_the_run_and_a_stuck_one_times_out() {
        let items: Vec<(Key, u32)> = (0..6).map(|i| (key(i), 2)).collect();
        let mut moves = scripted(Some(key(1)));
        let mut report = ExecutionReport::default();
        let finished = run(
            &mut moves,
            items,
            "moving",
            &options(Duration::from_secs(60)),
            &mut report,
            &mut |_| {},
        )
        .await
        .expect("run");
        assert!(!finished, "stopped from outside");
        assert!(
            report
                .failed
                .iter()
                .any(|f| f == "t-1: scripted move cancelled"),
            "{:?}",
            report.failed
        );
        assert!(
            moves.started_order.len() < 6,
            "nothing started after the cancellation"
        );

        let items = vec![(key(0), u32::MAX), (key(1), 1)];
        let mut moves = scripted(None);
        let mut report = ExecutionReport::default();
        let finished = run(
            &mut moves,
            items,
            "moving",
            &options(Duration::from_millis(30)),
            &mut report,
            &mut |_| {},
        )
        .await
        .expect("run");
        assert!(finished);
        assert_eq!(report.reassigned, 1);
        assert_eq!(
            report.failed,
            ["t-0: scripted move still running after the timeout"]
        );
    }

    #[tokio::test]
    async fn refused_moves_are_reported_and_their_slots_reused() {
        let items: Vec<(Key, u32)> = (0..5).map(|i| (key(i), u32::from(i % 2 == 1))).collect();
        let mut moves = scripted(None);
        let mut report = ExecutionReport::default();
        let mut last = None;
        let finished = run(
            &mut moves,
            items,
            "moving",
            &options(Duration::from_secs(60)),
            &mut report,
            &mut |p| last = Some((p.done, p.total)),
        )
        .await
        .expect("run");
        assert!(finished);
        assert_eq!(report.reassigned, 2);
        assert_eq!(
            report.failed,
            ["t-0: refused", "t-2: refused", "t-4: refused"]
        );
        assert_eq!(last, Some((5, 5)));
    }
}
