//! Cluster mode (`embedb serve --cluster`): one writer, any number of readers, automatic failover.
//!
//! The rows live in one SlateDB database on object storage; each node keeps a full local copy
//! that follows it ([`embedb_storage::ReplicaKv`]); etcd holds the writer lease and the node list.
//! A node's life:
//!
//! 1. [`Cluster::join`] takes a lease in etcd and tries to claim the writer key
//!    (`/embedb/<cluster>/writer`, create-if-absent, bound to the lease). The winner opens the
//!    shared database as its writer (SlateDB fences any earlier writer); the others open it as
//!    readers and bring their copy up to date. Only then is the engine built on the copy.
//! 2. Three threads run for the node's life. The keep-alive thread renews the lease every third
//!    of its TTL (on its own, so that a slow promotion never lets the lease lapse). The lease
//!    thread publishes this node in `/embedb/<cluster>/nodes/`, reads the node list for
//!    `information_schema.CLUSTER_INFO`, on a reader claims the writer key whenever it is free
//!    (the writer's lease expired: it died or stalled) and promotes this node, and steps a
//!    writer down when its lease is gone. The follow thread, on a reader, applies the writer's
//!    commits to the copy as they become durable.
//! 3. A writer commits only while its lease is surely alive: the copy refuses commits once the
//!    last renewal's send time plus the TTL has passed. So a writer that was stopped (SIGSTOP)
//!    and resumes commits nothing, and SlateDB's fencing stops any write already under way; the
//!    lease thread then turns the node back into a reader.
//! 4. Statements that write, sent to a reader, go to the writer (`forward`), and the reader waits
//!    until its copy has the commit before answering, so a session reads its own writes.

pub mod etcd;
pub mod forward;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use embedb_storage::{ReplicaKv, Store};
use parking_lot::RwLock;
use serde_json::json;

use crate::config::Config;
use crate::error::{Result, SqlError};

/// How often the lease thread looks at etcd.
const TICK: Duration = Duration::from_millis(200);
/// Store key of the secret nodes use to log in to the writer when they forward a statement.
const SECRET_KEY: &[u8] = b"mCS:forward_secret";

/// The cluster's runtime. The engine (and this with it) may be dropped inside another runtime,
/// where a runtime cannot be dropped the usual way: it is shut down in the background.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// What a node does with each batch of the writer's commits it applies, after applying it.
pub type OnApplied = Box<dyn Fn(&[(Vec<u8>, Option<Vec<u8>>)]) + Send + Sync>;

/// One node of the cluster as the node list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub advertise: String,
    pub role: String,
    pub applied: u64,
    pub lag_ms: u64,
    pub started: String,
}

/// What this node knows about the cluster now.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The writer's node name and MySQL address, when one holds the lease.
    pub writer: Option<(String, String)>,
    pub nodes: Vec<NodeInfo>,
}

pub struct Cluster {
    pub node: String,
    pub advertise: String,
    pub kv: Arc<ReplicaKv>,
    store: Store,
    etcd: etcd::Etcd,
    prefix: String,
    ttl: Duration,
    runtime: Runtime,
    lease: AtomicI64,
    view: RwLock<View>,
    started: String,
    secret: OnceLock<String>,
    /// Whether etcd said the lease is gone. (How long it lasts from its last renewal is the
    /// copy's commit deadline, `ReplicaKv::set_lease_deadline`.)
    lease_lost: AtomicBool,
    /// Index checkpoint files uploaded, with their (size, modified) then.
    uploaded: parking_lot::Mutex<std::collections::HashMap<String, (u64, std::time::SystemTime)>>,
    /// Shown every batch a reader applies (the engine reloads what it caches of it).
    on_applied: RwLock<Option<OnApplied>>,
    stopping: AtomicBool,
}

fn err(e: impl std::fmt::Display) -> SqlError {
    SqlError::other(format!("cluster: {e}"))
}

