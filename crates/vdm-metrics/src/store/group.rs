//! Uploads that arrive together are stored together. Every upload's rows
//! go to a few writer tasks; a writer takes the first waiting upload and
//! every other already waiting (up to [`GROUP_ROWS`] rows), stores them all
//! with the statements a single upload would use, and answers each upload
//! after the commit. Under load that is one insert and one commit for
//! several uploads instead of one each; when uploads are sparse it is the
//! same single insert as before, with no added wait (nothing waits for
//! company).
//!
//! The inserts run on the writer tasks, not on the callers': a caller that
//! gives up (its client went away) never cancels an insert other uploads
//! are part of. When a grouped insert fails, each of its uploads is stored
//! alone, so one upload can never fail another's.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use sea_orm::DbErr;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{SampleRow, SystemRow, insert_rows};
use crate::error::{MetricsError, MetricsResult};

/// Rows (of either table) a grouped insert gathers at most before it
/// stops taking more uploads.
const GROUP_ROWS: usize = 1000;
/// Inserts in flight at once: one gathering while another commits.
const WRITERS: usize = 2;
/// Uploads waiting for a writer before senders wait too (backpressure).
const QUEUE: usize = 1024;

/// One upload's rows and where its result goes.
struct Upload {
    samples: Vec<SampleRow>,
    systems: Vec<SystemRow>,
    done: oneshot::Sender<MetricsResult<()>>,
}

/// The senders' side: cheap to clone, one per store clone. The writer tasks
/// end when the last clone is dropped.
#[derive(Clone)]
pub(super) struct GroupWriter {
    uploads: mpsc::Sender<Upload>,
}

impl GroupWriter {
    /// Starts the writer tasks on the current runtime.
    pub(super) fn start(db: DatabaseConnection) -> GroupWriter {
        let (uploads, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..WRITERS {
            tokio::spawn(write_groups(db.clone(), Arc::clone(&waiting)));
        }
        GroupWriter { uploads }
    }

    /// Stores one upload's rows, possibly in one insert with others;
    /// returns once they are committed (or failed).
    pub(super) async fn store(&self, samples: Vec<SampleRow>, systems: Vec<SystemRow>) -> MetricsResult<()> {
        let (done, result) = oneshot::channel();
        let upload = Upload { samples, systems, done };
        if self.uploads.send(upload).await.is_err() {
            return Err(stopped());
        }
        result.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// One writer: gathers what is waiting, stores it, answers, again.
async fn write_groups(db: DatabaseConnection, waiting: Arc<Mutex<mpsc::Receiver<Upload>>>) {
    loop {
        let group = {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else { return };
            let (mut samples, mut systems) = (first.samples.len(), first.systems.len());
            let mut group = vec![first];
            while samples < GROUP_ROWS && systems < GROUP_ROWS {
                let Ok(next) = waiting.try_recv() else { break };
                samples += next.samples.len();
                systems += next.systems.len();
                group.push(next);
            }
            group
        };
        store_group(&db, group).await;
    }
}

async fn store_group(db: &DatabaseConnection, mut group: Vec<Upload>) {
    metrics::counter!("vdm_metrics_client_inserts_total").increment(1);
    if group.len() == 1 {
        let upload = group.remove(0);
        let result = insert_rows(db, &upload.samples, &upload.systems).await;
        let _ = upload.done.send(result);
        return;
    }
    // Borrowed: the rows are only encoded, never kept.
    let samples: Vec<&SampleRow> = group.iter().flat_map(|u| &u.samples).collect();
    let systems: Vec<&SystemRow> = group.iter().flat_map(|u| &u.systems).collect();
    match insert_rows(db, &samples, &systems).await {
        Ok(()) => {
            for upload in group {
                // The caller may have gone away: its rows are stored anyway.
                let _ = upload.done.send(Ok(()));
            }
        }
        Err(error) => {
            tracing::warn!(
                error = %error,
                uploads = group.len(),
                "grouped telemetry insert failed; storing each upload alone"
            );
            for upload in group {
                metrics::counter!("vdm_metrics_client_inserts_total").increment(1);
                let result = insert_rows(db, &upload.samples, &upload.systems).await;
                let _ = upload.done.send(result);
            }
        }
    }
}

/// The writers are gone: the service is stopping.
fn stopped() -> MetricsError {
    MetricsError::Unavailable(DbErr::Custom("the telemetry writer has stopped".to_owned()))
}
