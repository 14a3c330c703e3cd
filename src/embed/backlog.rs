//! The durable backlog of an async `EMBED_TEXT` column: rows whose vector is still to be made.
//!
//! `INSERT INTO docs (content) VALUES ('…')` on a column declared
//! `EMBED_TEXT('jina_ai/…', content, '{"embedb.mode": "async"}')` walks like this: the DML path
//! evaluates the text argument instead of the call, stores the row with the vector NULL, and puts
//! an entry here in the same transaction — key `x_backlog/p/<table id><column id><handle>`,
//! value the text and when it was queued ([`enqueue`]). The row and its entry commit together,
//! so the backlog survives restarts and `kill -9` exactly as the rows do. The backlog worker
//! (`session::backlog_worker`) scans the entries, embeds their texts through the `Embedder`
//! (cache, batcher and concurrency limits shared with synchronous statements), and in one
//! transaction per batch writes each vector into its row and deletes its entry — only if the
//! entry still holds the text it embedded. A later UPDATE of the text rewrites the entry in the
//! UPDATE's own transaction; if that commits first the worker sees another text and leaves the
//! row for the next round, if it commits second the worker's write was first and the UPDATE
//! makes the row pending again (and a racing pair of writes to the row is a conflict, 9007, for
//! the later committer). Either way the newest text wins and no stale vector stays.
//!
//! A row that keeps failing on its own while its provider answers other rows is moved to the
//! failed list (`x_backlog/f/…`, with its error), which the worker does not scan;
//! `EMBEDDING_RETRY('table')` moves failed rows back. Deleting a row deletes its entries
//! ([`forget_row`]); dropping or truncating a table, its whole range ([`forget_table`]).
//!
//! Counts come from scans of the statement's snapshot ([`counts`]), so `information_schema`,
//! search warnings and `EMBEDDING_WAIT` agree with what that statement reads. What only this
//! process knows — rows embedded since start, the last error per column — is kept in
//! [`Progress`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use embedb_storage::codec::{decode_i64_cmp, encode_i64_cmp, prefix_end};
use embedb_storage::Txn;
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SqlError};

/// Pending entries (the worker's queue).
pub const PENDING: &[u8] = b"x_backlog/p/";
/// Failed entries (kept for `EMBEDDING_RETRY` and `information_schema`).
pub const FAILED: &[u8] = b"x_backlog/f/";
/// Vectors made for a model change's shadow column, waiting for the switch (`model_change`):
/// little-endian float32s.
pub const READY: &[u8] = b"x_backlog/v/";

/// One row's wait for its vector.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// The text to embed (the generated column's text argument, evaluated when the row was written).
    pub text: String,
    /// When the row was queued (ms since the Unix epoch).
    pub queued_ms: u64,
    /// Failed attempts that counted against this row.
    #[serde(default)]
    pub attempts: u32,
    /// The last error that counted against it.
    #[serde(default)]
    pub error: Option<String>,
}

