//! The engine: what all sessions of a server (or of one in-process database) share — the store,
//! the global variables, the embedder, the search indexes, accounts, locks and the cluster role —
//! and how it is built, followed by replication and shut down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use embedb_storage::{Store, Txn};
use parking_lot::RwLock;

use crate::config::Config;
use crate::error::{Result, SqlError};
use crate::sql::catalog::Catalog;
use crate::sql::variables;

use super::*;

/// What all sessions share: the store, the global variables and the server's identity.
pub struct Engine {
    pub store: Store,
    pub config: Config,
    pub globals: Arc<RwLock<BTreeMap<String, String>>>,
    /// Embedding providers and their cache.
    pub embedder: Arc<crate::embed::Embedder>,
    /// Built-in defaults, for `SET x = DEFAULT`.
    pub defaults: BTreeMap<String, String>,
    next_connection_id: AtomicU32,
    /// DDL runs one at a time so that schema versions never interleave.
    pub ddl_lock: tokio::sync::Mutex<()>,
    /// Live connections' KILL signals, by connection id.
    pub connections: crate::interrupt::Registry,
    /// Full-text (and vector) indexes, kept in step with commits.
    pub search: Arc<crate::index::search::SearchIndexes>,
    /// Client connections open now (`server::serve` counts them against `max_connections`).
    pub open_connections: std::sync::atomic::AtomicU32,
    /// Seals provider keys before they are stored.
    pub secrets: crate::secrets::SecretBox,
    /// SHOW STATUS counters and the process list.
    pub stats: Arc<crate::stats::ServerStats>,
    /// User accounts and their grants, as committed.
    pub accounts: crate::privileges::AccountCache,
    /// Row locks of pessimistic transactions.
    pub locks: crate::storage::locks::LockTable,
    /// `GET_LOCK`'s named locks.
    pub user_locks: user_locks::UserLocks,
    /// This node's place in a cluster (`embedb serve --cluster`); None on a single node.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// The global variables: built-in defaults overlaid with the persisted ones, secrets unsealed.
/// `writable`: a value stored before keys were sealed is sealed now.
fn load_globals(txn: &Txn, defaults: &BTreeMap<String, String>, secrets: &crate::secrets::SecretBox, writable: bool) -> Result<BTreeMap<String, String>> {
    let mut globals = defaults.clone();
    let cat = Catalog::new(txn);
    for (k, stored) in cat.global_vars()? {
        if !variables::is_secret(&k) {
            globals.insert(k, String::from_utf8_lossy(&stored).into_owned());
            continue;
        }
        match secrets.unseal(&k, &stored) {
            Ok(Some(v)) => {
                globals.insert(k, v);
            }
            // Written before keys were sealed: seal it now.
            Ok(None) => {
                let v = String::from_utf8_lossy(&stored).into_owned();
                if writable {
                    cat.set_global_var(&k, &secrets.seal(&k, &v));
                }
                globals.insert(k, v);
            }
            Err(()) => tracing::warn!("{k} cannot be opened with this secret key file; it is unset until set again"),
        }
    }
    Ok(globals)
}

pub fn server_version() -> String {
    format!("8.0.11-TiDB-v8.5.0-embedb-{}", env!("CARGO_PKG_VERSION"))
}

impl Engine {
    /// Open (or create) the data directory and load persisted global variables.
    pub fn open(config: Config) -> Result<Arc<Engine>> {
        let secrets = crate::secrets::SecretBox::open(&config.secret_key_path())?;
        if config.cluster {
            // Rows in object storage, a copy here, roles by etcd lease (`crate::cluster`).
            let (cluster, store) = crate::cluster::Cluster::join(&config)?;
            let index_dir = config.data_dir.join("indexes");
            // A node that joins without indexes starts from the writer's checkpoints.
            cluster.fetch_index_checkpoints(&index_dir);
            let engine = Self::build(config, store, Some(index_dir), secrets, Some(cluster.clone()))?;
            let uploader = cluster.clone();
            engine.search.set_on_saved(Box::new(move |dir| uploader.upload_index_checkpoints(dir)));
            let weak = Arc::downgrade(&engine);
            cluster.start(Box::new(move |batch| {
                if let Some(engine) = weak.upgrade() {
                    engine.replicated(batch);
                }
            }));
            return Ok(engine);
        }
        if let Some(url) = &config.storage {
            // Rows in object storage (`storage::slate_kv`). Index files saved in this node's
            // data dir could miss commits another node made there since, so the indexes are
            // rebuilt from the table at start until they are persisted beside the data.
            std::fs::create_dir_all(&config.data_dir).map_err(|e| SqlError::other(format!("creating {}: {e}", config.data_dir.display())))?;
            let kv = embedb_storage::SlateKv::open_url(url)?;
            tracing::info!(storage = %url, "rows are kept in object storage");
            return Self::build(config, Store::new(Arc::new(kv)), None, secrets, None);
        }
        let store = Store::open(&config.data_dir)?;
        let index_dir = config.data_dir.join("indexes");
        Self::build(config, store, Some(index_dir), secrets, None)
    }

    /// An engine over `store`; search indexes live in memory only (rebuilt at every start).
    pub fn with_store(config: Config, store: Store) -> Result<Arc<Engine>> {
        Self::build(config, store, None, crate::secrets::SecretBox::ephemeral(), None)
    }

