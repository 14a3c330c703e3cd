//! Shared request batches for the remote providers: concurrent statements that embed with the same
//! provider, endpoint, key, model and options fill the same requests.
//!
//! A statement's texts join the queue of their [`BatchKey`]. While fewer than `concurrency`
//! requests of that key are in flight, the queue is cut into requests of up to `batch_size` texts
//! and sent at once, so a lone statement never waits for company. When the limit is reached, texts
//! wait in the queue and the next free slot takes the oldest `batch_size` of them, whichever
//! statements they came from. TiDB merges requests that arrive within a 100 ms window; merging
//! what waits anyway gives the same sharing without adding 100 ms to every statement.
//!
//! Each text has its own reply channel, so a statement collects exactly its vectors. When every
//! text of an in-flight request has lost its waiter (the statements were killed or their clients
//! went away), the request is dropped, which cancels the HTTP exchange. A failing request fails
//! only the statements that had texts in it.
//!
//! Runs on the HTTP runtime (`http::block_on`), which owns the spawned request tasks.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::oneshot;

/// One request's work: texts in, vectors (one per text, in order) and the tokens the provider
/// reported out.
pub type BatchFn = Arc<dyn Fn(Vec<String>) -> BoxFuture<'static, Result<(Vec<Vec<f32>>, Option<u64>), String>> + Send + Sync>;

/// Everything that shapes a request besides its texts: `provider`, endpoint, key, model, options.
/// Requests are only shared between calls whose key is equal.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct BatchKey(pub String);

struct Item {
    text: String,
    reply: oneshot::Sender<Result<Vec<f32>, String>>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Item>,
    in_flight: usize,
}

/// How one key's requests are made.
#[derive(Clone)]
pub struct Plan {
    pub batch_size: usize,
    pub concurrency: usize,
    pub call: BatchFn,
    /// Called once per finished request with the provider's token count.
    pub on_request: Arc<dyn Fn(Option<u64>) + Send + Sync>,
}

#[derive(Default)]
pub struct Batcher {
    queues: Mutex<HashMap<BatchKey, Arc<Mutex<Queue>>>>,
}

/// The process-wide batcher: statements of all sessions meet here.
pub fn shared() -> &'static Batcher {
    static B: OnceLock<Batcher> = OnceLock::new();
    B.get_or_init(Batcher::default)
}

impl Batcher {
    /// Embed `texts` under `key`; vectors in input order, or the error of a request that held one
    /// of them. Must run inside a tokio runtime (it spawns the requests).
    pub async fn submit(&self, key: BatchKey, texts: Vec<String>, plan: Plan) -> Result<Vec<Vec<f32>>, String> {
        let queue = {
            let mut queues = self.queues.lock();
            // Keys change with API keys and options; forget idle ones now and then.
            if queues.len() > 256 {
                queues.retain(|_, q| {
                    let q = q.lock();
                    !q.waiting.is_empty() || q.in_flight > 0
                });
            }
            queues.entry(key).or_default().clone()
        };
        let mut replies = Vec::with_capacity(texts.len());
        {
            let mut q = queue.lock();
            for text in texts {
                let (tx, rx) = oneshot::channel();
                q.waiting.push_back(Item { text, reply: tx });
                replies.push(rx);
            }
        }
        pump(&queue, &plan);
        let mut out = Vec::with_capacity(replies.len());
        for rx in replies {
            out.push(rx.await.map_err(|_| "embedding request was dropped".to_string())??);
        }
        Ok(out)
    }
}