impl Entry {
    pub fn new(text: String) -> Entry {
        Entry { text, queued_ms: now_ms(), attempts: 0, error: None }
    }
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an entry serialises")
    }
    pub fn decode(b: &[u8]) -> Result<Entry> {
        serde_json::from_slice(b).map_err(|e| SqlError::other(format!("corrupt embedding backlog entry: {e}")))
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Where an entry lives: the list (`PENDING` or `FAILED`), then table, column and row handle,
/// each in an order-preserving encoding, so one column's entries are one key range.
pub fn key(list: &[u8], table_id: i64, column_id: u32, handle: i64) -> Vec<u8> {
    let mut k = column_prefix(list, table_id, column_id);
    k.extend_from_slice(&encode_i64_cmp(handle));
    k
}

pub fn table_prefix(list: &[u8], table_id: i64) -> Vec<u8> {
    let mut k = list.to_vec();
    k.extend_from_slice(&encode_i64_cmp(table_id));
    k
}

pub fn column_prefix(list: &[u8], table_id: i64, column_id: u32) -> Vec<u8> {
    let mut k = table_prefix(list, table_id);
    k.extend_from_slice(&column_id.to_be_bytes());
    k
}

/// (table id, column id, handle) of an entry's key in either list.
pub fn decode_key(k: &[u8]) -> Option<(i64, u32, i64)> {
    let rest = k.strip_prefix(PENDING).or_else(|| k.strip_prefix(FAILED))?;
    if rest.len() != 20 {
        return None;
    }
    let table = decode_i64_cmp(&rest[..8]).ok()?;
    let column = u32::from_be_bytes(rest[8..12].try_into().ok()?);
    let handle = decode_i64_cmp(&rest[12..]).ok()?;
    Some((table, column, handle))
}

/// Queue (or, with `None` — the text is NULL, so is the vector — unqueue) one row's embedding,
/// replacing whatever was queued or failed for it before.
pub fn enqueue(txn: &Txn, table_id: i64, column_id: u32, handle: i64, text: Option<String>) {
    txn.delete(key(FAILED, table_id, column_id, handle));
    txn.delete(key(READY, table_id, column_id, handle));
    let k = key(PENDING, table_id, column_id, handle);
    match text {
        Some(t) => txn.put(k, Entry::new(t).encode()),
        None => txn.delete(k),
    }
}

/// A row is deleted: its entries go with it.
pub fn forget_row(txn: &Txn, table_id: i64, column_ids: &[u32], handle: i64) {
    for &c in column_ids {
        for list in [PENDING, FAILED, READY] {
            txn.delete(key(list, table_id, c, handle));
        }
    }
}

/// A row moved to another handle (an UPDATE of its primary key) without a new text: its entries
/// follow it.
pub fn move_row(txn: &Txn, table_id: i64, column_ids: &[u32], from: i64, to: i64) -> Result<()> {
    for &c in column_ids {
        for list in [PENDING, FAILED, READY] {
            if let Some(v) = txn.get(&key(list, table_id, c, from))? {
                txn.delete(key(list, table_id, c, from));
                txn.put(key(list, table_id, c, to), v);
            }
        }
    }
    Ok(())
}

/// Every entry of a table (DROP, TRUNCATE).
pub fn forget_table(txn: &Txn, table_id: i64) -> Result<()> {
    forget_range(txn, &[PENDING, FAILED, READY], |list| table_prefix(list, table_id))
}

/// Every entry of one column (a model change cancelled or switched).
pub fn forget_column(txn: &Txn, table_id: i64, column_id: u32) -> Result<()> {
    forget_range(txn, &[PENDING, FAILED, READY], |list| column_prefix(list, table_id, column_id))
}

/// Whether a row has an entry of `column_id` in any list (pending, failed or ready).
pub fn has_entry(txn: &Txn, table_id: i64, column_id: u32, handle: i64) -> Result<bool> {
    for list in [PENDING, FAILED, READY] {
        if txn.get(&key(list, table_id, column_id, handle))?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A vector made for a model change's shadow column, kept until the switch.
pub fn store_ready(txn: &Txn, table_id: i64, column_id: u32, handle: i64, vector: &[f32]) {
    txn.delete(key(PENDING, table_id, column_id, handle));
    txn.put(key(READY, table_id, column_id, handle), embedb_vector::vector_to_bytes(vector));
}

/// The vector made for a row of a model change's shadow column, if any.
pub fn ready(txn: &Txn, table_id: i64, column_id: u32, handle: i64) -> Result<Option<Vec<f32>>> {
    match txn.get(&key(READY, table_id, column_id, handle))? {
        Some(b) => embedb_vector::vector_from_bytes(&b).map(Some).map_err(|e| SqlError::other(format!("corrupt embedding backlog vector: {e}"))),
        None => Ok(None),
    }
}

fn forget_range(txn: &Txn, lists: &[&[u8]], prefix: impl Fn(&[u8]) -> Vec<u8>) -> Result<()> {
    for &list in lists {
        let start = prefix(list);
        let end = prefix_end(&start);
        let mut keys = Vec::new();
        txn.scan_visit(&start, &end, &mut |k, _| {
            keys.push(k.to_vec());
            true
        })?;
        for k in keys {
            txn.delete(k);
        }
    }
    Ok(())
}

/// Move a column's failed rows back to the queue, their attempts reset. Returns how many.
pub fn retry_failed(txn: &Txn, table_id: i64, column_id: u32) -> Result<u64> {
    let start = column_prefix(FAILED, table_id, column_id);
    let end = prefix_end(&start);
    let mut moved = Vec::new();
    txn.scan_visit(&start, &end, &mut |k, v| {
        moved.push((k.to_vec(), v.to_vec()));
        true
    })?;
    for (k, v) in &moved {
        let mut e = Entry::decode(v)?;
        e.attempts = 0;
        e.error = None;
        let (t, c, h) = decode_key(k).ok_or_else(|| SqlError::other("corrupt embedding backlog key"))?;
        txn.delete(k.clone());
        txn.put(key(PENDING, t, c, h), e.encode());
    }
    Ok(moved.len() as u64)
}

/// One column's backlog as a snapshot sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub pending: u64,
    pub failed: u64,
    /// Vectors made and waiting for a model change's switch.
    pub ready: u64,
    /// When the oldest pending row was queued (ms since the epoch).
    pub oldest_pending_ms: Option<u64>,
}

/// Count one column's entries (a scan of its two ranges).
pub fn counts(txn: &Txn, table_id: i64, column_id: u32) -> Result<Counts> {
    let mut c = Counts::default();
    let start = column_prefix(PENDING, table_id, column_id);
    let mut bad = None;
    txn.scan_visit(&start, &prefix_end(&start), &mut |_, v| {
        c.pending += 1;
        match Entry::decode(v) {
            Ok(e) => c.oldest_pending_ms = Some(c.oldest_pending_ms.map_or(e.queued_ms, |o| o.min(e.queued_ms))),
            Err(e) => bad = Some(e),
        }
        true
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    let start = column_prefix(FAILED, table_id, column_id);
    txn.scan_visit(&start, &prefix_end(&start), &mut |_, _| {
        c.failed += 1;
        true
    })?;
    let start = column_prefix(READY, table_id, column_id);
    txn.scan_visit(&start, &prefix_end(&start), &mut |_, _| {
        c.ready += 1;
        true
    })?;
    Ok(c)
}

/// Every entry of one list with its key's parts, in key order (`information_schema`'s per-row view).
pub fn entries(txn: &Txn, list: &[u8]) -> Result<Vec<((i64, u32, i64), Entry)>> {
    let mut out = Vec::new();
    let mut bad = None;
    txn.scan_visit(list, &prefix_end(list), &mut |k, v| {
        match (decode_key(k), Entry::decode(v)) {
            (Some(parts), Ok(e)) => out.push((parts, e)),
            (_, Err(e)) => bad = Some(e),
            (None, _) => bad = Some(SqlError::other("corrupt embedding backlog key")),
        }
        bad.is_none()
    })?;
    match bad {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// What this process knows of the backlog beyond the stored entries, per (table id, column id):
/// rows embedded since start and the last error; and the worker's wake-up call.
#[derive(Default)]
pub struct Progress {
    columns: Mutex<HashMap<(i64, u32), ColumnProgress>>,
    queued: Mutex<bool>,
    wake: Condvar,
    stopped: AtomicBool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ColumnProgress {
    pub embedded: u64,
    pub last_error: Option<String>,
}

impl Progress {
    pub fn column(&self, table_id: i64, column_id: u32) -> ColumnProgress {
        self.columns.lock().get(&(table_id, column_id)).cloned().unwrap_or_default()
    }
    pub fn embedded(&self, table_id: i64, column_id: u32, n: u64) {
        self.columns.lock().entry((table_id, column_id)).or_default().embedded += n;
    }
    pub fn error(&self, table_id: i64, column_id: u32, message: &str) {
        self.columns.lock().entry((table_id, column_id)).or_default().last_error = Some(message.to_string());
    }
    /// Rows were queued (or retried): wake the worker now rather than at its next poll.
    pub fn notify(&self) {
        *self.queued.lock() = true;
        self.wake.notify_all();
    }
    /// The worker's idle wait: until `notify` or `timeout`.
    pub fn wait(&self, timeout: std::time::Duration) {
        let mut q = self.queued.lock();
        if !*q {
            self.wake.wait_for(&mut q, timeout);
        }
        *q = false;
    }
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.notify();
    }
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_follow_their_rows() {
        let store = embedb_storage::Store::in_memory();
        let txn = store.begin().unwrap();
        enqueue(&txn, 7, 3, -5, Some("negative handle".into()));
        enqueue(&txn, 7, 3, 2, Some("two".into()));
        enqueue(&txn, 7, 4, 2, Some("other column".into()));
        enqueue(&txn, 8, 3, 1, Some("other table".into()));
        txn.commit().unwrap();

        let txn = store.begin().unwrap();
        assert_eq!(counts(&txn, 7, 3).unwrap().pending, 2);
        let all = entries(&txn, PENDING).unwrap();
        let keys: Vec<_> = all.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec![(7, 3, -5), (7, 3, 2), (7, 4, 2), (8, 3, 1)], "key order is table, column, handle");
        // A NULL text unqueues; a new text replaces.
        enqueue(&txn, 7, 3, -5, None);
        enqueue(&txn, 7, 3, 2, Some("two, edited".into()));
        assert_eq!(counts(&txn, 7, 3).unwrap().pending, 1);
        assert_eq!(Entry::decode(&txn.get(&key(PENDING, 7, 3, 2)).unwrap().unwrap()).unwrap().text, "two, edited");
        // Failed rows are counted apart and come back with EMBEDDING_RETRY.
        let k = key(PENDING, 7, 3, 2);
        let mut e = Entry::decode(&txn.get(&k).unwrap().unwrap()).unwrap();
        e.attempts = 3;
        e.error = Some("bad text".into());
        txn.delete(k);
        txn.put(key(FAILED, 7, 3, 2), e.encode());
        assert_eq!(counts(&txn, 7, 3).unwrap(), Counts { pending: 0, failed: 1, ready: 0, oldest_pending_ms: None });
        assert_eq!(retry_failed(&txn, 7, 3).unwrap(), 1);
        let back = Entry::decode(&txn.get(&key(PENDING, 7, 3, 2)).unwrap().unwrap()).unwrap();
        assert_eq!((back.attempts, back.error), (0, None));
        // A primary-key update moves the entry; a delete and a DROP remove them.
        move_row(&txn, 7, &[3, 4], 2, 20).unwrap();
        assert!(txn.get(&key(PENDING, 7, 3, 20)).unwrap().is_some() && txn.get(&key(PENDING, 7, 4, 20)).unwrap().is_some());
        forget_row(&txn, 7, &[3], 20);
        assert_eq!(counts(&txn, 7, 3).unwrap().pending, 0);
        forget_table(&txn, 7).unwrap();
        let left: Vec<_> = entries(&txn, PENDING).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(left, vec![(8, 3, 1)]);
    }
}