impl Cluster {
    /// Joins the cluster named by `config.storage` (see the module docs, step 1): returns the node
    /// and the store the engine is to be built on.
    pub fn join(config: &Config) -> Result<(Arc<Cluster>, Store)> {
        let url = config.storage.as_deref().ok_or_else(|| err("--cluster needs --storage s3://bucket/prefix"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("embedb-cluster")
            .enable_all()
            .build()
            .map_err(err)?;
        let etcd = etcd::Etcd::new(&config.etcd).map_err(err)?;
        let (objects, path) = embedb_storage::slate_kv::object_store_for(url)?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| err(format!("creating {}: {e}", config.data_dir.display())))?;
        let kv = ReplicaKv::open(&config.data_dir.join("replica.redb"), objects, if path.is_empty() { "embedb" } else { &path })?;
        let store = Store::new(kv.clone());
        let node = config.node_name.clone().unwrap_or_else(|| format!("{}:{}", config.host, config.port));
        let advertise = config.advertise.clone().unwrap_or_else(|| format!("{}:{}", config.host, config.port));
        let cluster = Arc::new(Cluster {
            node,
            advertise,
            kv,
            store: store.clone(),
            etcd,
            prefix: format!("/embedb/{}/", url.trim_end_matches('/')),
            ttl: Duration::from_secs(config.lease_ttl_secs.max(1)),
            runtime: Runtime(Some(runtime)),
            lease: AtomicI64::new(0),
            view: RwLock::new(View::default()),
            started: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            secret: OnceLock::new(),
            lease_lost: AtomicBool::new(false),
            uploaded: Default::default(),
            on_applied: RwLock::new(None),
            stopping: AtomicBool::new(false),
        });
        cluster.new_lease()?;
        // Renewed from now on, whatever the start-up below takes.
        let me = cluster.clone();
        std::thread::Builder::new().name("cluster-keepalive".into()).spawn(move || me.keepalive_loop()).map_err(err)?;
        if cluster.try_claim()? {
            tracing::info!(node = %cluster.node, "holding the writer lease; opening the shared database as its writer");
            cluster.kv.become_writer(&store, true)?;
            cluster.ensure_secret()?;
        } else {
            tracing::info!(node = %cluster.node, "another node is the writer; following it");
            cluster.kv.start_reading(Duration::from_secs(120))?;
            if cluster.kv.bootstrap()? {
                tracing::info!("this node's copy was filled from the shared database");
            }
        }
        Ok((cluster, store))
    }

    /// Runs `fut` on the cluster's runtime and waits for it (callers are plain threads or the
    /// engine's start-up, which may itself be inside a runtime).
    fn block<T: Send + 'static>(&self, fut: impl std::future::Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.0.as_ref().expect("until dropped").spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().expect("the cluster runtime ran the call")
    }

    fn writer_key(&self) -> String {
        format!("{}writer", self.prefix)
    }

    fn new_lease(&self) -> Result<()> {
        let (etcd, ttl) = (self.etcd.clone(), self.ttl.as_secs());
        let sent = Instant::now();
        let id = self.block(async move { etcd.grant(ttl).await }).map_err(err)?;
        self.lease.store(id, Ordering::SeqCst);
        self.kv.set_lease_deadline(Some(sent + self.ttl));
        Ok(())
    }

    /// Claims the writer key with this node's lease; true if this node now holds it. The claim
    /// is as good as the lease's remaining time, which the commit deadline already follows
    /// (moved by every grant and renewal).
    fn try_claim(&self) -> Result<bool> {
        if self.lease_lost.load(Ordering::SeqCst) || self.kv.lease_expired() {
            return Ok(false);
        }
        let value = json!({ "node": self.node, "advertise": self.advertise }).to_string();
        let (etcd, key, lease) = (self.etcd.clone(), self.writer_key(), self.lease.load(Ordering::SeqCst));
        let holder = self.block(async move { etcd.create_if_absent(&key, &value, lease).await }).map_err(err)?;
        match holder {
            None => Ok(true),
            Some(h) => {
                self.note_writer(&h.value);
                Ok(false)
            }
        }
    }