/// Start requests while slots are free and texts wait.
fn pump(queue: &Arc<Mutex<Queue>>, plan: &Plan) {
    let mut q = queue.lock();
    while q.in_flight < plan.concurrency.max(1) {
        let mut batch = Vec::with_capacity(plan.batch_size);
        while batch.len() < plan.batch_size.max(1) {
            match q.waiting.pop_front() {
                // A text whose statement is gone is not sent.
                Some(item) if item.reply.is_closed() => continue,
                Some(item) => batch.push(item),
                None => break,
            }
        }
        if batch.is_empty() {
            return;
        }
        q.in_flight += 1;
        let (queue, plan) = (queue.clone(), plan.clone());
        tokio::spawn(async move {
            let (texts, mut replies): (Vec<String>, Vec<_>) = batch.into_iter().map(|i| (i.text, i.reply)).unzip();
            let n = texts.len();
            let result = {
                let request = (plan.call)(texts);
                let abandoned = futures::future::join_all(replies.iter_mut().map(|r| r.closed()));
                tokio::select! {
                    r = request => Some(r),
                    _ = abandoned => None,
                }
            };
            match result {
                Some(Ok((vectors, tokens))) => {
                    (plan.on_request)(tokens);
                    if vectors.len() != n {
                        let e = format!("returned {} embeddings for {n} texts", vectors.len());
                        replies.into_iter().for_each(|r| drop(r.send(Err(e.clone()))));
                    } else {
                        replies.into_iter().zip(vectors).for_each(|(r, v)| drop(r.send(Ok(v))));
                    }
                }
                Some(Err(e)) => {
                    (plan.on_request)(None);
                    replies.into_iter().for_each(|r| drop(r.send(Err(e.clone()))));
                }
                None => tracing::debug!("embedding request of {n} texts dropped: no statement waits for it"),
            }
            queue.lock().in_flight -= 1;
            pump(&queue, &plan);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn plan(batch_size: usize, concurrency: usize, sizes: Arc<Mutex<Vec<usize>>>, live: Arc<AtomicUsize>, peak: Arc<AtomicUsize>) -> Plan {
        Plan {
            batch_size,
            concurrency,
            call: Arc::new(move |texts: Vec<String>| {
                let (sizes, live, peak) = (sizes.clone(), live.clone(), peak.clone());
                Box::pin(async move {
                    sizes.lock().push(texts.len());
                    let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    live.fetch_sub(1, Ordering::SeqCst);
                    Ok((texts.iter().map(|t| vec![t.len() as f32, t.parse::<f32>().unwrap_or(-1.0)]).collect(), Some(texts.len() as u64)))
                })
            }),
            on_request: Arc::new(|_| {}),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_statements_share_requests() {
        let b = Arc::new(Batcher::default());
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (live, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let p = plan(8, 2, sizes.clone(), live, peak.clone());
        // 20 statements of 3 texts each at once: 60 texts.
        let mut tasks = Vec::new();
        for s in 0..20 {
            let (b, p) = (b.clone(), p.clone());
            tasks.push(tokio::spawn(async move {
                let texts: Vec<String> = (0..3).map(|k| (s * 3 + k).to_string()).collect();
                let out = b.submit(BatchKey("k".into()), texts, p).await.unwrap();
                for (k, v) in out.iter().enumerate() {
                    assert_eq!(v[1], (s * 3 + k) as f32, "each statement gets its own vectors in order");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let sizes = sizes.lock().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 60);
        assert!(peak.load(Ordering::SeqCst) <= 2, "concurrency bound");
        // Unshared, 20 statements would need 20 requests; shared, full batches of 8 form.
        assert!(sizes.len() <= 10, "requests were not shared: {sizes:?}");
        assert!(sizes.iter().any(|&n| n == 8), "{sizes:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lone_statement_is_sent_at_once_and_errors_reach_their_owners() {
        let b = Batcher::default();
        let p = Plan {
            batch_size: 4,
            concurrency: 4,
            call: Arc::new(|texts: Vec<String>| {
                Box::pin(async move {
                    if texts.iter().any(|t| t == "bad") {
                        Err("boom".to_string())
                    } else {
                        Ok((texts.iter().map(|_| vec![1.0]).collect(), None))
                    }
                })
            }),
            on_request: Arc::new(|_| {}),
        };
        let started = std::time::Instant::now();
        assert_eq!(b.submit(BatchKey("a".into()), vec!["x".into()], p.clone()).await.unwrap(), vec![vec![1.0]]);
        assert!(started.elapsed() < Duration::from_millis(50), "no waiting window for a lone statement");
        assert_eq!(b.submit(BatchKey("a".into()), vec!["x".into(), "bad".into()], p).await.unwrap_err(), "boom");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abandoned_requests_are_dropped() {
        let b = Arc::new(Batcher::default());
        let finished = Arc::new(AtomicUsize::new(0));
        let f2 = finished.clone();
        let p = Plan {
            batch_size: 4,
            concurrency: 1,
            call: Arc::new(move |texts: Vec<String>| {
                let f = f2.clone();
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    f.fetch_add(1, Ordering::SeqCst);
                    Ok((texts.iter().map(|_| vec![1.0]).collect(), None))
                })
            }),
            on_request: Arc::new(|_| {}),
        };
        let b2 = b.clone();
        let t = tokio::spawn(async move { b2.submit(BatchKey("a".into()), vec!["x".into()], p).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        t.abort();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(finished.load(Ordering::SeqCst), 0, "the request was cancelled with its only statement");
    }
}
