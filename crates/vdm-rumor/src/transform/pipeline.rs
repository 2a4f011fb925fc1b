//! What stands in front of the transformer: cache, single-flight, batching.
//!
//! An ask is answered from the cache when it can be. Otherwise, if an
//! identical ask is already on its way, this one waits for that answer
//! (single-flight); if not, it joins the queue. A batcher task takes the
//! first queued ask, waits up to the batch window for more (up to the batch
//! size), and sends them to the transformer as one batch; each result is
//! cached, then handed to every waiter of its ask.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use vdm_kit::cache::{Cache, CacheStore};

use super::{Ask, LocalTransformer, Transformed, Transformer};
use crate::config::TransformConfig;

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The cache.
    Cache,
    /// An identical ask already in flight.
    Joined,
    /// The transformer, for this ask.
    Computed,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Source::Cache => "cache_hit",
            Source::Joined => "joined",
            Source::Computed => "computed",
        }
    }
}

/// See the module docs. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

type Waiters = Vec<oneshot::Sender<Transformed>>;

struct Inner {
    transformer: Transformer,
    id: String,
    cache: Cache,
    in_flight: Mutex<HashMap<u64, Waiters>>,
    queue: mpsc::UnboundedSender<(u64, Ask)>,
}

impl Pipeline {
    /// Puts the cache, single-flight and batching in front of `transformer`
    /// and starts the batcher task (it ends when the last clone is dropped).
    pub fn new(transformer: Transformer, caches: &CacheStore, config: &TransformConfig) -> Pipeline {
        let (queue, receiver) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            id: transformer.id(),
            transformer,
            cache: caches.cache("rumor_text", config.cache_ttl),
            in_flight: Mutex::new(HashMap::new()),
            queue,
        });
        tokio::spawn(batcher(
            Arc::downgrade(&inner),
            receiver,
            config.batch_size,
            config.batch_window,
        ));
        Pipeline { inner }
    }

    /// The transformer's name and version.
    pub fn transformer_id(&self) -> &str {
        &self.inner.id
    }

    /// Transforms one ask, and says where the answer came from.
    pub async fn transform(&self, ask: Ask) -> (Transformed, Source) {
        let digest = ask.digest();
        let key = format!("{}:{digest:016x}", self.inner.id);
        if let Some((text, by)) = self.inner.cache.get_decoded::<(String, String)>(&key).await {
            return count((Transformed { text, by }, Source::Cache));
        }
        let (sender, receiver) = oneshot::channel();
        let lead = {
            let mut in_flight = lock(&self.inner.in_flight);
            match in_flight.get_mut(&digest) {
                Some(waiters) => {
                    waiters.push(sender);
                    false
                }
                None => {
                    in_flight.insert(digest, vec![sender]);
                    true
                }
            }
        };
        // The same ask may have completed between the cache read above and
        // now: its result is cached before its waiters are let go, so a new
        // lead finds it there instead of asking the upstream again.
        let mut source = if lead { Source::Computed } else { Source::Joined };
        if lead && let Some((text, by)) = self.inner.cache.get_decoded::<(String, String)>(&key).await {
            let transformed = Transformed { text, by };
            let waiters = lock(&self.inner.in_flight).remove(&digest).unwrap_or_default();
            for waiter in waiters {
                let _ = waiter.send(transformed.clone());
            }
            source = Source::Cache;
        } else if lead && let Err(mpsc::error::SendError((digest, ask))) = self.inner.queue.send((digest, ask.clone()))
        {
            // The batcher is gone (shutting down): answer here.
            let result = self.inner.transformer.transform_batch(std::slice::from_ref(&ask)).await;
            complete(&self.inner, vec![(digest, ask)], result).await;
        }
        match receiver.await {
            Ok(transformed) => count((transformed, source)),
            // The batch was dropped mid-way (shutdown): answer locally.
            Err(_) => count((LocalTransformer.transform(&ask), Source::Computed)),
        }
    }

    /// Transforms many asks at once (they batch together), in order.
    pub async fn transform_all(&self, asks: Vec<Ask>) -> Vec<Transformed> {
        futures_util::future::join_all(asks.into_iter().map(|ask| self.transform(ask)))
            .await
            .into_iter()
            .map(|(transformed, _)| transformed)
            .collect()
    }
}

fn count(answer: (Transformed, Source)) -> (Transformed, Source) {
    metrics::counter!("vdm_rumor_transform_asks_total", "result" => answer.1.label()).increment(1);
    answer
}

fn lock(in_flight: &Mutex<HashMap<u64, Waiters>>) -> std::sync::MutexGuard<'_, HashMap<u64, Waiters>> {
    // A panic while holding this lock cannot leave the map inconsistent
    // (single inserts and removes): keep using it.
    in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn batcher(
    inner: Weak<Inner>,
    mut receiver: mpsc::UnboundedReceiver<(u64, Ask)>,
    size: usize,
    window: std::time::Duration,
) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + window;
        while batch.len() < size {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(ask)) => batch.push(ask),
                Ok(None) | Err(_) => break,
            }
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        // Batches run side by side: a slow upstream does not hold up the
        // next window's asks.
        tokio::spawn(run_batch(inner, batch));
    }
}

/// Releases the waiters of a batch that did not complete (its task panicked
/// or was cancelled at shutdown): their senders are dropped, so each waiter
/// answers locally, and later identical asks start afresh instead of
/// joining an ask nobody will answer.
struct Unfinished {
    inner: Arc<Inner>,
    digests: Vec<u64>,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.digests.is_empty() {
            return;
        }
        let mut in_flight = lock(&self.inner.in_flight);
        for digest in &self.digests {
            in_flight.remove(digest);
        }
    }
}

async fn run_batch(inner: Arc<Inner>, batch: Vec<(u64, Ask)>) {
    let span = tracing::info_span!("rumor.transform_batch", size = batch.len(), transformer = %inner.id);
    let mut unfinished = Unfinished {
        inner: inner.clone(),
        digests: batch.iter().map(|(digest, _)| *digest).collect(),
    };
    async {
        let started = Instant::now();
        metrics::histogram!("vdm_rumor_transform_batch_size").record(batch.len() as f64);
        let asks: Vec<Ask> = batch.iter().map(|(_, ask)| ask.clone()).collect();
        let results = inner.transformer.transform_batch(&asks).await;
        metrics::histogram!("vdm_rumor_transform_duration_seconds", "transformer" => inner.id.clone())
            .record(started.elapsed().as_secs_f64());
        complete(&inner, batch, results).await;
    }
    .instrument(span)
    .await;
    unfinished.digests.clear();
}

/// Caches each result, then answers every waiter of its ask.
async fn complete(inner: &Inner, batch: Vec<(u64, Ask)>, results: Vec<Transformed>) {
    for (i, (digest, ask)) in batch.into_iter().enumerate() {
        // One result per ask; should one be missing, the ask is answered
        // locally rather than left waiting.
        let result = results
            .get(i)
            .cloned()
            .unwrap_or_else(|| LocalTransformer.transform(&ask));
        let key = format!("{}:{digest:016x}", inner.id);
        // A fallback is not cached: the upstream may answer next time.
        if !result.by.ends_with("(fallback)") {
            inner.cache.set_encoded(&key, &(&result.text, &result.by)).await;
        }
        let waiters = lock(&inner.in_flight).remove(&digest).unwrap_or_default();
        for waiter in waiters {
            // A waiter that gave up (its request was cancelled) is fine.
            let _ = waiter.send(result.clone());
        }
    }
}
