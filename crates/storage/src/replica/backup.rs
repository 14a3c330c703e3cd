//! A cluster's backups as SlateDB checkpoints: a consistent copy of the shared database made
//! inside its own bucket without copying its data, and a restore into a new prefix.
//!
//! 1. [`ReplicaKv::checkpoint_into`] (the writer only: `BACKUP DATABASE * TO 's3://…'`, which
//!    readers forward) asks SlateDB for a checkpoint of everything written so far (it flushes
//!    the writer's memtable first, so every acknowledged commit is in it), then makes a *clone*
//!    of the database at that checkpoint under the backup's path. A commit is one SlateDB write
//!    batch, so the copy holds whole commits, a prefix of the log. The clone's manifest names
//!    the files it shares with the cluster's database and pins them there (SlateDB's garbage
//!    collector keeps what a clone's checkpoint names), so the copy is as cheap as a manifest
//!    and stays valid while the cluster goes on writing, compacting and collecting.
//! 2. [`restore_clone`] (`embedb restore --from s3://…/backup --storage s3://…/new`) clones the
//!    backup into a new prefix, which a new cluster then serves (its nodes start with empty
//!    copies and fill them from it). The backup itself is never opened for writing, so it can
//!    be restored again.
//!
//! Both sides must be in one bucket (a clone shares files; it cannot point at another store).
//! For a copy outside the bucket, `BACKUP … TO 'local:///dir'` streams a node's copy to a file.
//! Node-local keys (`mSI:`, `mCL:applied`) are never in the shared database, so never in a
//! checkpoint; the log and its head are, and a restored cluster's log goes on from that head.

use std::sync::Arc;
use std::time::Duration;

use slatedb::config::{CheckpointOptions, CheckpointScope, DbReaderOptions};
use slatedb::object_store::ObjectStore;
use slatedb::{CloneSourceSpec, DbReader, DbReaderMode};

use super::{be_u64, not_writer, ReplicaKv, Role, HEAD_KEY};
use crate::slate_kv::{err, run, Runtime};
use crate::{Error, Result};

/// How long the checkpoint a backup is cloned from lives on its own (the clone then holds a
/// checkpoint of its own without expiry).
const SOURCE_CHECKPOINT_LIFETIME: Duration = Duration::from_secs(600);

/// What a backup or restore made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// The newest log entry the copy holds (its commits are exactly the log up to here).
    pub head: u64,
    /// Index checkpoint files copied with it (`{path}/indexes/`): a node of the restored
    /// cluster loads and reconciles them instead of building its indexes from the tables.
    pub index_files: usize,
}

impl ReplicaKv {
    /// Backs the shared database up into `to`, a path in the same object store (see the module
    /// docs). Only the writer can: it holds what has not reached the database's manifest yet.
    pub fn checkpoint_into(&self, to: &str) -> Result<Copied> {
        let db = match &*self.role.read() {
            Role::Writer(db) => db.clone(),
            _ => return Err(not_writer("a checkpoint backup is taken by the writer")),
        };
        let to = clean(to)?;
        if to == self.path.trim_matches('/') || to.starts_with(&format!("{}/", self.path.trim_matches('/'))) || self.path.trim_matches('/').starts_with(&format!("{to}/")) {
            return Err(Error::Storage(format!("a backup cannot go to '{to}': it overlaps the cluster's own database")));
        }
        let objects = self.objects.clone();
        ensure_empty(&self.runtime, &objects, &to)?;
        let from = self.path.clone();
        let clone_to = to.clone();
        let clone_objects = objects.clone();
        run(&self.runtime, async move {
            let options = CheckpointOptions { lifetime: Some(SOURCE_CHECKPOINT_LIFETIME), name: Some("embedb-backup".into()), ..Default::default() };
            let checkpoint = db.create_checkpoint(CheckpointScope::All, &options).await?;
            let admin = slatedb::admin::AdminBuilder::new(clone_to, clone_objects).build();
            admin.create_clone_builder_from_source(CloneSourceSpec::with_checkpoint(from, checkpoint.id)).build().await
        })
        .map_err(err)?;
        // The index checkpoints as the cluster has them now: a restore reconciles them with the
        // tables (rows committed after the checkpoint are taken out again).
        let index_files = copy_index_files(&self.runtime, &objects, self.path.trim_matches('/'), &to)?;
        Ok(Copied { head: read_head(&self.runtime, objects, &to)?, index_files })
    }
}

