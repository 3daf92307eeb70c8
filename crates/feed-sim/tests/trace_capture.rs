//! `TraceCapture` sees this thread's events even when another thread hit the log line first.

use feed_sim::TraceCapture;

/// One callsite, hit from two threads.
fn emit(from: &str) {
    tracing::info!(target: "trace_capture_test", from, "the shared log line");
}

#[test]
fn a_line_first_hit_by_a_thread_without_a_capture_is_still_captured() {
    let capture = TraceCapture::start();
    // Another thread, with no capture, registers the callsite first. With a scoped subscriber per
    // capture, tracing cached "never" for it here and the capture below stayed empty.
    std::thread::spawn(|| emit("other"))
        .join()
        .expect("other thread");
    emit("this");
    let text = capture.text();
    assert!(text.contains("the shared log line"), "{text:?}");
    assert!(text.contains("from=\"this\""), "{text:?}");
    assert!(!text.contains("from=\"other\""), "{text:?}");
    drop(capture);

    // After the capture ends, nothing more is written to it, and a new capture starts empty.
    let again = TraceCapture::start();
    emit("again");
    std::thread::spawn(|| emit("other again"))
        .join()
        .expect("other thread");
    let text = again.text();
    assert_eq!(text.matches("the shared log line").count(), 1, "{text:?}");
    assert!(text.contains("from=\"again\""), "{text:?}");
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
