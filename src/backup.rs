//! Backups: a consistent copy of the whole database while the server runs, and a restore into a
//! new data directory.
//!
//! `BACKUP DATABASE * TO 'local:///dir'` (TiDB's statement; `embedb backup` sends it) takes one
//! snapshot, the one a transaction starting now would read, and streams every key of it into
//! `dir/embedb.backup`. Commits go on meanwhile; the file holds exactly the commits up to the
//! snapshot. On a cluster node the snapshot is of that node's copy, so a reader can take backups
//! without loading the writer. Keys that belong to one node (its search-index token, its place
//! in the cluster's commit log) are left out.
//!
//! In cluster mode `BACKUP DATABASE * TO 's3://bucket/new/prefix'` (the cluster's own bucket)
//! makes a SlateDB checkpoint of the shared database instead, cloned under that prefix
//! (`embedb_storage::replica` has how), and `embedb restore --from s3://bucket/backup --storage
//! s3://bucket/new` clones it into a new prefix, which a new cluster then serves.
//!
//! `embedb restore --from dir --data-dir new` writes the keys into a new, empty data directory,
//! checking the file's checksum; a server started there answers like the original did at the
//! snapshot (search indexes are built at that start).
//!
//! The file: a magic line, one JSON header line, then per key `u32 len, key, u32 len, value`
//! (little-endian), then `u32::MAX`, the key count (u64) and the SHA-256 of everything before.
//! It is written to a temporary name and renamed once complete and synced.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Result, SqlError};

const MAGIC: &[u8] = b"EMBEDB-BACKUP 1\n";
/// The backup file inside the destination directory.
pub const FILE_NAME: &str = "embedb.backup";
/// Keys written to the new store per batch by a restore.
const CHUNK: usize = 4096;

/// What a backup wrote.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    pub keys: u64,
    pub snapshot: u64,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> SqlError {
    SqlError::new(8124, "HY000", format!("backup: {what} {}: {e}", path.display()))
}

/// The directory a `BACKUP … TO` / `RESTORE … FROM` storage URL names: `local:///dir`,
/// `file:///dir` or a plain absolute path.
pub fn local_dir(url: &str) -> Result<PathBuf> {
    let path = url.strip_prefix("local://").or_else(|| url.strip_prefix("file://")).unwrap_or(url);
    if !path.starts_with('/') {
        return Err(SqlError::new(8124, "HY000", format!("backup storage '{url}': expected local:///absolute/dir (other storage is not supported yet)")));
    }
    Ok(PathBuf::from(path))
}

/// The path inside the cluster's bucket that a checkpoint backup's (or restore's) `url` names:
/// both must be `s3://` URLs of one bucket (a checkpoint shares the cluster's files).
pub fn same_bucket_path(cluster: &str, url: &str) -> Result<String> {
    let bucket = |u: &str| u.strip_prefix("s3://").map(|rest| rest.split_once('/').map_or((rest.to_string(), String::new()), |(b, p)| (b.to_string(), p.trim_matches('/').to_string())));
    let (Some((ours, _)), Some((theirs, path))) = (bucket(cluster), bucket(url)) else {
        return Err(SqlError::new(8124, "HY000", format!("backup storage '{url}': the cluster's storage is not s3://")));
    };
    if ours != theirs || path.is_empty() {
        return Err(SqlError::new(8124, "HY000", format!("backup storage '{url}': a checkpoint backup goes to a new prefix of the cluster's own bucket (s3://{ours}/…); for a copy elsewhere back up to local:///dir")));
    }
    Ok(path)
}

