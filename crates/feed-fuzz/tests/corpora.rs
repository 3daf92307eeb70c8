//! Replays the fuzz corpora on the stable toolchain: every file of `fuzz/corpus/<target>/` (and
//! of `fuzz/regressions/<target>/`, the crash reproducers) goes through its target's body, so
//! CI keeps checking every input the fuzzer found without running it.

use std::collections::BTreeSet;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use feed_fuzz::{TARGETS, Target};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files directly in `dir`, sorted; a missing directory is an error.
fn files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Runs every file through `target`; the failures, by file and panic message.
fn replay(target: Target, files: &[PathBuf]) -> Vec<String> {
    let mut failures = Vec::new();
    for path in files {
        let data = match fs::read(path) {
            Ok(data) => data,
            Err(error) => {
                failures.push(format!("{}: {error}", path.display()));
                continue;
            }
        };
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", path.display()));
        }
    }
    failures
}

#[test]
fn every_corpus_replays_without_a_finding() {
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        match files(&dir) {
            Ok(files) if files.is_empty() => failures.push(format!("{name}: corpus is empty")),
            Ok(files) => failures.extend(replay(*target, &files)),
            Err(error) => failures.push(format!("{name}: corpus missing: {error}")),
        }
        let regressions = fuzz_dir().join("regressions").join(name);
        if regressions.exists() {
            match files(&regressions) {
                Ok(files) => failures.extend(replay(*target, &files)),
                Err(error) => failures.push(error),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every corpus directory and every cargo-fuzz binary belongs to a target of the library, and
/// every target has a binary: a target added on one side only fails here.
#[test]
fn targets_corpora_and_fuzz_binaries_match() {
    let targets: BTreeSet<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        targets.len(),
        TARGETS.len(),
        "a target name is listed twice"
    );

    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind);
        let Ok(entries) = fs::read_dir(&dir) else {
            assert_eq!(kind, "regressions", "{} is missing", dir.display());
            continue;
        };
        for entry in entries {
            let name = entry.expect("readable directory entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                targets.contains(name.as_ref()),
                "{kind}/{name} has no target in feed_fuzz::TARGETS"
            );
        }
    }

    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let binaries: BTreeSet<&str> = manifest
        .lines()
        .filter_map(|line| line.trim().strip_prefix("name = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .filter(|name| *name != "feedproxy-fuzz")
        .collect();
    assert_eq!(
        binaries, targets,
        "fuzz/Cargo.toml [[bin]]s differ from the targets"
    );
    for name in &targets {
        let source = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text =
            fs::read_to_string(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        assert!(
            text.contains(&format!("feed_fuzz::{name}(")),
            "{} does not call feed_fuzz::{name}",
            source.display()
        );
    }
}
