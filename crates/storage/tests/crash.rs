//! Crash safety: a child process commits numbered transactions in a loop and
//! is SIGKILLed mid-way; after reopening, every transaction the child reported
//! as committed must be fully present and no transaction may be half applied.
//!
//! The child is this same test binary, re-run with `CHILD_ENV` set, which
//! makes the test function act as the writer instead of the checker.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use embedb_storage::Store;

const CHILD_ENV: &str = "EMBEDB_STORAGE_CRASH_CHILD_DIR";
const START_ENV: &str = "EMBEDB_STORAGE_CRASH_CHILD_START";
const KEYS_PER_TXN: usize = 6;
const ROUNDS: usize = 4;

fn key(txn: u64, part: usize) -> Vec<u8> {
    format!("txn{txn:08}/part{part}").into_bytes()
}

fn value(txn: u64, part: usize) -> Vec<u8> {
    // Large-ish values so a commit spans several pages and a kill is likely
    // to land in the middle of writing one.
    let mut v = format!("{txn}:{part}:").into_bytes();
    v.resize(3000 + part * 500, b'a' + (txn % 26) as u8);
    v
}

/// The writer: commits txn `start`, `start+1`, ... forever, printing each
/// number only after `commit` returned Ok.
fn run_child(dir: &Path, start: u64) -> ! {
    let store = Store::open(dir).expect("child open");
    let mut out = std::io::stdout().lock();
    for n in start.. {
        let txn = store.begin().unwrap();
        for part in 0..KEYS_PER_TXN {
            txn.put(key(n, part), value(n, part));
        }
        txn.commit().unwrap();
        writeln!(out, "COMMITTED {n}").unwrap();
        out.flush().unwrap();
    }
    unreachable!()
}

/// Returns how many transactions (a prefix 0..count) are fully present,
/// asserting that none is partially present and nothing exists beyond it.
fn check_store(dir: &Path) -> u64 {
    let store = Store::open(dir).unwrap();
    let txn = store.begin().unwrap();
    let all = txn.scan(b"txn", b"txo", usize::MAX, false).unwrap();
    assert_eq!(
        all.len() % KEYS_PER_TXN,
        0,
        "a transaction is partially applied"
    );
    let count = (all.len() / KEYS_PER_TXN) as u64;
    for n in 0..count {
        for part in 0..KEYS_PER_TXN {
            let k = key(n, part);
            assert_eq!(
                txn.get(&k).unwrap(),
                Some(value(n, part)),
                "txn {n} part {part}"
            );
        }
    }
    count
}

#[test]
fn commits_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let start = std::env::var(START_ENV).unwrap().parse().unwrap();
        run_child(Path::new(&dir), start);
    }

    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut present = 0u64;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "commits_survive_sigkill",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env(START_ENV, present.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut reported: Option<u64> = None;
        // Let the child commit a batch, then kill it at a varying moment
        // while it keeps committing.
        let target = present + 20 + 7 * round as u64;
        for line in lines.by_ref() {
            if let Some(n) = line.unwrap().strip_prefix("COMMITTED ") {
                let n: u64 = n.parse().unwrap();
                reported = Some(n);
                if n >= target {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(300 * round as u64));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // Lines written before the kill are still in the pipe.
        for line in lines {
            if let Some(n) = line.unwrap().strip_prefix("COMMITTED ") {
                reported = Some(n.parse().unwrap());
            }
        }
        let reported = reported.expect("child reported no commits");

        let count = check_store(dir.path());
        // Everything reported is there; at most one more transaction (committed
        // but killed before it could print) may be too.
        assert!(
            count == reported + 1 || count == reported + 2,
            "round {round}: child reported txn {reported} committed, store has {count} txns"
        );
        present = count;
    }
}
