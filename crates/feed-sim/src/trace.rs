//! `TraceCapture`: everything logged at TRACE on this thread, as text, for redaction tests.
//!
//! A capture does not install a scoped (thread-local) subscriber: `tracing` caches each callsite's
//! interest when the callsite is first hit, and while at most one scoped subscriber exists it asks
//! only the hitting thread's subscriber. A test thread without a capture that hit a log line first
//! made the line "never enabled" for the whole binary, and a parallel test's capture missed it (a
//! real flake: `feed-conn`'s "connection opened through proxy" event). Instead, the first capture
//! installs one process-wide subscriber whose filter is dynamic (asked at every event, never
//! cached) and true only on a thread with a live capture; its writer appends to that thread's
//! captures.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

type Buffer = Arc<Mutex<Vec<u8>>>;

thread_local! {
    /// The live captures of this thread, innermost last.
    static ACTIVE: RefCell<Vec<Buffer>> = const { RefCell::new(Vec::new()) };
}

/// While alive, every `tracing` event on the current thread (ours and our dependencies', at every
/// level) is written as text into a buffer. Use it with a current-thread runtime (the default of
/// `#[tokio::test]`), so the code under test runs on this thread. Events on other threads are not
/// captured. Not `Send`: it belongs to the thread that started it.
pub struct TraceCapture {
    buffer: Buffer,
    /// Set only when another global subscriber was installed first: then the capture falls back to
    /// a scoped subscriber for this thread.
    _fallback: Option<tracing::subscriber::DefaultGuard>,
    _not_send: PhantomData<Rc<()>>,
}

impl std::fmt::Debug for TraceCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceCapture").finish_non_exhaustive()
    }
}

/// Installs the process-wide routing subscriber once; false when another global subscriber won.
fn install_global() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| ThreadWriter)
            .with_filter(tracing_subscriber::filter::dynamic_filter_fn(|_, _| {
                ACTIVE
                    .try_with(|active| !active.borrow().is_empty())
                    .unwrap_or(false)
            }));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).is_ok()
    })
}

impl TraceCapture {
    /// Starts capturing on this thread.
    pub fn start() -> Self {
        let buffer: Buffer = Arc::new(Mutex::new(Vec::new()));
        let fallback = if install_global() {
            ACTIVE.with(|active| active.borrow_mut().push(Arc::clone(&buffer)));
            // A callsite that another thread was registering while the subscriber was being
            // installed may have cached the old answer; ask again.
            tracing::callsite::rebuild_interest_cache();
            None
        } else {
            let sink = Arc::clone(&buffer);
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || BufferWriter(Arc::clone(&sink)))
                .finish();
            Some(tracing::subscriber::set_default(subscriber))
        };
        Self {
            buffer,
            _fallback: fallback,
            _not_send: PhantomData,
        }
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned()
    }
}

impl Drop for TraceCapture {
    fn drop(&mut self) {
        let _ = ACTIVE.try_with(|active| {
            active
                .borrow_mut()
                .retain(|buffer| !Arc::ptr_eq(buffer, &self.buffer));
        });
    }
}

/// Appends to every live capture of the writing thread.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = ACTIVE.try_with(|active| {
            for buffer in active.borrow().iter() {
                append(buffer, buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct BufferWriter(Buffer);

impl std::io::Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        append(&self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Appends `bytes` to a capture's buffer (a poisoned lock still takes them).
fn append(buffer: &Buffer, bytes: &[u8]) {
    buffer
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend_from_slice(bytes);
}