/// Writes the snapshot of `txn` into `dir` (see the module docs).
pub fn write(txn: &embedb_storage::Txn, dir: &Path) -> Result<Written> {
    std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let file = std::fs::File::create(&tmp).map_err(|e| io("creating", &tmp, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut hash = Sha256::new();
    let mut put = |out: &mut BufWriter<std::fs::File>, bytes: &[u8]| -> Result<()> {
        hash.update(bytes);
        out.write_all(bytes).map_err(|e| io("writing", &tmp, e))
    };
    put(&mut out, MAGIC)?;
    let header = serde_json::json!({
        "server": crate::session::server_version(),
        "snapshot": txn.start_version(),
        "created": chrono::Utc::now().to_rfc3339(),
    });
    put(&mut out, format!("{header}\n").as_bytes())?;
    let mut keys = 0u64;
    let mut failed = None;
    txn.scan_visit(b"", b"", &mut |k, v| {
        if embedb_storage::replica::is_node_local(k) {
            return true;
        }
        let written = put(&mut out, &(k.len() as u32).to_le_bytes())
            .and_then(|()| put(&mut out, k))
            .and_then(|()| put(&mut out, &(v.len() as u32).to_le_bytes()))
            .and_then(|()| put(&mut out, v));
        keys += 1;
        failed = written.err();
        failed.is_none()
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    put(&mut out, &u32::MAX.to_le_bytes())?;
    put(&mut out, &keys.to_le_bytes())?;
    let digest = hash.finalize();
    out.write_all(&digest).map_err(|e| io("writing", &tmp, e))?;
    let file = out.into_inner().map_err(|e| io("writing", &tmp, e.into_error()))?;
    file.sync_all().map_err(|e| io("syncing", &tmp, e))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    std::fs::rename(&tmp, &path).map_err(|e| io("renaming", &tmp, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Written { path, bytes, keys, snapshot: txn.start_version() })
}

/// Restores the backup in `from` into the new data directory `data_dir` (which must hold no
/// database yet). Returns the number of keys.
pub fn restore(from: &Path, data_dir: &Path) -> std::result::Result<u64, String> {
    let path = from.join(FILE_NAME);
    if data_dir.join(embedb_storage::txn::DB_FILE_NAME).exists() {
        return Err(format!("{} already holds a database; restore into a new data dir", data_dir.display()));
    }
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut hash = Sha256::new();
    let mut read = |input: &mut BufReader<std::fs::File>, n: usize| -> std::result::Result<Vec<u8>, String> {
        let mut buf = vec![0; n];
        input.read_exact(&mut buf).map_err(|e| format!("{}: truncated ({e})", path.display()))?;
        hash.update(&buf);
        Ok(buf)
    };
    if read(&mut input, MAGIC.len())? != MAGIC {
        return Err(format!("{} is not an embedb backup", path.display()));
    }
    // The header line.
    loop {
        if read(&mut input, 1)? == b"\n" {
            break;
        }
    }
    let existed = data_dir.exists();
    let store = embedb_storage::Store::open(data_dir).map_err(|e| e.to_string())?;
    let mut batch = Vec::with_capacity(CHUNK);
    let mut keys = 0u64;
    let result = (|| {
        loop {
            let len = u32::from_le_bytes(read(&mut input, 4)?.try_into().expect("4 bytes"));
            if len == u32::MAX {
                break;
            }
            let k = read(&mut input, len as usize)?;
            let vlen = u32::from_le_bytes(read(&mut input, 4)?.try_into().expect("4 bytes"));
            let v = read(&mut input, vlen as usize)?;
            batch.push((k, Some(v)));
            keys += 1;
            if batch.len() == CHUNK {
                store.write_outside_txn(std::mem::take(&mut batch)).map_err(|e| e.to_string())?;
            }
        }
        let count = u64::from_le_bytes(read(&mut input, 8)?.try_into().expect("8 bytes"));
        if count != keys {
            return Err(format!("{}: {keys} keys, the trailer says {count}", path.display()));
        }
        Ok(())
    })();
    let digest = hash.finalize();
    let mut stored = [0u8; 32];
    let checked = result.and_then(|()| {
        input.read_exact(&mut stored).map_err(|e| format!("{}: no checksum ({e})", path.display()))?;
        if stored[..] != digest[..] {
            return Err(format!("{}: checksum mismatch: the file is damaged", path.display()));
        }
        store.write_outside_txn(std::mem::take(&mut batch)).map_err(|e| e.to_string())
    });
    let _ = store.close();
    if let Err(e) = checked {
        // Never leave a half-restored database behind.
        if existed {
            let _ = std::fs::remove_file(data_dir.join(embedb_storage::txn::DB_FILE_NAME));
        } else {
            let _ = std::fs::remove_dir_all(data_dir);
        }
        return Err(e);
    }
    Ok(keys)
}

/// Restores the checkpoint backup at `from` into the new cluster storage `to` (a new prefix of
/// the same bucket). Returns the log entry the restored database ends at.
pub fn restore_checkpoint(from: &str, to: &str) -> std::result::Result<u64, String> {
    let from_path = same_bucket_path(to, from).map_err(|e| e.message)?;
    let (objects, to_path) = embedb_storage::slate_kv::object_store_for(to).map_err(|e| e.to_string())?;
    embedb_storage::replica::restore_clone(objects, &from_path, &to_path).map(|c| c.head).map_err(|e| e.to_string())
}

impl crate::session::Session {
    /// `BACKUP DATABASE * TO 'local:///dir'` (lower-case tokens `toks`, the text `sql`).
    pub(crate) async fn backup_statement(&mut self, sql: &str, toks: &[String]) -> Result<crate::session::Output> {
        use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use std::sync::Arc;
        if toks.get(1).map(String::as_str) != Some("database") || toks.get(2).map(String::as_str) != Some("*") || toks.get(3).map(String::as_str) != Some("to") {
            return Err(SqlError::new(8200, "HY000", "Unsupported BACKUP: only BACKUP DATABASE * TO 'local:///dir' (the whole database) is supported"));
        }
        self.require_global(crate::privileges::SUPER)?;
        // BACKUP DATABASE * TO '<url>': the quoted rest after the fourth word.
        let (mut words, mut in_word, mut at) = (0, false, sql.len());
        for (i, c) in sql.char_indices() {
            if c.is_whitespace() {
                if in_word {
                    words += 1;
                    if words == 4 {
                        at = i;
                        break;
                    }
                }
                in_word = false;
            } else {
                in_word = true;
            }
        }
        let rest = sql[at..].trim().trim_end_matches(';').trim_end();
        let url = match rest.as_bytes() {
            [q @ (b'\'' | b'"'), .., last] if last == q && rest.len() >= 2 => rest[1..rest.len() - 1].to_string(),
            _ => return Err(SqlError::syntax("near BACKUP … TO: expected a quoted 'local:///dir'")),
        };
        let started = std::time::Instant::now();
        let (bytes, snapshot) = if url.starts_with("s3://") {
            // A cluster's checkpoint backup (readers forward it: the writer takes it).
            let Some(cluster) = self.engine.cluster.clone() else {
                return Err(SqlError::new(8124, "HY000", format!("backup storage '{url}': a checkpoint backup to s3:// is taken by a cluster (embedb serve --cluster); a single node backs up to local:///dir")));
            };
            let path = same_bucket_path(self.engine.config.storage.as_deref().unwrap_or(""), &url)?;
            let copied = crate::interrupt::blocking(|| cluster.kv.checkpoint_into(&path)).map_err(|e| SqlError::new(8124, "HY000", format!("backup to '{url}': {e}")))?;
            tracing::info!(head = copied.head, "checkpoint backup made at {url} ({} index checkpoint file(s) copied)", copied.index_files);
            // A checkpoint copies no data: its size here is 0, its snapshot the log entry it ends at.
            (0, copied.head)
        } else {
            let dir = local_dir(&url)?;
            let txn = self.engine.store.begin()?;
            let written = write(&txn, &dir);
            txn.rollback();
            let w = written?;
            tracing::info!(keys = w.keys, bytes = w.bytes, snapshot = w.snapshot, "backup written to {}", w.path.display());
            (w.bytes, w.snapshot)
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("Destination", DataType::Utf8, false),
            Field::new("Size", DataType::UInt64, false),
            Field::new("BackupTS", DataType::UInt64, false),
            Field::new("Queue Time", DataType::Utf8, false),
            Field::new("Execution Time", DataType::Utf8, false),
        ]));
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![url])),
            Arc::new(UInt64Array::from(vec![bytes])),
            Arc::new(UInt64Array::from(vec![snapshot])),
            Arc::new(StringArray::from(vec![now.clone()])),
            Arc::new(StringArray::from(vec![format!("{now} ({:.3} s)", started.elapsed().as_secs_f64())])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| SqlError::other(e.to_string()))?;
        Ok(crate::session::Output::Rows { schema, batches: vec![batch] })
    }
}
