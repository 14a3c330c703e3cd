//! The write-ahead log in front of redb: one small append and one `fdatasync` per commit.
//!
//! A durable redb commit writes several pages across its file (leaf, branches, the region
//! header, the commit slot) and syncs them all: about 0.45 ms per single-row commit here, where
//! InnoDB appends one redo record and syncs that. So [`crate::redb_kv::RedbKv`] writes a batch
//! like this:
//! 1. [`Wal::append`] writes the batch as one record at the log's tail and syncs it: from here
//!    the batch survives a crash.
//! 2. The batch goes into the memtable (`crate::memtable`): visible to new snapshots, not in
//!    redb yet.
//! 3. Every [`CHECKPOINT_BYTES`] of log (or when the log is full) commits go on in the other log
//!    of a pair while a durable redb commit writes this log's memtable to the database file;
//!    then [`Wal::reset`] starts this log over under a new epoch. Of the two logs, the one of the
//!    older epoch holds the older records.
//!
//! On open, the records of the current epoch are read in order until the first one that is torn
//! (a crash during its write: it was never acknowledged) and applied again in one durable commit.
//! Re-applying records that redb already has is harmless: each record holds whole values, and
//! applying them all in order leaves every key as its last record wrote it.
//!
//! The file is written in full (zeros) when created, so that a record's sync never has to
//! allocate blocks or change the file's size: only the written pages go to the disk. Layout: a
//! 4 KiB header (`magic`, `epoch`), then records: `magic u32 | crc32 u32 | epoch u64 | seq u64 |
//! len u32 | payload`, the CRC over everything after itself. A record counts only with the
//! current epoch and the next sequence number, so the bytes of older epochs past the tail are
//! never mistaken for new ones.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::{Error, Result};

const MAGIC: u32 = 0x4542_574c; // "EBWL"
const HEADER: u64 = 4096;
const RECORD_HEADER: usize = 28;
/// The log's size: the most a run of commits may log before a checkpoint must make them durable.
pub const CAPACITY: u64 = 8 << 20;
/// Log bytes after which a write makes redb durable and restarts the log.
pub const CHECKPOINT_BYTES: u64 = 2 << 20;

/// One commit's writes: `None` deletes the key.
pub type Batch = Vec<(Vec<u8>, Option<Vec<u8>>)>;

pub struct Wal {
    file: File,
    epoch: u64,
    next_seq: u64,
    tail: u64,
}

fn io(e: std::io::Error) -> Error {
    Error::Storage(format!("write-ahead log: {e}"))
}

