//! [`Kv`] on object storage: SlateDB, the engine of cluster mode.
//!
//! `embedb serve --storage s3://bucket/prefix` keeps its rows here instead of in a local redb
//! file. The store is an LSM tree whose write-ahead log, sorted tables and manifest are objects
//! in the bucket, so the data outlives the machine and other nodes can open it.
//!
//! A commit walks through like this: [`Txn::commit`](crate::Txn::commit) hands its batch to
//! [`Kv::write`]; it becomes one SlateDB `WriteBatch`, which SlateDB appends to its in-memory
//! WAL buffer; the write returns only once that WAL segment is an object in the bucket
//! (`await_durable`), so an acknowledged commit survives the loss of this node. Snapshots are
//! SlateDB snapshots (a sequence number), so a reader's view is frozen like redb's.
//!
//! SlateDB is async and embedb's `Kv` is not: the engine owns a small tokio runtime, and each
//! call runs its future there and waits for the answer (the caller may itself be a tokio worker,
//! where `block_on` is not allowed). SlateDB fences a writer that a newer one has replaced:
//! its writes then fail, and so does every later call here ([`Error::Storage`] with "fenced").
//!
//! Storage URLs: `s3://bucket[/prefix]` (endpoint, region, credentials and `AWS_ALLOW_HTTP` from
//! the usual `AWS_*` variables), `file:///absolute/dir` (a local directory: tests, one machine)
//! and `memory://` (in memory: tests).

use std::sync::Arc;
use std::time::Duration;

use slatedb::config::{DurabilityLevel, ReadOptions, ScanOptions, Settings, WriteOptions};
use slatedb::object_store::{self, ObjectStore};
use slatedb::{Db, DbSnapshot, IterationOrder, WriteBatch};

use crate::kv::{Kv, Snapshot};
use crate::{Error, Result};

/// How often SlateDB ships its WAL buffer to the bucket when nothing forces it; a commit waits
/// for the next one, so this bounds commit latency.
const FLUSH_INTERVAL: Duration = Duration::from_millis(5);

/// A [`Kv`] on a SlateDB database.
pub struct SlateKv {
    db: Arc<Db>,
    runtime: Arc<Runtime>,
}

/// The engine's runtime. Whoever lets go of it last may be inside another runtime (a snapshot
/// dropped by a server task), where a runtime cannot be dropped the usual way: it is shut down
/// in the background instead.
pub(crate) struct Runtime(pub(crate) Option<tokio::runtime::Runtime>);

impl std::ops::Deref for Runtime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("until dropped")
    }
}

impl Runtime {
    /// A small runtime of the storage engine's own (two workers named `name`).
    pub(crate) fn start(name: &str) -> Result<Runtime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(|e| Error::Storage(format!("starting the storage runtime: {e}")))?;
        Ok(Runtime(Some(rt)))
    }
}

/// Opens (or creates) the SlateDB database at `path` in `store` as its writer, fencing any
/// writer that opened it before.
pub(crate) fn open_writer_db(runtime: &Runtime, store: Arc<dyn ObjectStore>, path: &str) -> Result<Db> {
    let settings = Settings { flush_interval: Some(FLUSH_INTERVAL), ..Settings::default() };
    let path = path.to_string();
    run(runtime, async move { Db::builder(path, store).with_settings(settings).build().await }).map_err(err)
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

pub(crate) fn err(e: slatedb::Error) -> Error {
    match e.kind() {
        slatedb::ErrorKind::Closed(slatedb::CloseReason::Fenced) => {
            Error::NotWriter("fenced: another node has opened this database as its writer; this node can commit nothing more".into())
        }
        _ => Error::Storage(format!("object storage: {e}")),
    }
}

/// The object store and the path inside it that a storage URL names.
pub fn object_store_for(url: &str) -> Result<(Arc<dyn ObjectStore>, String)> {
    let bad = |why: &str| Error::Storage(format!("storage URL '{url}': {why}"));
    if let Some(path) = url.strip_prefix("memory://") {
        return Ok((Arc::new(object_store::memory::InMemory::new()), path.trim_matches('/').to_string()));
    }
    if let Some(dir) = url.strip_prefix("file://") {
        if !dir.starts_with('/') {
            return Err(bad("a file URL needs an absolute path (file:///dir)"));
        }
        std::fs::create_dir_all(dir).map_err(|e| bad(&e.to_string()))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| bad(&e.to_string()))?;
        return Ok((Arc::new(fs), String::new()));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        // The HTTP client's TLS uses the process's crypto provider: ring, as everywhere here.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            // Conditional PUTs (`If-None-Match`), which SlateDB's manifest and fencing rely on.
            .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch)
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        return Ok((Arc::new(s3), prefix.trim_matches('/').to_string()));
    }
    Err(bad("expected s3://bucket/prefix, file:///dir or memory://"))
}

impl SlateKv {
    /// Opens (or creates) the database at `path` in `store`, as its one writer: a writer that
    /// opened it before is fenced from then on.
    pub fn open(store: Arc<dyn ObjectStore>, path: &str) -> Result<SlateKv> {
        let runtime = Runtime::start("embedb-slatedb")?;
        let db = open_writer_db(&runtime, store, path)?;
        Ok(SlateKv { db: Arc::new(db), runtime: Arc::new(runtime) })
    }

