//! [`run`]: the one async driver that turns a [`Trainer`]'s steps into the [`Event`] stream,
//! through a [`Host`] that supplies the clock, the pause/stop decisions and the yields (the CLI's
//! never pauses; the page's worker yields to its event loop). Long work (embedding a set, the
//! metrics) runs in bounded slices with a [`Host::pulse`] between them.

use std::sync::Arc;

use burn::prelude::*;

mod losses;
mod progress;

use losses::{EpochLosses, Pending, StepTime, per_second, read_losses, report_losses};
use progress::Progress;

use super::{StepOutcome, Trainer, read_f32};
use crate::device::cpu_device;
use crate::loss::pairwise_distances;
use crate::model::EMBEDDING_DIM;
use tripletlab_core::data::Dataset;
use tripletlab_core::metrics::{self, Metrics};
use tripletlab_core::run::{
    Collapse, EpochFigures, Event, Summary, TRIPLET_ROWS, TrainError, TripletSample, terms,
};

/// What the driver needs from whoever runs it (terminal or browser).
#[allow(async_fn_in_trait)]
pub trait Host {
    /// Called before every step. The browser yields to its event loop here and waits while the
    /// user has paused. Return `false` to stop the run (it then ends with `Done { stopped }`).
    async fn proceed(&mut self) -> bool;
    /// What the driver calls before every step: [`Host::proceed`], given the trainer as it
    /// stands (its current weights), so that a host can also answer a question about the
    /// embedding mid-run, paused or not (the page's query).
    async fn proceed_with(&mut self, _trainer: &Trainer) -> bool {
        self.proceed().await
    }
    /// Called between the bounded slices of long work (embedding a set, the metrics), so that
    /// a host that must stay responsive can look at its commands; same answer as
    /// [`Host::proceed`]. Long work never runs more than [`SLICE_ROWS`] rows between two calls.
    async fn pulse(&mut self) -> bool {
        true
    }
    /// What the driver calls between slices: [`Host::pulse`], given the trainer (as
    /// [`Host::proceed_with`] is), so a question can be answered there too, paused or not.
    async fn pulse_with(&mut self, _trainer: &Trainer) -> bool {
        self.pulse().await
    }
    /// Called after every epoch end with the trainer, e.g. to keep a host copy of the weights
    /// that survives a lost device. Nothing by default.
    async fn epoch_saved(&mut self, _trainer: &Trainer) {}
    /// Receives every event.
    fn event(&mut self, event: Event);
    /// Milliseconds on a monotonic clock.
    fn now_ms(&self) -> f64;
}

/// How much submitted device work may wait unread: the driver reads the pending losses once
/// they stand for about this long on the device, even before `read_every` of them. So a Stop
/// (or a lost device) waits at most this long, or one step where a step is slower, for the
/// device to finish what was already submitted (8 queued SwiftShader steps were 3 s).
pub const QUEUED_WORK_MS: f64 = 100.0;

/// Rows embedded (or kNN queries answered) between two [`Host::pulse`] calls: about 20–80 ms
/// of work on the slowest path (one wasm thread), a negligible cost natively.
pub const SLICE_ROWS: usize = 128;

/// Embeds `set` in slices of [`SLICE_ROWS`], asking `keep_going` before each; `None` when it
/// said no. The driver asks its host ([`Host::pulse`]); the page's worker, embedding a stopped
/// run's weights, asks whether a new run has started.
pub async fn embed_sliced(
    trainer: &Trainer,
    set: &Dataset,
    mut keep_going: impl AsyncFnMut() -> bool,
) -> Result<Option<Vec<f32>>, TrainError> {
    let mut out = Vec::new();
    out.try_reserve_exact(set.len() * EMBEDDING_DIM)
        .map_err(|_| {
            TrainError::Data(format!("not enough memory to embed {} images", set.len()))
        })?;
    let mut start = 0;
    while start < set.len() {
        if !keep_going().await {
            return Ok(None);
        }
        let end = (start + SLICE_ROWS).min(set.len());
        out.extend_from_slice(&trainer.embed_rows(set, start..end).await?);
        start = end;
    }
    Ok(Some(out))
}

/// Computes the metrics in slices of queries, pulsing the host between them; `None` when the
/// host said stop.
async fn evaluate_sliced<H: Host>(
    test: &[f32],
    test_labels: &[u32],
    train: Option<(&[f32], &[u32])>,
    host: &mut H,
    trainer: &Trainer,
) -> Result<Option<Metrics>, TrainError> {
    let mut evaluation = metrics::Evaluation::new(test, test_labels, train, EMBEDDING_DIM)
        .map_err(|e| TrainError::Metrics(e.to_string()))?;
    loop {
        if !host.pulse_with(trainer).await {
            return Ok(None);
        }
        if evaluation.advance(SLICE_ROWS) {
            return Ok(Some(evaluation.finish()));
        }
    }
}