impl Wal {
    /// Opens the log at `path` (creating it, full size, if missing) and returns the batches of
    /// its current epoch, oldest first, for the caller to apply before anything else.
    pub fn open(path: &Path) -> Result<(Wal, Vec<Batch>)> {
        let fresh = !path.exists();
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
        if fresh || file.metadata().map_err(io)?.len() < CAPACITY {
            // Zeros, then the header: a crash in between leaves no header, so this runs again.
            file.set_len(0).map_err(io)?;
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..(CAPACITY >> 20) {
                file.write_all(&zeros).map_err(io)?;
            }
            let mut wal = Wal { file, epoch: 0, next_seq: 0, tail: HEADER };
            wal.reset()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            }
            return Ok((wal, Vec::new()));
        }
        let mut head = [0u8; 12];
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.read_exact(&mut head).map_err(io)?;
        if u32::from_le_bytes(head[..4].try_into().expect("4")) != MAGIC {
            return Err(Error::Corrupt("write-ahead log header is not embedb's".into()));
        }
        let epoch = u64::from_le_bytes(head[4..12].try_into().expect("8"));
        let mut wal = Wal { file, epoch, next_seq: 0, tail: HEADER };
        let mut batches = Vec::new();
        while let Some((batch, size)) = wal.read_record(wal.tail)? {
            batches.push(batch);
            wal.tail += size;
            wal.next_seq += 1;
        }
        Ok((wal, batches))
    }

    /// The record at `at` if it is whole and the next one of this epoch.
    fn read_record(&self, at: u64) -> Result<Option<(Batch, u64)>> {
        if at + RECORD_HEADER as u64 > CAPACITY {
            return Ok(None);
        }
        let mut h = [0u8; RECORD_HEADER];
        self.file.read_exact_at(&mut h, at).map_err(io)?;
        let word = |r: std::ops::Range<usize>| u64::from_le_bytes({
            let mut b = [0u8; 8];
            b[..r.len()].copy_from_slice(&h[r]);
            b
        });
        let (magic, crc, epoch, seq, len) = (word(0..4) as u32, word(4..8) as u32, word(8..16), word(16..24), word(24..28));
        if magic != MAGIC || epoch != self.epoch || seq != self.next_seq || at + RECORD_HEADER as u64 + len > CAPACITY {
            return Ok(None);
        }
        let mut payload = vec![0u8; len as usize];
        self.file.read_exact_at(&mut payload, at + RECORD_HEADER as u64).map_err(io)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&h[8..]);
        hasher.update(&payload);
        if hasher.finalize() != crc {
            return Ok(None);
        }
        Ok(decode(&payload).map(|b| (b, RECORD_HEADER as u64 + len)))
    }

    /// Log bytes written in this epoch.
    pub fn used(&self) -> u64 {
        self.tail - HEADER
    }

    /// Whether a record of `batch` fits before the end of the log.
    pub fn fits(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> bool {
        self.tail + (RECORD_HEADER + encoded_len(batch)) as u64 <= CAPACITY
    }

    /// Whether `batch` could ever fit in an empty log.
    pub fn ever_fits(batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> bool {
        HEADER + (RECORD_HEADER + encoded_len(batch)) as u64 <= CAPACITY
    }

    /// Writes `batch` as the next record and syncs it. On error nothing counts as logged.
    pub fn append(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        let mut rec = Vec::with_capacity(RECORD_HEADER + encoded_len(batch));
        rec.extend_from_slice(&MAGIC.to_le_bytes());
        rec.extend_from_slice(&[0; 4]);
        rec.extend_from_slice(&self.epoch.to_le_bytes());
        rec.extend_from_slice(&self.next_seq.to_le_bytes());
        rec.extend_from_slice(&(encoded_len(batch) as u32).to_le_bytes());
        encode(batch, &mut rec);
        let crc = crc32fast::hash(&rec[8..]);
        rec[4..8].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all_at(&rec, self.tail).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.tail += rec.len() as u64;
        self.next_seq += 1;
        Ok(())
    }

    /// Starts the log over (everything logged is durable elsewhere now): a new epoch in the
    /// header makes every older record stale.
    pub fn reset(&mut self) -> Result<()> {
        self.reset_after(self.epoch)
    }

    /// The epoch of this log's records: of two logs, the records of the older epoch came first.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// [`Wal::reset`] to an epoch above both this log's and `other` (the other log of a pair),
    /// so that this log's next records replay after the other's.
    pub fn reset_after(&mut self, other: u64) -> Result<()> {
        let epoch = self.epoch.max(other) + 1;
        let mut head = Vec::with_capacity(12);
        head.extend_from_slice(&MAGIC.to_le_bytes());
        head.extend_from_slice(&epoch.to_le_bytes());
        self.file.write_all_at(&head, 0).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.epoch = epoch;
        self.next_seq = 0;
        self.tail = HEADER;
        Ok(())
    }
}

/// Bytes [`encode`] writes for `batch`.
pub(crate) fn encoded_len(batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> usize {
    4 + batch.iter().map(|(k, v)| 8 + k.len() + v.as_ref().map_or(0, |v| v.len())).sum::<usize>()
}

/// A write batch as bytes (also a cluster's commit-log entry, `replica`): the count, then per
/// write the key and the value with u32 lengths, `u32::MAX` for a deletion.
pub(crate) fn encode(batch: &[(Vec<u8>, Option<Vec<u8>>)], out: &mut Vec<u8>) {
    out.extend_from_slice(&(batch.len() as u32).to_le_bytes());
    for (k, v) in batch {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        match v {
            Some(v) => {
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
    }
}

/// [`encode`]'s batch back; None if the bytes are cut short.
pub(crate) fn decode(mut p: &[u8]) -> Option<Batch> {
    fn take<'a>(p: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if p.len() < n {
            return None;
        }
        let (a, b) = p.split_at(n);
        *p = b;
        Some(a)
    }
    let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4"));
    let n = u32_of(take(&mut p, 4)?);
    let mut batch = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let kl = u32_of(take(&mut p, 4)?) as usize;
        let k = take(&mut p, kl)?.to_vec();
        let vl = u32_of(take(&mut p, 4)?);
        let v = if vl == u32::MAX { None } else { Some(take(&mut p, vl as usize)?.to_vec()) };
        batch.push((k, v));
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(pairs: &[(&str, Option<&str>)]) -> Batch {
        pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()))).collect()
    }

    #[test]
    fn records_come_back_in_order_until_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal");
        let (mut wal, none) = Wal::open(&path).unwrap();
        assert!(none.is_empty());
        let one = b(&[("a", Some("1")), ("b", None)]);
        let two = b(&[("c", Some(""))]);
        wal.append(&one).unwrap();
        wal.append(&two).unwrap();
        drop(wal);
        let (mut wal, got) = Wal::open(&path).unwrap();
        assert_eq!(got, vec![one.clone(), two]);
        // Reopening keeps the records (they are only dropped by a reset).
        wal.reset().unwrap();
        wal.append(&one).unwrap();
        drop(wal);
        let (_, got) = Wal::open(&path).unwrap();
        assert_eq!(got, vec![one], "older epochs' records past the tail are not read");
    }

    #[test]
    fn a_torn_record_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal");
        let (mut wal, _) = Wal::open(&path).unwrap();
        let one = b(&[("a", Some("1"))]);
        let three = b(&[("c", Some("3"))]);
        wal.append(&one).unwrap();
        wal.append(&three).unwrap();
        let tail = wal.tail;
        drop(wal);
        let (_, got) = Wal::open(&path).unwrap();
        assert_eq!(got, vec![one.clone(), three]);
        // A torn write: the last record's payload damaged.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"x", tail - 1).unwrap();
        drop(f);
        let (_, got) = Wal::open(&path).unwrap();
        assert_eq!(got, vec![one]);
    }
}
