//! The ledger rows of refused and ignored requests, written in batches.
//!
//! A flood of bad requests (a misconfigured secret, a scanner, a replay storm) must not cost
//! one ledger commit each, or the receiver answers at the ledger's commit rate and every
//! legitimate delivery queues behind the flood. Yet every request must leave its row.
//!
//! So rows go through one bounded queue to one writer task, which takes whatever has queued
//! while it was writing (up to [`MAX_BATCH`]) and writes it in one transaction — group commit:
//! an idle receiver writes a row as soon as it comes, a busy one writes hundreds per commit,
//! and no timer adds latency to either. A request is answered only after its row is committed
//! (the handler waits for the writer's word), so a receiver killed at any moment has lost no
//! row of a request it answered; the requests in flight then get no answer, and their senders
//! retry. The queue is bounded ([`QUEUE`]): when the ledger cannot keep up, handlers wait for
//! room — back-pressure on the senders, never a dropped row. When the receiver stops, the
//! writer drains the queue before the ledger is closed.

use cutover_ledger::{Ledger, LedgerError, NewDelivery};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Rows in one transaction at most: big enough that a flood costs a commit per few hundred
/// requests, small enough that one transaction never holds SQLite's write lock for long.
pub(crate) const MAX_BATCH: usize = 512;

/// Rows waiting for the writer at most before handlers wait for room.
pub(crate) const QUEUE: usize = 4096;

type Ack = oneshot::Sender<Result<(), String>>;

/// The handlers' side: [`Recorder::record`] returns once the row is committed.
#[derive(Clone, Debug)]
pub(crate) struct Recorder {
    queue: mpsc::Sender<(NewDelivery, Ack)>,
}

/// The writer task; [`Writer::finish`] stops taking rows and waits until every queued row is
/// written.
pub(crate) struct Writer {
    task: JoinHandle<()>,
    stop: oneshot::Sender<()>,
}

impl Recorder {
    /// Starts the writer on `ledger`.
    pub(crate) fn start(ledger: Ledger) -> (Recorder, Writer) {
        let (queue, rows) = mpsc::channel(QUEUE);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(write(ledger, rows, stopped));
        (Recorder { queue }, Writer { task, stop })
    }

    /// Records `row`, returning once it is committed.
    ///
    /// # Errors
    ///
    /// What the ledger said, when it refused the row's batch (and the row again alone), or
    /// that the writer has stopped.
    pub(crate) async fn record(&self, row: NewDelivery) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.queue
            .send((row, ack))
            .await
            .map_err(|_| "the ledger writer has stopped".to_owned())?;
        done.await
            .unwrap_or_else(|_| Err("the ledger writer has stopped".to_owned()))
    }
}

impl Writer {
    /// Refuses further rows, writes every row queued so far, and returns. Call once the
    /// server has stopped taking requests, before the ledger is closed.
    pub(crate) async fn finish(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the ledger writer panicked");
        }
    }
}

async fn write(
    ledger: Ledger,
    mut rows: mpsc::Receiver<(NewDelivery, Ack)>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut stopping = false;
    loop {
        // `recv_many` waits for one row, then takes what else is queued, up to the limit
        // (cancel-safe, so losing the race to `stop` loses no row). Once the queue is closed
        // it returns what is left, then 0.
        let taken = tokio::select! {
            taken = rows.recv_many(&mut batch, MAX_BATCH) => taken,
            _ = &mut stop, if !stopping => {
                stopping = true;
                rows.close();
                continue;
            }
        };
        if taken == 0 {
            return;
        }
        flush(&ledger, &mut batch).await;
    }
}

/// Writes `batch` in one transaction and tells each row's handler; empties `batch`.
async fn flush(ledger: &Ledger, batch: &mut Vec<(NewDelivery, Ack)>) {
    let (records, acks): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
    match ledger.record_deliveries(&records).await {
        Ok(()) => {
            for ack in acks {
                let _ = ack.send(Ok(()));
            }
        }
        // One bad row must not cost the others theirs: write them one by one.
        Err(e) if records.len() > 1 => {
            tracing::warn!(error = %e, rows = records.len(), "a batch of delivery rows was refused; writing them one by one");
            for (record, ack) in records.iter().zip(acks) {
                let _ = ack.send(one(ledger, record).await);
            }
        }
        Err(e) => {
            for ack in acks {
                let _ = ack.send(Err(e.to_string()));
            }
        }
    }
}

async fn one(ledger: &Ledger, record: &NewDelivery) -> Result<(), String> {
    ledger
        .record_deliveries(std::slice::from_ref(record))
        .await
        .map_err(|e: LedgerError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(i: usize) -> NewDelivery {
        NewDelivery {
            provider: "github".into(),
            delivery_id: Some(format!("d{i}")),
            event: Some("push".into()),
            source: "127.0.0.1:5000".into(),
            status: 401,
            outcome: "rejected".into(),
            reason: "signature mismatch".into(),
            rule: None,
            workflow_id: None,
        }
    }

    /// A fresh SQLite ledger: its directory (kept alive by the caller), URL and handle.
    async fn ledger() -> (tempfile::TempDir, String, Ledger) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = Ledger::resolve_url(None, dir.path());
        let ledger = Ledger::open(&url).await.expect("opens");
        (dir, url, ledger)
    }

    #[tokio::test]
    async fn every_row_sent_at_once_is_written_and_acknowledged_after_its_commit() {
        let (_dir, url, ledger) = ledger().await;
        let (recorder, writer) = Recorder::start(ledger.clone());
        let sent = 3 * MAX_BATCH + 7;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..sent {
            let recorder = recorder.clone();
            tasks.spawn(async move { recorder.record(refusal(i)).await });
        }
        let mut acked = 0;
        while let Some(done) = tasks.join_next().await {
            done.expect("task").expect("recorded");
            acked += 1;
        }
        // Acknowledged means committed: a second connection sees every row.
        let seen = Ledger::open(&url)
            .await
            .expect("opens again")
            .deliveries(u32::MAX)
            .await
            .expect("rows")
            .len();
        assert_eq!((acked, seen), (sent, sent));
        writer.finish().await;
        assert!(
            recorder.record(refusal(0)).await.is_err(),
            "a finished writer takes no more rows"
        );
    }

    #[tokio::test]
    async fn rows_queued_when_the_receiver_stops_are_written_before_the_writer_ends() {
        let (_dir, _, ledger) = ledger().await;
        let (recorder, writer) = Recorder::start(ledger.clone());
        // Queue rows without waiting for their acknowledgement, then stop at once.
        let mut pending = Vec::new();
        for i in 0..100 {
            let (ack, done) = oneshot::channel();
            recorder
                .queue
                .send((refusal(i), ack))
                .await
                .expect("queued");
            pending.push(done);
        }
        writer.finish().await;
        for done in pending {
            done.await.expect("answered").expect("written");
        }
        assert_eq!(ledger.deliveries(1000).await.expect("rows").len(), 100);
    }

    #[tokio::test]
    async fn a_closed_ledger_is_an_error_for_every_row_not_a_hang() {
        let (_dir, _, ledger) = ledger().await;
        ledger.close().await;
        let (recorder, writer) = Recorder::start(ledger);
        let err = recorder.record(refusal(1)).await.expect_err("refused");
        assert!(err.contains("closed"), "{err}");
        writer.finish().await;
    }
}