/// Runs `trainer` to the end of its epochs, reporting through `host`. Returns the summary that
/// was also sent as [`Event::Done`], or the error that was also sent as [`Event::Failed`].
pub async fn run<H: Host>(trainer: &mut Trainer, host: &mut H) -> Result<Summary, TrainError> {
    let result = drive(trainer, host).await;
    match &result {
        Ok(summary) => host.event(Event::Done(summary.clone())),
        Err(e) => host.event(Event::Failed(e.clone())),
    }
    result
}

async fn drive<H: Host>(trainer: &mut Trainer, host: &mut H) -> Result<Summary, TrainError> {
    let config = trainer.config().clone();
    let mut run = Progress::start(trainer, host);
    let mut last_test: Option<Arc<Vec<f32>>> = None;
    for epoch in 1..=config.epochs {
        let tally = train_epoch(trainer, host, &mut run, epoch).await?;
        // A stopped run ends at once: the embeddings and metrics of the last finished
        // evaluation stay the run's (the host may embed the stopped weights afterwards).
        if run.summary.stopped {
            break;
        }
        match end_epoch(trainer, host, &mut run, epoch, tally).await? {
            Some(vectors) => last_test = Some(vectors),
            None => {
                run.summary.stopped = true;
                break;
            }
        }
    }
    if config.knn_against_train
        && !run.summary.stopped
        && let Some(test_vectors) = &last_test
    {
        final_knn(trainer, host, &mut run, test_vectors).await?;
    }
    Ok(run.finish(host))
}

/// The steps of epoch `epoch`, their losses read in batches (see [`ReadPacing`]) and reported,
/// and the test embeddings refreshed every `embed_every` steps. Sets `stopped` on a Stop.
async fn train_epoch<H: Host>(
    trainer: &mut Trainer,
    host: &mut H,
    run: &mut Progress,
    epoch: usize,
) -> Result<EpochLosses, TrainError> {
    let embed_every = trainer.config().embed_every;
    let mut pending: Vec<Pending> = Vec::new();
    let mut tally = EpochLosses::default();
    for step in 1..=run.steps_per_epoch {
        if !host.proceed_with(trainer).await {
            run.summary.stopped = true;
            break;
        }
        let t0 = host.now_ms();
        if pending.is_empty() {
            run.pacing.first_submitted = t0;
        }
        run.global_step += 1;
        match trainer.step()? {
            StepOutcome::Trained { readout, examples } => {
                run.examples += examples;
                pending.push((step, run.global_step, readout));
            }
            StepOutcome::Skipped { reason } => {
                run.summary.skipped_batches += 1;
                host.event(Event::Skipped {
                    epoch,
                    step,
                    reason,
                });
            }
        }
        let due = pending.len() >= run.pacing.read_every || step == run.steps_per_epoch;
        if due && !pending.is_empty() {
            read_pending(host, run, &mut pending, &mut tally, epoch, Some(t0)).await?;
        }
        run.train_ms += host.now_ms() - t0;
        let refresh = embed_every > 0
            && run.global_step.is_multiple_of(embed_every)
            && step != run.steps_per_epoch;
        if refresh && !refresh_embeddings(trainer, host, run, epoch).await? {
            run.summary.stopped = true;
            break;
        }
    }
    // Losses of a stopped epoch that were not read yet: reported like the others, so the host
    // knows the last step taken.
    if !pending.is_empty() {
        read_pending(host, run, &mut pending, &mut tally, epoch, None).await?;
    }
    Ok(tally)
}

/// Reads and reports the pending losses: in the course of the epoch (`step_started`: when the
/// current step began, for the rate; the read also paces the next ones), or after a Stop
/// (`None`).
async fn read_pending<H: Host>(
    host: &mut H,
    run: &mut Progress,
    pending: &mut Vec<Pending>,
    tally: &mut EpochLosses,
    epoch: usize,
    step_started: Option<f64>,
) -> Result<(), TrainError> {
    let read = pending.len();
    let losses = read_losses(pending).await?;
    let now = host.now_ms();
    let train_ms = match step_started {
        Some(t0) => {
            run.pacing.measured(read, now);
            run.train_ms + now - t0
        }
        None => run.train_ms,
    };
    let at = StepTime {
        examples_per_s: per_second(run.examples, train_ms),
        elapsed_s: (now - run.start) / 1000.0,
    };
    report_losses(
        host,
        losses,
        at,
        (epoch, run.steps_per_epoch),
        tally,
        &mut run.summary,
        step_started.is_none(),
    )
}

