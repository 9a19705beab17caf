//! [`Lifecycle`]: the two things every hub, repository and stream needs to live and die with
//! the server, as one value.
//!
//! Background work must stop when shutdown starts (the stop signal) and shutdown must be able
//! to wait for it (the task tracker). Threading a `CancellationToken` and a `TaskTracker` by
//! hand through every constructor let them drift apart (and let a task be spawned untracked);
//! one cheap handle that spawns only tracked tasks keeps them together.

use std::{future::Future, time::Duration};

use tokio::{task::JoinHandle, time::MissedTickBehavior};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The stop signal and the tracker of the application's background tasks. Cheap to clone; every
/// clone shares both.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    stopping: CancellationToken,
    tasks: TaskTracker,
}

impl Lifecycle {
    /// A lifecycle that has not stopped, with no tasks.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stop signal, for a `select!` that must end when shutdown starts.
    pub fn stopping(&self) -> &CancellationToken {
        &self.stopping
    }

    /// Whether shutdown has started.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Starts shutdown: every task watching the signal ends.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Runs `task` on the runtime, tracked: [`Lifecycle::wait`] waits for it. The task itself
    /// decides when to watch the stop signal.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// Runs blocking work (file I/O, hashing) on the blocking pool, tracked.
    pub fn spawn_blocking<F, T>(&self, work: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.tasks.spawn_blocking(work)
    }

    /// Spawns a background chore (log retention, sweeping expired uploads): it runs at once and
    /// then every `interval` until shutdown starts, also in the middle of a run. A run that
    /// overruns delays the next one instead of causing a burst.
    pub fn spawn_every<F, Fut>(&self, interval: Duration, mut chore: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let stopping = self.stopping.clone();
        self.tasks.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stopping.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                tokio::select! {
                    () = stopping.cancelled() => return,
                    () = chore() => {}
                }
            }
        });
    }

    /// Waits up to `within` for every tracked task to end, without stopping them; no task may
    /// be spawned after this is called. Returns false when some were still running at the
    /// deadline.
    pub async fn wait(&self, within: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(within, self.tasks.wait())
            .await
            .is_ok()
    }

    /// Stops, then waits up to `within` for every tracked task to end. Returns false when some
    /// were still running at the deadline.
    pub async fn stop_and_wait(&self, within: Duration) -> bool {
        self.stop();
        self.wait(within).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_chore_runs_at_once_then_every_interval_until_stopped() {
        let lifecycle = Lifecycle::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        lifecycle.spawn_every(Duration::from_secs(10), move || {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "runs at 0 s, 10 s and 20 s");
        assert!(lifecycle.stop_and_wait(Duration::from_secs(1)).await);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "no run after the stop");
    }

    #[tokio::test(start_paused = true)]
    async fn stop_and_wait_ends_a_chore_in_the_middle_of_a_run() {
        let lifecycle = Lifecycle::new();
        lifecycle.spawn_every(Duration::from_secs(1), std::future::pending::<()>);
        assert!(lifecycle.stop_and_wait(Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_and_wait_reports_a_task_that_ignores_the_signal() {
        let lifecycle = Lifecycle::new();
        lifecycle.spawn(std::future::pending::<()>());
        assert!(!lifecycle.stop_and_wait(Duration::from_secs(1)).await);
    }
}
