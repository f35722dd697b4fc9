//! Coalescing concurrent single-transfer calls into `CreateTransfers` batches.
//!
//! Every [`crate::Client::create_transfer`] call puts its transfer and a reply slot on one
//! bounded queue. A single batcher task takes the first waiting submission, then gathers more:
//! for up to `batch_delay` if one is configured, and in any case for as long as the previous
//! batch has not yet been written to the socket (natural batching: under load, calls pile up
//! while a batch is being written, and the next batch takes them all; when idle, a call goes
//! out at once). It then hands the batch to its own task, which sends it with the client's
//! retry policy and gives each caller the outcome at its position, and goes back to
//! gathering. A batch-level failure (rejected, indeterminate) is given to every caller in it.
//!
//! Invariants: a batch holds at most `batch_size_max` transfers; a transfer submitted here is
//! never flagged `linked` (the client refuses it before queueing), so coalescing can never
//! join two callers' transfers into one chain; results are matched to callers by position,
//! which the server preserves and the client checks (one result per event).
//!
//! Deliberate omissions: batches are not grouped by partition, because the cluster's leader
//! node splits a batch over its partitions itself.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::client::{create_transfers_once, Core};
use crate::error::ClientError;
use crate::wire::{NewTransfer, TransferOutcome, TransferResult};

/// Submissions waiting for the batcher. Callers wait for room when it is full, which is the
/// client's backpressure on single-transfer calls.
pub const SUBMISSION_QUEUE_MAX: usize = 65_536;

/// One caller's transfer and where to send its outcome.
pub(crate) struct Submission {
    pub(crate) transfer: NewTransfer,
    pub(crate) reply: oneshot::Sender<Result<TransferOutcome, ClientError>>,
}

/// Starts the batcher task; it ends when every sender is dropped.
pub(crate) fn spawn(core: Arc<Core>) -> mpsc::Sender<Submission> {
    let (tx, rx) = mpsc::channel(SUBMISSION_QUEUE_MAX);
    tokio::spawn(run(core, rx));
    tx
}

async fn run(core: Arc<Core>, mut submissions: mpsc::Receiver<Submission>) {
    let size_max = core.options.batch_size_max;
    let mut previous_written: Option<oneshot::Receiver<()>> = None;
    while let Some(first) = submissions.recv().await {
        let mut batch = vec![first];
        let delay = core.options.batch_delay;
        if !delay.is_zero() {
            let deadline = Instant::now() + delay;
            while batch.len() < size_max {
                match tokio::time::timeout_at(deadline, submissions.recv()).await {
                    Ok(Some(submission)) => batch.push(submission),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        if let Some(mut written) = previous_written.take() {
            // Gather while the previous batch is being written, but never longer than a
            // request may take: a batch stuck behind a reconnect must not hold this one.
            let deadline = Instant::now() + core.options.request_timeout;
            loop {
                tokio::select! {
                    biased;
                    _ = &mut written => break,
                    _ = tokio::time::sleep_until(deadline) => break,
                    submission = submissions.recv(), if batch.len() < size_max => {
                        match submission {
                            Some(submission) => batch.push(submission),
                            None => break,
                        }
                    }
                }
            }
        }
        while batch.len() < size_max {
            let Ok(submission) = submissions.try_recv() else {
                break;
            };
            batch.push(submission);
        }
        let (written_tx, written_rx) = oneshot::channel();
        previous_written = Some(written_rx);
        tokio::spawn(send_batch(core.clone(), batch, written_tx));
    }
}

async fn send_batch(core: Arc<Core>, batch: Vec<Submission>, written: oneshot::Sender<()>) {
    assert!(!batch.is_empty(), "the batcher never forms an empty batch");
    let (transfers, replies): (Vec<NewTransfer>, Vec<_>) =
        batch.into_iter().map(|s| (s.transfer, s.reply)).unzip();
    match create_transfers_once(&core, &transfers, Some(written)).await {
        Ok(outcomes) => {
            assert_eq!(outcomes.len(), replies.len(), "checked on decoding");
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // Still indeterminate after the client's resends: not an outcome.
                let answer = if outcome.result == TransferResult::TimedOut {
                    Err(ClientError::Indeterminate {
                        attempts: core.options.retries_max,
                        last: "its partition did not answer (result timed_out)".into(),
                    })
                } else {
                    Ok(outcome)
                };
                let _ = reply.send(answer);
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
