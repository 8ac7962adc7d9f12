//! The learning rate of each step: [`lr_at`] (a linear warm-up, then [`LrSchedule`]'s constant
//! rate or cosine decay) and [`describe_schedule`]. Pure arithmetic on the settings: knows no
//! engine (each takes the rate per step), no device and no screen.

use super::{LrSchedule, TrainConfig};

/// Adam's learning rate at zero-based step `step` of a run of `total` steps.
///
/// * Warm-up: steps `0..warmup_steps` climb linearly, `lr · (step + 1) / warmup_steps`, so the
///   last warm-up step is at `lr`.
/// * Then [`LrSchedule::Constant`] stays at `lr` (with no warm-up: exactly `config.lr` at every
///   step, the notebook's run), and [`LrSchedule::Cosine`] follows half a cosine from `lr` at the
///   first step after the warm-up to 0 at step `total` (the last step still learns a little).
pub fn lr_at(config: &TrainConfig, step: usize, total: usize) -> f64 {
    let warmup = config.warmup_steps;
    if step < warmup {
        return config.lr * (step + 1) as f64 / warmup as f64;
    }
    match config.lr_schedule {
        LrSchedule::Constant => config.lr,
        LrSchedule::Cosine => {
            let span = total.saturating_sub(warmup).max(1) as f64;
            let progress = ((step - warmup) as f64 / span).min(1.0);
            config.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

/// The schedule in words: "0.002", "0.002 after 100 warm-up steps, cosine decay to 0".
pub fn describe_schedule(config: &TrainConfig) -> String {
    let mut text = format!("{}", config.lr);
    if config.warmup_steps > 0 {
        text.push_str(&format!(
            " after {} linear warm-up steps",
            config.warmup_steps
        ));
    }
    if config.lr_schedule == LrSchedule::Cosine {
        text.push_str(", cosine decay to 0 at the last step");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lr_schedule: LrSchedule, warmup_steps: usize) -> TrainConfig {
        TrainConfig {
            lr: 0.002,
            lr_schedule,
            warmup_steps,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn the_notebook_s_rate_is_the_same_at_every_step() {
        let c = TrainConfig::default();
        for step in [0, 1, 123, 1249, 5000] {
            assert_eq!(lr_at(&c, step, 1250).to_bits(), c.lr.to_bits(), "{step}");
        }
        assert_eq!(describe_schedule(&c), "0.001");
    }

    #[test]
    fn warm_up_climbs_linearly_then_the_cosine_falls_to_zero() {
        let c = config(LrSchedule::Cosine, 100);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(lr_at(&c, 0, 1100), 0.002 / 100.0));
        assert!(close(lr_at(&c, 49, 1100), 0.001));
        assert!(close(lr_at(&c, 99, 1100), 0.002), "the warm-up ends at lr");
        assert!(close(lr_at(&c, 100, 1100), 0.002), "the decay starts at lr");
        assert!(
            close(lr_at(&c, 600, 1100), 0.001),
            "half-way: half the rate"
        );
        assert!(lr_at(&c, 1099, 1100) > 0.0 && lr_at(&c, 1099, 1100) < 1e-7);
        assert!(close(lr_at(&c, 5000, 1100), 0.0), "past the end: 0");
        let mut previous = f64::INFINITY;
        for step in 100..1100 {
            let lr = lr_at(&c, step, 1100);
            assert!(lr <= previous, "step {step} rises");
            previous = lr;
        }
        // Constant after a warm-up.
        let c = config(LrSchedule::Constant, 10);
        assert!(close(lr_at(&c, 4, 100), 0.001));
        assert_eq!(lr_at(&c, 10, 100), 0.002);
        assert_eq!(lr_at(&c, 99, 100), 0.002);
        assert_eq!(
            describe_schedule(&config(LrSchedule::Cosine, 100)),
            "0.002 after 100 linear warm-up steps, cosine decay to 0 at the last step"
        );
    }
}