    /// Opens the database a storage URL names.
    pub fn open_url(url: &str) -> Result<SlateKv> {
        let (store, path) = object_store_for(url)?;
        SlateKv::open(store, if path.is_empty() { "embedb" } else { &path })
    }

    /// Closes the database: buffered writes are flushed and the writer lets go.
    fn close_db(&self) -> Result<()> {
        let db = self.db.clone();
        run(&self.runtime, async move { db.close().await }).map_err(err)
    }
}

/// Runs `fut` on the engine's runtime and waits for it from this (non-async) caller.
pub(crate) fn run<T: Send + 'static>(rt: &tokio::runtime::Runtime, fut: impl std::future::Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().expect("the storage runtime ran the call")
}

impl Kv for SlateKv {
    fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        let snap = self.db.snapshot().map_err(err)?;
        Ok(Box::new(SlateSnapshot { snap, runtime: self.runtime.clone() }))
    }

    fn write(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut wb = WriteBatch::new();
        for (k, v) in batch {
            match v {
                Some(v) => wb.put(k, v),
                None => wb.delete(k),
            }
        }
        let db = self.db.clone();
        run(&self.runtime, async move {
            let handle = db.write_with_options(wb, &WriteOptions::default()).await?;
            handle.await_durable().await
        })
        .map_err(err)
    }

    fn close(&self) -> Result<()> {
        self.close_db()
    }
}

impl Drop for SlateKv {
    fn drop(&mut self) {
        let _ = self.close_db();
    }
}

struct SlateSnapshot {
    snap: Arc<DbSnapshot>,
    runtime: Arc<Runtime>,
}

/// Reads see what this writer committed, durable or not yet (a commit returns once durable).
fn read_options() -> ReadOptions {
    ReadOptions { durability_filter: DurabilityLevel::Memory, ..ReadOptions::default() }
}

impl Snapshot for SlateSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (snap, key) = (self.snap.clone(), key.to_vec());
        let v = run(&self.runtime, async move { snap.get_with_options(&key, &read_options()).await }).map_err(err)?;
        Ok(v.map(|b| b.to_vec()))
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize, reverse: bool) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let Some((lo, hi)) = crate::kv::scan_bounds(start, end).filter(|_| limit > 0) else { return Ok(Vec::new()) };
        let (snap, range) = (self.snap.clone(), (lo.map(<[u8]>::to_vec), hi.map(<[u8]>::to_vec)));
        run(&self.runtime, async move {
            let order = if reverse { IterationOrder::Descending } else { IterationOrder::Ascending };
            let opts = ScanOptions { durability_filter: DurabilityLevel::Memory, order, ..ScanOptions::default() };
            let mut it = snap.scan_with_options(range, &opts).await?;
            let mut out = Vec::new();
            while out.len() < limit {
                match it.next().await? {
                    Some(kv) => out.push((kv.key.to_vec(), kv.value.to_vec())),
                    None => break,
                }
            }
            Ok::<_, slatedb::Error>(out)
        })
        .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slate_kv_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let open = |d: &std::path::Path| SlateKv::open_url(&format!("file://{}", d.display())).map(|kv| Arc::new(kv) as Arc<dyn Kv>);
        crate::conformance::check_all(&open, dir.path(), true);
    }

    /// The contract on a real S3 server: `tests/python/test_object_storage.py` runs this with
    /// `EMBEDB_TEST_S3_URL` naming a bucket on the SeaweedFS it starts; without it, nothing runs.
    #[test]
    fn slate_kv_meets_the_contract_on_s3() {
        let Ok(url) = std::env::var("EMBEDB_TEST_S3_URL") else { return };
        let dir = tempfile::tempdir().unwrap();
        // Each test directory is a prefix in the bucket (a reopen finds the same one).
        let run = dir.path().file_name().unwrap().to_string_lossy().into_owned();
        let open = |d: &std::path::Path| {
            let name = d.file_name().unwrap().to_string_lossy();
            SlateKv::open_url(&format!("{}/{run}/{name}", url.trim_end_matches('/'))).map(|kv| Arc::new(kv) as Arc<dyn Kv>)
        };
        crate::conformance::check_all(&open, dir.path(), true);
    }

    #[test]
    fn a_second_writer_fences_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let old = SlateKv::open_url(&url).unwrap();
        old.write(&[(b"a".to_vec(), Some(b"1".to_vec()))]).unwrap();
        let new = SlateKv::open_url(&url).unwrap();
        assert_eq!(new.snapshot().unwrap().get(b"a").unwrap(), Some(b"1".to_vec()), "the new writer sees the old one's commits");
        let e = old.write(&[(b"b".to_vec(), Some(b"2".to_vec()))]).unwrap_err();
        assert!(e.to_string().to_lowercase().contains("fenced"), "{e}");
        new.write(&[(b"c".to_vec(), Some(b"3".to_vec()))]).unwrap();
        drop(new);
        let again = SlateKv::open_url(&url).unwrap();
        let keys: Vec<Vec<u8>> = again.snapshot().unwrap().scan(b"", b"", 10, false).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"c".to_vec()], "the fenced writer's write is nowhere");
    }
}
