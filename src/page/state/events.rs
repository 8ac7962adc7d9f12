//! What each [`Event`] of the current run does to the [`State`].

use std::rc::Rc;

use super::*;
use tripletlab_core::run::{Event, Summary, TrainError};

impl State {
    pub(super) fn apply_event(&mut self, event: Event) {
        match event {
            Event::Started {
                epochs,
                steps_per_epoch,
                train_examples,
                test_examples,
                pk_epoch,
            } => {
                self.progress.pk_epoch = pk_epoch.as_ref().map(|pk| pk.describe());
                self.progress.epochs = epochs;
                self.progress.steps_per_epoch = steps_per_epoch;
                self.progress.examples = (train_examples, test_examples);
            }
            Event::Step {
                epoch,
                step,
                steps_per_epoch,
                global_step,
                loss,
                mining,
                examples_per_s,
                elapsed_s,
            } => {
                let p = &mut self.progress;
                p.epoch = epoch;
                p.step = step;
                p.steps_per_epoch = steps_per_epoch;
                p.global_step = p.global_step.max(global_step);
                p.examples_per_s = examples_per_s;
                p.elapsed_s = elapsed_s;
                Rc::make_mut(&mut self.losses).push((global_step, loss));
                Rc::make_mut(&mut self.mining_steps).push((global_step, mining));
            }
            Event::Skipped { epoch, step, .. } => {
                self.skipped += 1;
                let p = &mut self.progress;
                p.epoch = epoch;
                p.step = step;
                let global = (epoch - 1) * p.steps_per_epoch + step;
                p.global_step = p.global_step.max(global);
            }
            Event::Embeddings {
                epoch,
                global_step,
                vectors,
                labels,
            } => {
                self.embeddings = Some(Embeddings {
                    vectors: Shared(vectors),
                    labels: Shared(labels),
                    epoch,
                    global_step,
                });
            }
            Event::Triplets(sample) => self.triplets = Some(Rc::new(*sample)),
            Event::EpochEnd {
                epoch,
                mean_loss,
                metrics,
                elapsed_s,
                figures,
            } => {
                self.progress.elapsed_s = elapsed_s;
                if let Some(warning) = figures.collapse.warning() {
                    self.notify(Notice::run_warning(format!("Epoch {epoch}: {warning}")));
                }
                Rc::make_mut(&mut self.epoch_figures).push(*figures);
                Rc::make_mut(&mut self.epoch_losses).push(mean_loss);
                Rc::make_mut(&mut self.metrics).push(EpochRow {
                    epoch,
                    mean_loss,
                    metrics,
                });
            }
            Event::Done(summary) => self.run_done(summary),
            Event::Failed(error) => self.run_failed(error),
        }
    }

    fn run_done(&mut self, summary: Summary) {
        self.phase = Phase::Done;
        self.progress.stop = StopState::None;
        self.progress.elapsed_s = summary.total_seconds;
        if summary.examples_per_s > 0.0 {
            self.progress.examples_per_s = summary.examples_per_s;
        }
        self.skipped = summary.skipped_batches;
        if summary.stopped {
            self.notify(Notice::info(format!(
                "Stopped after {} steps ({} epochs complete). The weights are those at the stop; \
                 the downloads panel says which step the test embeddings are from.",
                summary.steps, summary.epochs_completed
            )));
        } else {
            self.progress.complete = true;
            self.progress.global_step = self.progress.total_steps();
        }
        // A run stopped before any epoch ended has no metrics to show.
        if !summary.stopped || summary.epochs_completed > 0 {
            self.final_metrics = Some(Rc::new(summary.metrics));
        }
    }

    fn run_failed(&mut self, error: TrainError) {
        self.phase = Phase::Error;
        self.progress.stop = StopState::None;
        let kept = if self.embeddings.is_some() {
            " The embeddings computed so far can still be downloaded."
        } else {
            ""
        };
        if matches!(error, TrainError::Device(_)) {
            // The worker starts a new device; Train waits for it.
            self.device_ready = false;
        }
        let text = match &error {
            TrainError::Device(_) => format!(
                "Training stopped: {error} (the GPU device was lost or reset).{kept} \
                 Download weights, when enabled, holds the weights of the last finished \
                 epoch. The next Train starts a new device."
            ),
            _ => format!("Training failed: {error}.{kept}"),
        };
        self.notify(Notice::error(text));
    }
}
