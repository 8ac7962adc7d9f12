//! The losses of a run's steps, read from the device a batch at a time: what waits to be read
//! ([`Pending`]) and how many may wait ([`ReadPacing`]), the one round trip that reads them
//! ([`read_losses`]), and counting them into the epoch and reporting each step
//! ([`report_losses`]: the one non-finite-loss policy).

use burn::prelude::*;
use tripletlab_core::run::{DEVICE_STATS, Event, MiningStats, Summary, TrainError};

use super::{Host, QUEUED_WORK_MS};
use crate::train::read_f32;

/// A step's loss and statistics waiting to be read: `(step in the epoch, global step,
/// readout)` (see [`StepOutcome::Trained`]).
pub(super) type Pending = (usize, usize, Tensor<1>);

/// A step's read loss and statistics: `(step in the epoch, global step, loss, statistics)`.
pub(super) type Read = (usize, usize, f32, MiningStats);

/// How many losses wait unread: at most `read_every`, and no more than [`QUEUED_WORK_MS`] of
/// device work by the last read's pace (one step's time is from its submission to its loss
/// being read, so it is the device's pace, however fast the submission returned).
pub(super) struct ReadPacing {
    pub(super) limit: usize,
    /// Losses to collect before the next read: 1 until the first read has measured the pace.
    pub(super) read_every: usize,
    /// When the oldest unread step was submitted.
    pub(super) first_submitted: f64,
}

impl ReadPacing {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            read_every: 1,
            first_submitted: 0.0,
        }
    }

    /// `steps` losses were read at `now`.
    pub(super) fn measured(&mut self, steps: usize, now: f64) {
        let ms_per_step = (now - self.first_submitted) / steps as f64;
        self.read_every = if ms_per_step > 0.0 {
            ((QUEUED_WORK_MS / ms_per_step) as usize).clamp(1, self.limit)
        } else {
            self.limit
        };
    }
}

/// The read losses and mining statistics of one epoch.
#[derive(Default)]
pub(super) struct EpochLosses {
    pub(super) sum: f64,
    pub(super) trained: usize,
    pub(super) mining: MiningStats,
}

impl EpochLosses {
    /// Mean loss over the epoch's trained steps (NaN if none was trained).
    pub(super) fn mean(&self) -> f32 {
        if self.trained > 0 {
            (self.sum / self.trained as f64) as f32
        } else {
            f32::NAN
        }
    }
}

/// When a batch of losses was read: the rate and the clock that its steps report.
pub(super) struct StepTime {
    pub(super) examples_per_s: f64,
    pub(super) elapsed_s: f64,
}

/// `count` per second over `ms` milliseconds (0 before any time has passed).
pub(super) fn per_second(count: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        count as f64 / (ms / 1000.0)
    } else {
        0.0
    }
}

/// Counts read losses into the epoch and reports each as an [`Event::Step`]. The one
/// non-finite-loss policy: a non-finite loss ends the run with [`TrainError::NonFinite`]; while
/// the run is `stopping` it is left out instead (no engine applied that step, and the run ends
/// anyway).
pub(super) fn report_losses<H: Host>(
    host: &mut H,
    losses: Vec<Read>,
    at: StepTime,
    (epoch, steps_per_epoch): (usize, usize),
    tally: &mut EpochLosses,
    summary: &mut Summary,
    stopping: bool,
) -> Result<(), TrainError> {
    for (step, global_step, loss, mining) in losses {
        if !loss.is_finite() {
            if stopping {
                continue;
            }
            return Err(TrainError::NonFinite {
                epoch,
                step,
                value: loss,
            });
        }
        tally.sum += f64::from(loss);
        tally.trained += 1;
        tally.mining.add(&mining);
        summary.steps += 1;
        host.event(Event::Step {
            epoch,
            step,
            steps_per_epoch,
            global_step,
            loss,
            mining,
            examples_per_s: at.examples_per_s,
            elapsed_s: at.elapsed_s,
        });
    }
    Ok(())
}

/// Reads the pending losses and their statistics in one device round trip.
pub(super) async fn read_losses(pending: &mut Vec<Pending>) -> Result<Vec<Read>, TrainError> {
    let drained: Vec<_> = std::mem::take(pending);
    let mut tensors: Vec<Tensor<1>> = drained.iter().map(|(_, _, t)| t.clone()).collect();
    // One readout is read as it is: a `cat` would cost a launch.
    let all = match tensors.len() {
        1 => tensors.remove(0),
        _ => Tensor::cat(tensors, 0),
    };
    let values = read_f32(all).await?;
    Ok(drained
        .into_iter()
        .zip(values.chunks_exact(1 + DEVICE_STATS))
        .map(|((s, g, _), v)| (s, g, v[0], MiningStats::from_device(&v[1..])))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_pacing_bounds_the_unread_device_work() {
        let mut pacing = ReadPacing::new(8);
        assert_eq!(
            pacing.read_every, 1,
            "the first loss is read at once, to learn the pace"
        );
        // 4 steps read 40 ms after the first was submitted: 10 ms a step, 10 fit in 100 ms.
        pacing.first_submitted = 1000.0;
        pacing.measured(4, 1040.0);
        assert_eq!(pacing.read_every, 8, "capped at read_every");
        // A slow device (SwiftShader: 400 ms a step): every step is read.
        pacing.first_submitted = 2000.0;
        pacing.measured(8, 5200.0);
        assert_eq!(pacing.read_every, 1);
        // 30 ms a step: three steps' losses wait.
        pacing.first_submitted = 6000.0;
        pacing.measured(2, 6060.0);
        assert_eq!(pacing.read_every, 3);
        // A clock that did not move: no pace known, the configured limit.
        pacing.first_submitted = 7000.0;
        pacing.measured(1, 7000.0);
        assert_eq!(pacing.read_every, 8);
    }
}
