//! The progress bar: epoch x/y, step, examples/s, elapsed, ETA.

use yew::prelude::*;

use crate::page::state::{Phase, ProgressInfo, StopState};

/// Props of [`Progress`].
#[derive(Properties, PartialEq)]
pub struct ProgressProps {
    /// Where the run is.
    pub progress: ProgressInfo,
    /// The page's phase.
    pub phase: Phase,
    /// Skipped batches.
    pub skipped: usize,
}

fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "–".into();
    }
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The bar and its numbers.
#[function_component(Progress)]
pub fn progress(props: &ProgressProps) -> Html {
    let p = &props.progress;
    let total = p.total_steps();
    let done = if p.complete {
        total
    } else {
        p.global_step.min(total)
    };
    let pct = if total == 0 {
        0.0
    } else {
        100.0 * done as f64 / total as f64
    };
    let pct_round = if p.complete {
        100
    } else {
        (pct.floor() as u32)
            .min(99)
            .max(if done > 0 { 1 } else { 0 })
    };
    let eta = if p.complete || done == 0 || total == 0 {
        None
    } else {
        Some(p.elapsed_s / done as f64 * (total - done) as f64)
    };
    let label = match props.phase {
        Phase::Training | Phase::Paused if p.stop == StopState::Seen => {
            "stopping: the device finishes the steps already sent…"
        }
        Phase::Training | Phase::Paused if p.stop == StopState::Requested => "stopping…",
        Phase::Paused => "paused",
        Phase::Done if p.complete => "done",
        Phase::Done => "stopped",
        // Every step done, the run's last evaluation (kNN against the training set) goes on.
        Phase::Training if total > 0 && done >= total => "final evaluation…",
        Phase::Training => "training",
        Phase::Error if total > 0 => "failed",
        _ => "not started",
    };
    let text = format!(
        "epoch {}/{} · step {}/{} · {:.0} ex/s · elapsed {} · ETA {}{}",
        p.epoch.max(if done > 0 { 1 } else { 0 }),
        p.epochs,
        p.step,
        p.steps_per_epoch,
        p.examples_per_s,
        duration(p.elapsed_s),
        eta.map(duration).unwrap_or_else(|| "–".into()),
        if props.skipped > 0 {
            format!(" · {} batches skipped", props.skipped)
        } else {
            String::new()
        },
    );
    html! {
        <section class="progress" aria-label="Progress" data-stop={p.stop.as_str()}>
            <div
                class="bar"
                role="progressbar"
                aria-label="Training progress"
                aria-valuemin="0"
                aria-valuemax="100"
                aria-valuenow={pct_round.to_string()}
                aria-valuetext={format!("{pct_round} %, {text}")}
            >
                // A native <progress> draws the bar: style attributes are forbidden by the CSP.
                <progress class="meter" max="1000" value={((pct * 10.0).round() as u32).to_string()} aria-hidden="true"></progress>
            </div>
            <p class="numbers"><strong>{ label }</strong>{ " · " }{ text }</p>
            { match &p.pk_epoch {
                Some(pk) => html! { <p class="hint" data-testid="pk-epoch">{ pk.clone() }</p> },
                None => html! {},
            } }
        </section>
    }
}
