//! `TraceCapture` sees this thread's events even when another thread hit the log line first.
//! Alone in its binary: any other capture alive in the process would hide the old failure
//! (with two scoped subscribers tracing asks every one of them), so this test could not fail.

use feed_sim::TraceCapture;

/// One callsite, hit from two threads.
fn emit(from: &str) {
    tracing::info!(target: "trace_capture_first_hit", from, "the shared log line");
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
