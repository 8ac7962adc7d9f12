//! What the steps of a run share: the clock and the counters of the run so far, started with
//! [`Event::Started`] and finished into the run's [`Summary`].

use std::sync::Arc;

use tripletlab_core::metrics::Metrics;
use tripletlab_core::run::{Event, Summary};

use super::Host;
use super::losses::{ReadPacing, per_second};
use crate::train::Trainer;

/// What the helpers of [`drive`] share: the clock and counters of the run so far.
pub(super) struct Progress {
    /// When the run started (the host's clock).
    pub(super) start: f64,
    /// Milliseconds spent in steps (evaluation excluded).
    pub(super) train_ms: f64,
    /// Training examples in the steps taken.
    pub(super) examples: usize,
    /// Steps taken since the start, skipped ones included.
    pub(super) global_step: usize,
    pub(super) steps_per_epoch: usize,
    pub(super) test_labels: Arc<Vec<u8>>,
    pub(super) pacing: ReadPacing,
    pub(super) summary: Summary,
}

impl Progress {
    /// Reports [`Event::Started`] and starts the clock.
    pub(super) fn start<H: Host>(trainer: &Trainer, host: &mut H) -> Self {
        let config = trainer.config();
        let steps_per_epoch = trainer.steps_per_epoch();
        host.event(Event::Started {
            epochs: config.epochs,
            steps_per_epoch,
            train_examples: trainer.train_set().len(),
            test_examples: trainer.test_set().len(),
            pk_epoch: trainer.pk_epoch().cloned(),
        });
        Self {
            start: host.now_ms(),
            train_ms: 0.0,
            examples: 0,
            global_step: 0,
            steps_per_epoch,
            test_labels: Arc::new(trainer.test_set().labels.clone()),
            pacing: ReadPacing::new(config.read_every),
            summary: Summary {
                stopped: false,
                epochs_completed: 0,
                steps: 0,
                skipped_batches: 0,
                epoch_losses: Vec::new(),
                epoch_figures: Arc::default(),
                metrics: Metrics::default(),
                examples_per_s: 0.0,
                train_seconds: 0.0,
                total_seconds: 0.0,
            },
        }
    }

    pub(super) fn elapsed_s<H: Host>(&self, host: &H) -> f64 {
        (host.now_ms() - self.start) / 1000.0
    }

    /// The summary, with the run's rates and times.
    pub(super) fn finish<H: Host>(mut self, host: &H) -> Summary {
        self.summary.train_seconds = self.train_ms / 1000.0;
        self.summary.examples_per_s = per_second(self.examples, self.train_ms);
        self.summary.total_seconds = self.elapsed_s(host);
        self.summary
    }
}