    fn note_writer(&self, value: &str) {
        let v: serde_json::Value = serde_json::from_str(value).unwrap_or_default();
        let writer = match (v["node"].as_str(), v["advertise"].as_str()) {
            (Some(n), Some(a)) => Some((n.to_string(), a.to_string())),
            _ => None,
        };
        self.view.write().writer = writer;
    }

    /// The first writer creates the secret that forwarded statements log in with.
    fn ensure_secret(&self) -> Result<()> {
        let txn = self.store.begin()?;
        if txn.get(SECRET_KEY)?.is_none() {
            let secret: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
            txn.put(SECRET_KEY.to_vec(), secret.into_bytes());
            txn.commit()?;
        }
        Ok(())
    }

    /// The secret a forwarded statement's connection logs in with (None until replicated).
    pub fn secret(&self) -> Option<String> {
        if let Some(s) = self.secret.get() {
            return Some(s.clone());
        }
        let txn = self.store.begin().ok()?;
        let v = txn.get(SECRET_KEY).ok()??;
        let s = String::from_utf8(v).ok()?;
        Some(self.secret.get_or_init(|| s).clone())
    }

    /// This node holds the writer's handle. Routing follows this role, never the lease clock: a
    /// writer whose renewals are late (an etcd election) refuses commits at its deadline and is
    /// stepped down by the lease thread, but a statement of a transaction is never sent
    /// elsewhere than the ones before it.
    pub fn is_writer(&self) -> bool {
        self.kv.is_writer()
    }

