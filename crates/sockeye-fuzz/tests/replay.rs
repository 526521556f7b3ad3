//! Replays every committed fuzz input on the stable toolchain: the hand-written seeds
//! (`fuzz/seeds/TARGET`), the minimised corpora of the long runs (`fuzz/corpus-min/TARGET`)
//! and every past finding (`fuzz/regressions/TARGET`), through the same target bodies that
//! cargo-fuzz runs. A fresh machine has no nightly compiler, so this is how the fuzz inputs
//! run in CI.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file under `fuzz/KIND/TARGET`, sorted (an absent folder has none).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = sockeye_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz target named {target}"));
    let mut count = 0;
    for kind in ["seeds", "corpus-min", "regressions"] {
        for file in inputs(kind, target) {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let result = std::panic::catch_unwind(|| run(&data));
            assert!(
                result.is_ok(),
                "fuzz input {} of target {target} fails; reproduce with \
                 `cargo fuzz run {target} {}` (nightly or RUSTC_BOOTSTRAP=1)",
                file.display(),
                file.display()
            );
            count += 1;
        }
    }
    assert!(
        count > 0,
        "target {target} has no committed input under fuzz/seeds, fuzz/corpus-min or \
         fuzz/regressions: add seeds, or run scripts/fuzz-long.sh and commit the minimised corpus"
    );
    eprintln!("{target}: {count} inputs replayed");
}

#[test]
fn every_target_is_replayed_here() {
    let here = include_str!("replay.rs");
    for (name, _) in sockeye_fuzz::TARGETS {
        assert!(
            here.contains(&format!("fn {name}()")),
            "fuzz target {name} has no replay test in this file"
        );
    }
}

#[test]
fn every_fuzz_binary_has_a_target() {
    let dir = fuzz_dir().join("fuzz_targets");
    for entry in std::fs::read_dir(&dir).expect("fuzz/fuzz_targets exists") {
        let path = entry.expect("readable").path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        assert!(
            sockeye_fuzz::TARGETS.iter().any(|(name, _)| *name == stem),
            "fuzz/fuzz_targets/{stem}.rs has no body in sockeye-fuzz (so no stable replay)"
        );
    }
}

#[test]
fn engine_packet() {
    replay("engine_packet");
}

#[test]
fn engine_payload() {
    replay("engine_payload");
}

#[test]
fn eio3_payload() {
    replay("eio3_payload");
}

#[test]
fn eio3_binary() {
    replay("eio3_binary");
}

#[test]
fn socketio_json() {
    replay("socketio_json");
}

#[test]
fn socketio_msgpack() {
    replay("socketio_msgpack");
}

#[test]
fn engine_requests() {
    replay("engine_requests");
}

#[test]
fn sockeye_requests() {
    replay("sockeye_requests");
}

#[test]
fn redis_wire() {
    replay("redis_wire");
}

#[test]
fn pybus_wire() {
    replay("pybus_wire");
}

#[test]
fn ws_inflate() {
    replay("ws_inflate");
}

#[test]
fn redis_streams() {
    replay("redis_streams");
}

#[test]
fn nats_wire() {
    replay("nats_wire");
}

/// The seeds captured from two sockeye nodes on NATS (every subject of a cluster session,
/// `node-*`) are what the adapter really publishes: every one must be accepted, not only
/// survived; the hand-written hostile ones (`hostile-*`) must be refused.
#[test]
fn nats_wire_accepts_what_the_adapter_publishes() {
    use sockeye_nats::__fuzz;
    let dir = fuzz_dir().join("seeds").join("nats_wire");
    let (mut accepted, mut refused) = (0, 0);
    for entry in std::fs::read_dir(&dir).expect("fuzz/seeds/nats_wire exists") {
        let path = entry.expect("readable").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let data = std::fs::read(&path).expect("readable seed");
        let Some((&kind, payload)) = data.split_first() else {
            panic!("{name} is empty");
        };
        let ok = if kind == 0 {
            __fuzz::message(payload)
        } else {
            __fuzz::session(payload)
        };
        if name.starts_with("node-") {
            assert!(ok, "{name}: what the adapter publishes is refused");
            accepted += 1;
        } else if name.starts_with("hostile-") {
            assert!(!ok, "{name}: a hostile input is accepted");
            refused += 1;
        }
    }
    assert!(
        accepted >= 20 && refused >= 4,
        "{accepted} captured, {refused} hostile"
    );
}

/// The seeds captured from the official streams adapter (fuzz/seeds/capture-redis-streams.js)
/// are what a Node node really writes: every one must be accepted, not only survived.
#[test]
fn redis_streams_accepts_what_the_node_adapter_writes() {
    use sockeye_redis::__fuzz;
    let dir = fuzz_dir().join("seeds").join("redis_streams");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/seeds/redis_streams exists") {
        let path = entry.expect("readable").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.starts_with("node-") {
            continue;
        }
        let data = std::fs::read(&path).expect("readable seed");
        let Some((&kind, payload)) = data.split_first() else {
            panic!("{name} is empty");
        };
        let accepted = match kind {
            0 => __fuzz::streams_entry(payload),
            1 => __fuzz::streams_pubsub(payload),
            _ => __fuzz::streams_session(payload),
        };
        assert!(accepted, "{name}: the Node adapter's output is refused");
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} captured seeds");
}

#[test]
fn postgres_wire() {
    replay("postgres_wire");
}

/// The seeds captured from the official Postgres adapter and emitter
/// (fuzz/seeds/capture-postgres.js) are all accepted: the decoder reads what Node writes.
#[test]
fn postgres_captured_seeds_are_accepted() {
    let dir = fuzz_dir().join("seeds").join("postgres_wire");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/seeds/postgres_wire exists") {
        let path = entry.expect("readable").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with("node-") {
            continue;
        }
        let data = std::fs::read(&path).expect("readable seed");
        assert!(
            sockeye_postgres::__fuzz::accepts(&data),
            "captured seed {name} is refused"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} captured seeds");
}