/// Embeds the test set mid-epoch and reports it; `false` when the host said stop.
async fn refresh_embeddings<H: Host>(
    trainer: &Trainer,
    host: &mut H,
    run: &Progress,
    epoch: usize,
) -> Result<bool, TrainError> {
    let Some(vectors) = embed_sliced(trainer, trainer.test_set(), async || {
        host.pulse_with(trainer).await
    })
    .await?
    else {
        return Ok(false);
    };
    host.event(Event::Embeddings {
        epoch,
        global_step: run.global_step,
        vectors: Arc::new(vectors),
        labels: run.test_labels.clone(),
    });
    report_triplets(trainer, host).await
}

/// Reports [`Event::Triplets`] for the last trained batch (its first [`TRIPLET_ROWS`]
/// examples, re-embedded with the current weights, dropout off, in slices like any set; their
/// distances on the CPU device with the loss's own [`pairwise_distances`]); `false` when the
/// host said stop. Nothing before the first step.
async fn report_triplets<H: Host>(trainer: &Trainer, host: &mut H) -> Result<bool, TrainError> {
    let Some((at, batch)) = trainer.last_trained() else {
        return Ok(true);
    };
    let rows = &batch[..batch.len().min(TRIPLET_ROWS)];
    let examples = trainer.train_set().select(rows);
    let Some(vectors) =
        embed_sliced(trainer, &examples, async || host.pulse_with(trainer).await).await?
    else {
        return Ok(false);
    };
    let config = trainer.config();
    let n = rows.len();
    let embeddings =
        Tensor::<2>::from_data(TensorData::new(vectors, [n, EMBEDDING_DIM]), &cpu_device());
    let dist = read_f32(pairwise_distances(embeddings, config.metric)).await?;
    let terms = terms(
        &dist,
        &examples.labels,
        config.mining,
        config.margin,
        config.soft,
    );
    host.event(Event::Triplets(Box::new(TripletSample::of(
        at,
        config.mining,
        (batch.len(), rows),
        &terms,
        trainer.train_set(),
    ))));
    Ok(true)
}

/// The end of epoch `epoch`: the test set embedded and scored, [`Event::EpochEnd`], and the
/// host's copy of the weights. Returns the test embeddings; `None` when the host said stop.
async fn end_epoch<H: Host>(
    trainer: &Trainer,
    host: &mut H,
    run: &mut Progress,
    epoch: usize,
    tally: EpochLosses,
) -> Result<Option<Arc<Vec<f32>>>, TrainError> {
    let Some(vectors) = embed_sliced(trainer, trainer.test_set(), async || {
        host.pulse_with(trainer).await
    })
    .await?
    else {
        return Ok(None);
    };
    let vectors = Arc::new(vectors);
    host.event(Event::Embeddings {
        epoch,
        global_step: run.global_step,
        vectors: vectors.clone(),
        labels: run.test_labels.clone(),
    });
    if !report_triplets(trainer, host).await? {
        return Ok(None);
    }
    let mean_loss = tally.mean();
    let labels = trainer.test_set().labels_u32();
    let Some(metrics) = evaluate_sliced(&vectors, &labels, None, host, trainer).await? else {
        return Ok(None);
    };
    run.summary.epoch_losses.push(mean_loss);
    let figures = EpochFigures {
        mining: tally.mining,
        collapse: Collapse::of(&vectors, EMBEDDING_DIM),
    };
    Arc::make_mut(&mut run.summary.epoch_figures).push(figures);
    run.summary.epochs_completed = epoch;
    run.summary.metrics = metrics.clone();
    host.event(Event::EpochEnd {
        epoch,
        mean_loss,
        figures: Box::new(figures),
        metrics,
        elapsed_s: run.elapsed_s(host),
    });
    host.epoch_saved(trainer).await;
    Ok(Some(vectors))
}

/// The run's last evaluation: kNN of the test embeddings against the embedded training set.
/// Stopped during it, the last epoch's metrics stand.
async fn final_knn<H: Host>(
    trainer: &Trainer,
    host: &mut H,
    run: &mut Progress,
    test_vectors: &[f32],
) -> Result<(), TrainError> {
    let embedded = embed_sliced(trainer, trainer.train_set(), async || {
        host.pulse_with(trainer).await
    })
    .await?;
    let Some(train_vectors) = embedded else {
        run.summary.stopped = true;
        return Ok(());
    };
    let train_labels = trainer.train_set().labels_u32();
    let train = Some((train_vectors.as_slice(), train_labels.as_slice()));
    let test_labels = trainer.test_set().labels_u32();
    match evaluate_sliced(test_vectors, &test_labels, train, host, trainer).await? {
        None => run.summary.stopped = true,
        Some(metrics) => run.summary.metrics = metrics,
    }
    Ok(())
}
