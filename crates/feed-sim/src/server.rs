//! What every fake server here shares: its connection records (readable from tests, tolerant of a
//! panicking test thread) and its accept task (aborted on drop, which drops every connection).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

/// A record that knows whether its connection has ended.
pub(crate) trait Closed {
    fn closed(&self) -> bool;
}

/// One record per accepted connection, in accept order.
#[derive(Debug)]
pub(crate) struct Records<R>(Mutex<Vec<R>>);

impl<R> Records<R> {
    pub(crate) fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Vec<R>> {
        // A panicking test thread must not hide the records from the others.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a record; returns its index for later updates.
    pub(crate) fn push(&self, record: R) -> usize {
        let mut records = self.lock();
        records.push(record);
        records.len() - 1
    }

    pub(crate) fn update(&self, index: usize, f: impl FnOnce(&mut R)) {
        if let Some(record) = self.lock().get_mut(index) {
            f(record);
        }
    }
}

impl<R: Clone> Records<R> {
    pub(crate) fn snapshot(&self) -> Vec<R> {
        self.lock().clone()
    }
}

impl<R: Clone + Closed> Records<R> {
    /// Waits until at least `count` records are closed or `deadline` passes, then returns all.
    pub(crate) async fn when_closed(&self, count: usize, deadline: Duration) -> Vec<R> {
        // Either outcome is fine: the caller asserts on the records.
        let _ = tokio::time::timeout(deadline, async {
            while self.lock().iter().filter(|r| r.closed()).count() < count {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        self.snapshot()
    }
}

/// The accept task of a fake server: it owns the listener and the connections' JoinSet, so
/// aborting it closes them all.
#[derive(Debug)]
pub(crate) struct ServerTask(Option<JoinHandle<()>>);

impl ServerTask {
    pub(crate) fn new(task: JoinHandle<()>) -> Self {
        Self(Some(task))
    }

    /// Aborts the task and waits until it is gone (the port is released).
    pub(crate) async fn shutdown(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
            // The task was aborted: a cancellation error is the expected outcome.
            let _ = task.await;
        }
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}