/// Copies the index checkpoint files under `{from}/indexes/` to `{to}/indexes/` (in the same
/// store, server-side), manifests last as uploads do. Returns how many.
fn copy_index_files(runtime: &Runtime, objects: &Arc<dyn ObjectStore>, from: &str, to: &str) -> Result<usize> {
    use futures::TryStreamExt;
    use slatedb::object_store::path::Path;
    use slatedb::object_store::ObjectStoreExt;
    let (objects, from, to) = (objects.clone(), from.to_string(), to.to_string());
    run(runtime, async move {
        let prefix = Path::from(format!("{from}/indexes"));
        let mut files: Vec<String> = objects.list(Some(&prefix)).map_ok(|m| m.location.to_string()).try_collect().await?;
        files.sort_by_key(|f| f.ends_with(".ann") || f.ends_with("meta.json"));
        for f in &files {
            let rel = f.strip_prefix(&format!("{from}/indexes/")).unwrap_or(f);
            objects.copy(&Path::from(f.as_str()), &Path::from(format!("{to}/indexes/{rel}"))).await?;
        }
        Ok::<_, slatedb::object_store::Error>(files.len())
    })
    .map_err(|e| Error::Storage(format!("copying index checkpoints: {e}")))
}

/// Clones the database at `from` (a backup) into `to`, a new path in the same object store
/// `objects` (see the module docs).
pub fn restore_clone(objects: Arc<dyn ObjectStore>, from: &str, to: &str) -> Result<Copied> {
    let runtime = Runtime::start("embedb-restore")?;
    let (from, to) = (clean(from)?, clean(to)?);
    if from == to {
        return Err(Error::Storage("restore into a new prefix, not over the backup".into()));
    }
    ensure_empty(&runtime, &objects, &to)?;
    // A backup that is not there (or not a database) fails here rather than as an empty clone.
    let found = read_head(&runtime, objects.clone(), &from)?;
    let (clone_to, clone_objects, clone_from) = (to.clone(), objects.clone(), from.clone());
    run(&runtime, async move {
        let admin = slatedb::admin::AdminBuilder::new(clone_to, clone_objects).build();
        admin.create_clone_builder_from_source(CloneSourceSpec::new(clone_from)).build().await
    })
    .map_err(err)?;
    let index_files = copy_index_files(&runtime, &objects, &from, &to)?;
    let head = read_head(&runtime, objects, &to)?;
    if head != found {
        return Err(Error::Storage(format!("the restored database ends at log entry {head}, the backup at {found}")));
    }
    Ok(Copied { head, index_files })
}

fn clean(path: &str) -> Result<String> {
    let p = path.trim_matches('/');
    if p.is_empty() || p.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return Err(Error::Storage(format!("'{path}' is not a usable prefix (give s3://bucket/some/prefix)")));
    }
    Ok(p.to_string())
}

/// Refuses a destination that already holds objects (a backup or database is never overwritten).
fn ensure_empty(runtime: &Runtime, objects: &Arc<dyn ObjectStore>, path: &str) -> Result<()> {
    use futures::TryStreamExt;
    let (objects, prefix) = (objects.clone(), slatedb::object_store::path::Path::from(path));
    let any = run(runtime, async move { objects.list(Some(&prefix)).try_next().await })
        .map_err(|e| Error::Storage(format!("listing '{path}': {e}")))?;
    match any {
        Some(_) => Err(Error::Storage(format!("'{path}' already holds objects; back up or restore into a new prefix"))),
        None => Ok(()),
    }
}

