//! `TraceCapture` with nested captures and captures on parallel threads.

use feed_sim::TraceCapture;

/// One callsite, hit from two threads.
fn emit(from: &str) {
    tracing::info!(target: "trace_capture_test", from, "the shared log line");
}

#[test]
fn nested_and_parallel_captures_each_see_their_own_thread() {
    let outer = TraceCapture::start();
    let worker = std::thread::spawn(|| {
        let capture = TraceCapture::start();
        emit("worker");
        capture.text()
    });
    let inner = TraceCapture::start();
    emit("main");
    drop(inner);
    let worker_text = worker.join().expect("worker");
    let text = outer.text();
    assert!(text.contains("from=\"main\""), "{text:?}");
    assert!(!text.contains("from=\"worker\""), "{text:?}");
    assert!(worker_text.contains("from=\"worker\""), "{worker_text:?}");
    assert!(!worker_text.contains("from=\"main\""), "{worker_text:?}");
}