    pub fn role(&self) -> &'static str {
        if self.is_writer() {
            "writer"
        } else {
            "reader"
        }
    }

    pub fn view(&self) -> View {
        self.view.read().clone()
    }

    /// The writer's MySQL address, waiting up to `wait` for one to hold the lease (failover).
    pub async fn writer_address(&self, wait: Duration) -> Option<String> {
        let until = Instant::now() + wait;
        loop {
            if let Some((node, addr)) = self.view.read().writer.clone() {
                if node != self.node || self.is_writer() {
                    return Some(addr);
                }
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the lease and follow threads (module docs, step 2) once the engine exists;
    /// `on_applied` sees each batch of the writer's commits this node applies.
    pub fn start(self: &Arc<Self>, on_applied: OnApplied) {
        *self.on_applied.write() = Some(on_applied);
        let me = self.clone();
        std::thread::Builder::new().name("cluster-lease".into()).spawn(move || me.lease_loop()).expect("spawning the lease thread");
        let me = self.clone();
        std::thread::Builder::new().name("cluster-follow".into()).spawn(move || me.follow_loop()).expect("spawning the follow thread");
    }

    /// Stops both threads (shutdown); a writer lets go of the writer key so that another node
    /// takes over at once instead of after the lease runs out.
    pub fn leave(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if self.is_writer() {
            self.kv.stop_writing();
            let (etcd, lease) = (self.etcd.clone(), self.lease.load(Ordering::SeqCst));
            let _ = self.block(async move { etcd.revoke(lease).await });
        }
    }

    fn lease_loop(self: Arc<Self>) {
        let mut last_publish = Instant::now() - Duration::from_secs(10);
        let mut last_error = Instant::now() - Duration::from_secs(60);
        while !self.stopping.load(Ordering::SeqCst) {
            std::thread::sleep(TICK);
            let mut step = || -> Result<()> {
                // The lease is gone (the keep-alive thread found out), or a writer's deadline
                // passed without a renewal: step down and take a new lease.
                if self.lease_lost.load(Ordering::SeqCst) || (self.kv.is_writer() && self.kv.lease_expired()) {
                    if self.kv.is_writer() {
                        tracing::warn!(node = %self.node, "the writer lease expired; this node becomes a reader");
                        self.demote()?;
                    }
                    if self.lease_lost.load(Ordering::SeqCst) {
                        self.new_lease()?;
                        self.lease_lost.store(false, Ordering::SeqCst);
                    }
                }
                // Fenced by a newer writer (a commit found out): follow it.
                if self.kv.is_idle() {
                    tracing::warn!(node = %self.node, "fenced by a newer writer; this node becomes a reader");
                    self.demote()?;
                }
                if !self.is_writer() {
                    let (etcd, key) = (self.etcd.clone(), self.writer_key());
                    match self.block(async move { etcd.get(&key).await }).map_err(err)? {
                        Some(h) => self.note_writer(&h.value),
                        None => {
                            if self.try_claim()? {
                                self.promote()?;
                            }
                        }
                    }
                }
                if last_publish.elapsed() >= Duration::from_secs(1) {
                    self.publish()?;
                    last_publish = Instant::now();
                }
                Ok(())
            };
            if let Err(e) = step() {
                if last_error.elapsed() > Duration::from_secs(5) {
                    tracing::warn!("{}", e.message);
                    last_error = Instant::now();
                }
            }
        }
    }

    /// Renews the lease every third of its TTL, on a thread of its own so that a slow promotion
    /// (opening the database, catching up) never lets it lapse. The commit deadline moves with
    /// each renewal; a lease found gone is flagged for the lease thread.
    fn keepalive_loop(self: Arc<Self>) {
        while !self.stopping.load(Ordering::SeqCst) {
            let sent = Instant::now();
            let (etcd, lease) = (self.etcd.clone(), self.lease.load(Ordering::SeqCst));
            match self.block(async move { etcd.keep_alive(lease).await }) {
                // Whatever the role: a promotion under way keeps the deadline it will need.
                Ok(Some(_)) => self.kv.set_lease_deadline(Some(sent + self.ttl)),
                Ok(None) => self.lease_lost.store(true, Ordering::SeqCst),
                // etcd unreachable: a writer's commits stop at its deadline.
                Err(e) => tracing::debug!("renewing the lease: {e}"),
            }
            std::thread::sleep(self.ttl / 3);
        }
    }

    fn promote(&self) -> Result<()> {
        tracing::info!(node = %self.node, "took the writer lease; opening the shared database as its writer");
        if let Err(e) = self.kv.become_writer(&self.store, false) {
            tracing::error!("could not become the writer: {e}");
            let (etcd, key, lease) = (self.etcd.clone(), self.writer_key(), self.lease.load(Ordering::SeqCst));
            let _ = self.block(async move { etcd.delete_if_lease(&key, lease).await });
            let _ = self.kv.become_reader();
            return Err(e.into());
        }
        self.view.write().writer = Some((self.node.clone(), self.advertise.clone()));
        tracing::info!(node = %self.node, "this node is the writer");
        Ok(())
    }

    fn demote(&self) -> Result<()> {
        self.kv.stop_writing();
        self.view.write().writer = None;
        // Let go of the writer key (if this lease still holds it) so another node can take it.
        let (etcd, key, lease) = (self.etcd.clone(), self.writer_key(), self.lease.load(Ordering::SeqCst));
        let _ = self.block(async move { etcd.delete_if_lease(&key, lease).await });
        self.kv.become_reader()?;
        Ok(())
    }

    /// Publishes this node and reads the node list.
    fn publish(&self) -> Result<()> {
        let p = self.kv.progress();
        let me = json!({
            "name": self.node, "advertise": self.advertise, "role": self.role(),
            "applied": p.applied, "lag_ms": p.lag_ms, "started": self.started,
        })
        .to_string();
        let (etcd, key, lease, prefix) = (self.etcd.clone(), format!("{}nodes/{}", self.prefix, self.node), self.lease.load(Ordering::SeqCst), format!("{}nodes/", self.prefix));
        let list = self
            .block(async move {
                etcd.put(&key, &me, lease).await?;
                etcd.list(&prefix).await
            })
            .map_err(err)?;
        let nodes = list
            .iter()
            .filter_map(|e| {
                let v: serde_json::Value = serde_json::from_str(&e.value).ok()?;
                Some(NodeInfo {
                    name: v["name"].as_str()?.to_string(),
                    advertise: v["advertise"].as_str().unwrap_or("").to_string(),
                    role: v["role"].as_str().unwrap_or("").to_string(),
                    applied: v["applied"].as_u64().unwrap_or(0),
                    lag_ms: v["lag_ms"].as_u64().unwrap_or(0),
                    started: v["started"].as_str().unwrap_or("").to_string(),
                })
            })
            .collect();
        self.view.write().nodes = nodes;
        Ok(())
    }

    fn follow_loop(self: Arc<Self>) {
        let mut last_error = Instant::now() - Duration::from_secs(60);
        while !self.stopping.load(Ordering::SeqCst) {
            if self.is_writer() {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let on_applied = self.on_applied.read();
            let followed = self.kv.follow(&self.store, &mut |batch| {
                if let Some(f) = on_applied.as_ref() {
                    f(batch);
                }
            });
            drop(on_applied);
            match followed {
                Ok(0) => std::thread::sleep(Duration::from_millis(5)),
                Ok(_) => {}
                Err(e) => {
                    if last_error.elapsed() > Duration::from_secs(5) {
                        tracing::warn!("following the writer: {e}");
                        last_error = Instant::now();
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// The writer keeps its search-index checkpoints beside the data (`{path}/indexes/`), so a
    /// node that joins loads and reconciles them instead of building from the table.
    pub fn upload_index_checkpoints(&self, dir: &std::path::Path) {
        if !self.is_writer() {
            return;
        }
        let started = Instant::now();
        match self.kv.upload_index_files(dir, &mut self.uploaded.lock()) {
            Ok(0) => {}
            Ok(n) => tracing::info!("uploaded {n} index checkpoint file(s) in {:?}", started.elapsed()),
            Err(e) => tracing::warn!("index checkpoints stay on this node: {e}"),
        }
    }

    /// Fills an empty index directory with the checkpoints in the bucket.
    pub fn fetch_index_checkpoints(&self, dir: &std::path::Path) {
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            return;
        }
        let started = Instant::now();
        match self.kv.download_index_files(dir) {
            Ok(0) => {}
            Ok(n) => tracing::info!("fetched {n} index checkpoint file(s) from the bucket in {:?}", started.elapsed()),
            Err(e) => tracing::warn!("no index checkpoints fetched ({e}); indexes are built from the table"),
        }
    }

    /// This node's `SHOW STATUS` rows.
    pub fn status_rows(&self) -> Vec<(String, String)> {
        let p = self.kv.progress();
        let writer = self.view.read().writer.as_ref().map(|(n, _)| n.clone()).unwrap_or_default();
        vec![
            ("Embedb_cluster_node".into(), self.node.clone()),
            ("Embedb_cluster_role".into(), self.role().into()),
            ("Embedb_cluster_writer".into(), writer),
            (forward::APPLIED_STATUS.into(), p.applied.to_string()),
            ("Embedb_cluster_head".into(), p.head.to_string()),
            ("Embedb_cluster_lag_commits".into(), p.head.saturating_sub(p.applied).to_string()),
            ("Embedb_cluster_lag_ms".into(), p.lag_ms.to_string()),
        ]
    }

    /// Waits until this node's copy holds commit `seq` (read-your-writes after a forwarded write).
    pub async fn wait_applied(&self, seq: u64, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while self.kv.progress().applied < seq {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }
}

impl crate::sql::infoschema::ClusterView for Cluster {
    fn nodes(&self) -> Vec<crate::sql::infoschema::ClusterNode> {
        let view = self.view();
        let writer = view.writer.as_ref().map(|(n, _)| n.clone());
        view.nodes
            .into_iter()
            .map(|n| crate::sql::infoschema::ClusterNode {
                lease_holder: writer.as_deref() == Some(n.name.as_str()),
                name: n.name,
                advertise: n.advertise,
                role: n.role,
                applied: n.applied,
                lag_ms: n.lag_ms,
                started: n.started,
            })
            .collect()
    }
}