/// The log head of the database at `path` (0 for one that never committed).
fn read_head(runtime: &Runtime, objects: Arc<dyn ObjectStore>, path: &str) -> Result<u64> {
    let path = path.to_string();
    run(runtime, async move {
        let reader = DbReader::open(path, objects, DbReaderMode::ManagedCheckpoint, DbReaderOptions::default()).await?;
        let head = reader.get(HEAD_KEY).await;
        let _ = reader.close().await;
        head
    })
    .map(|v| v.map_or(0, |b| be_u64(&b)))
    .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Kv;
    use crate::Store;

    fn put(k: &str, v: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
    }

    /// The rows a new copy of the database at `path` holds once filled (node-local keys aside).
    fn rows_at(objects: &Arc<dyn ObjectStore>, path: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let dir = tempfile::tempdir().unwrap();
        let r = ReplicaKv::open(&dir.path().join("r.redb"), objects.clone(), path).unwrap();
        r.start_reading(Duration::from_secs(5)).unwrap();
        r.bootstrap().unwrap();
        let rows = r.snapshot().unwrap().scan(b"k", b"l", 1000, false).unwrap();
        rows
    }

    #[test]
    fn a_checkpoint_backup_holds_every_commit_before_it_and_none_after_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let objects: Arc<dyn ObjectStore> = Arc::new(slatedb::object_store::memory::InMemory::new());
        let w = ReplicaKv::open(&dir.path().join("w.redb"), objects.clone(), "db").unwrap();
        let store = Store::new(w.clone());
        w.become_writer(&store, true).unwrap();
        w.write(&[put("k1", "a"), put("k2", "b")]).unwrap();
        w.write(&[put("k2", "c"), (b"k1".to_vec(), None)]).unwrap();
        // Not flushed yet: the checkpoint must still see it.
        w.write(&[put("k3", "d")]).unwrap();

        let copied = w.checkpoint_into("backups/one").unwrap();
        assert_eq!(copied.head, 3);
        // The cluster goes on; the backup does not.
        w.write(&[put("k4", "after")]).unwrap();
        let want = vec![(b"k2".to_vec(), b"c".to_vec()), (b"k3".to_vec(), b"d".to_vec())];
        assert_eq!(rows_at(&objects, "backups/one"), want);

        // Never over something that exists, nor into the cluster's own database.
        assert!(w.checkpoint_into("backups/one").unwrap_err().to_string().contains("already holds"));
        assert!(w.checkpoint_into("db/inside").unwrap_err().to_string().contains("overlaps"));
        assert!(w.checkpoint_into("../x").is_err());

        // A restore is a new database with the backup's rows, its log going on from there.
        let restored = restore_clone(objects.clone(), "backups/one", "restored").unwrap();
        assert_eq!(restored.head, 3);
        assert_eq!(rows_at(&objects, "restored"), want);
        assert!(restore_clone(objects.clone(), "backups/one", "restored").unwrap_err().to_string().contains("already holds"));
        assert!(restore_clone(objects.clone(), "backups/none", "elsewhere").is_err());
        let dir2 = tempfile::tempdir().unwrap();
        let nw = ReplicaKv::open(&dir2.path().join("n.redb"), objects.clone(), "restored").unwrap();
        let nstore = Store::new(nw.clone());
        nw.become_writer(&nstore, true).unwrap();
        nw.write(&[put("k5", "new")]).unwrap();
        assert_eq!(nw.progress().applied, 4);
        assert_eq!(rows_at(&objects, "restored").len(), 3);
        // The original and the backup are untouched by the restored database's writes.
        assert_eq!(rows_at(&objects, "backups/one"), want);
        assert_eq!(rows_at(&objects, "db").len(), 3);

        // Only the writer takes one.
        let r = ReplicaKv::open(&dir.path().join("r2.redb"), objects.clone(), "db").unwrap();
        r.start_reading(Duration::from_secs(5)).unwrap();
        assert!(matches!(r.checkpoint_into("backups/two"), Err(Error::NotWriter(_))));
    }
}