    /// Clean shutdown: save the vector indexes (so the next start loads them instead of
    /// rebuilding) and refuse later commits. Committed data needs nothing: it is durable.
    pub fn shutdown(&self) {
        self.embedder.backlog.stop();
        if self.cluster.as_ref().is_none_or(|c| c.is_writer()) {
            self.embedder.save_usage();
        }
        if let Some(c) = &self.cluster {
            c.leave();
        }
        match self.search.save_all() {
            Ok(0) => {}
            Ok(n) => tracing::info!("saved {n} vector index(es) for a fast restart"),
            Err(e) => tracing::error!("could not save vector indexes (they will be rebuilt at start): {}", e.message),
        }
    }

    /// Shut down and let go of the data (its file lock too), so that it can be opened again in
    /// this process (the Python package's `close()`). Sessions still open get errors after it.
    pub fn close(&self) {
        self.shutdown();
        if let Err(e) = self.store.close() {
            tracing::warn!("closing the store: {e}");
        }
    }

    fn build(
        config: Config,
        store: Store,
        index_dir: Option<std::path::PathBuf>,
        secrets: crate::secrets::SecretBox,
        cluster: Option<Arc<crate::cluster::Cluster>>,
    ) -> Result<Arc<Engine>> {
        let mut defaults = variables::defaults(&server_version(), config.port, &config.data_dir.display().to_string());
        defaults.insert("max_connections".into(), config.max_connections.to_string());
        // A cluster's reader writes nothing: what it would set up, the writer has.
        let writable = cluster.as_ref().is_none_or(|c| c.is_writer());
        let txn = store.begin()?;
        if writable {
            let cat = Catalog::new(&txn);
            // TiDB ships a `test` database; clients and tutorials expect it.
            if cat.database("test")?.is_none() {
                cat.create_database("test")?;
            }
        }
        let globals = load_globals(&txn, &defaults, &secrets, writable)?;
        txn.commit()?;
        let accounts = crate::privileges::AccountCache::default();
        if writable {
            accounts.replace(accounts::bootstrap(&store, &config)?);
            // Temporary tables of sessions that ended in a crash.
            let left = temporary::drop_hidden(&store, |_, _| true)?;
            if left > 0 {
                tracing::info!("dropped {left} temporary table(s) left by a previous run");
            }
        } else {
            accounts.replace(accounts::load(&store)?);
        }
        let globals = Arc::new(RwLock::new(globals));
        let search = crate::index::search::SearchIndexes::new();
        let saves = index_dir.is_some();
        if let Some(dir) = index_dir {
            search.set_dir(dir);
        }
        store.set_commit_observer(search.clone());
        search.sync(&store)?;
        if saves {
            search.start_checkpoints();
        }
        let embedder = Arc::new(
            crate::embed::Embedder::new(config.model_dir.clone(), config.http_settings(), globals.clone()).with_store(store.clone()),
        );
        let engine = Arc::new(Engine {
            store,
            config,
            globals,
            embedder,
            defaults,
            next_connection_id: AtomicU32::new(1),
            ddl_lock: tokio::sync::Mutex::new(()),
            connections: Default::default(),
            search,
            open_connections: AtomicU32::new(0),
            secrets,
            stats: Arc::new(crate::stats::ServerStats::new()),
            accounts,
            locks: Default::default(),
            user_locks: Default::default(),
            cluster,
        });
        backlog_worker::start(&engine);
        Ok(engine)
    }

    /// `SHOW STATUS`'s rows: the server's counters, and in a cluster this node's role and lag.
    pub fn status(&self, open: u64) -> Vec<(String, String)> {
        let mut rows = self.stats.status(open);
        if let Some(c) = &self.cluster {
            rows.extend(c.status_rows());
            rows.sort();
        }
        rows
    }

    /// A cluster reader applied a batch of the writer's commits: the engine follows what it
    /// caches. A schema change reaches the search indexes at this point of the stream, as on the
    /// writer (which syncs right after its DDL), so that an index created on an empty table is
    /// complete before the rows after it arrive.
    pub fn replicated(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) {
        let touches = |prefix: &[u8]| batch.iter().any(|(k, _)| k.starts_with(prefix));
        if touches(crate::sql::catalog::TABLE_DEF_PREFIX) {
            if let Err(e) = self.search.sync(&self.store) {
                tracing::warn!("search indexes after a schema change: {}", e.message);
            }
        }
        let (accounts_changed, globals_changed) = (touches(crate::privileges::store::PREFIX), touches(crate::sql::catalog::GLOBAL_VAR_PREFIX));
        if accounts_changed {
            match accounts::load(&self.store) {
                Ok(a) => self.accounts.replace(a),
                Err(e) => tracing::warn!("reloading accounts: {}", e.message),
            }
        }
        if globals_changed {
            let loaded = self.store.begin().map_err(SqlError::from).and_then(|txn| load_globals(&txn, &self.defaults, &self.secrets, false));
            match loaded {
                Ok(g) => *self.globals.write() = g,
                Err(e) => tracing::warn!("reloading global variables: {}", e.message),
            }
        }
    }

    pub fn next_connection_id(&self) -> u32 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }
}

