//! The loss curve: every step (faint), an exponential moving average, and the epoch means.

use std::rc::Rc;

use yew::prelude::*;

use super::draw::{context, smooth};

/// Props of [`LossChart`].
#[derive(Properties, PartialEq)]
pub struct LossChartProps {
    /// `(global_step, loss)` per trained step.
    pub losses: Rc<Vec<(usize, f32)>>,
    /// Mean loss per epoch.
    pub epoch_losses: Rc<Vec<f32>>,
    /// Steps per epoch (to place the epoch means).
    pub steps_per_epoch: usize,
}

const W: f64 = 520.0;
const H: f64 = 240.0;
const PAD_L: f64 = 44.0;
const PAD_R: f64 = 10.0;
const PAD_T: f64 = 10.0;
const PAD_B: f64 = 24.0;

/// The chart.
#[function_component(LossChart)]
pub fn loss_chart(props: &LossChartProps) -> Html {
    let canvas = use_node_ref();
    {
        let canvas = canvas.clone();
        let losses = props.losses.clone();
        let epochs = props.epoch_losses.clone();
        let spe = props.steps_per_epoch;
        use_effect_with(
            (props.losses.clone(), props.epoch_losses.clone(), spe),
            move |_| {
                draw(&canvas, &losses, &epochs, spe);
            },
        );
    }
    let last = props
        .losses
        .last()
        .map(|(_, l)| format!("last loss {l:.4}"));
    let smoothed = smooth(&props.losses)
        .last()
        .map(|(_, l)| format!("smoothed {l:.4}"));
    let summary = [last, smoothed]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    // The steps the chart plots (what `draw` draws: every finite loss received).
    let plotted = props.losses.iter().filter(|(_, l)| l.is_finite()).count();
    html! {
        <section class="chart" aria-label="Loss curve">
            <h2>{ "Loss" }</h2>
            <canvas ref={canvas} width={W.to_string()} height={H.to_string()} role="img"
                data-points={plotted.to_string()}
                aria-label={format!("loss curve: {}", if summary.is_empty() { "no steps yet".to_string() } else { summary.clone() })}></canvas>
            <p class="legend-line">
                <span class="key step">{ "per step" }</span>
                <span class="key ema">{ "smoothed" }</span>
                <span class="key epoch">{ "epoch mean" }</span>
                <span class="hint">{ summary }</span>
            </p>
        </section>
    }
}

fn draw(node: &NodeRef, losses: &[(usize, f32)], epochs: &[f32], spe: usize) {
    let Some((_, ctx)) = context(node) else {
        return;
    };
    ctx.clear_rect(0.0, 0.0, W, H);
    ctx.set_fill_style_str("#ffffff");
    ctx.fill_rect(0.0, 0.0, W, H);
    let finite: Vec<(usize, f32)> = losses
        .iter()
        .copied()
        .filter(|(_, l)| l.is_finite())
        .collect();
    ctx.set_stroke_style_str("#999");
    ctx.set_line_width(1.0);
    ctx.stroke_rect(PAD_L, PAD_T, W - PAD_L - PAD_R, H - PAD_T - PAD_B);
    if finite.is_empty() {
        ctx.set_fill_style_str("#666");
        ctx.set_font("13px sans-serif");
        let _ = ctx.fill_text("no steps yet", PAD_L + 10.0, PAD_T + 20.0);
        return;
    }
    let max_step = finite.iter().map(|(s, _)| *s).max().unwrap_or(1).max(1) as f64;
    // Zoom on the data (the semi-hard loss hovers just under the margin for a long time).
    let max = finite.iter().map(|(_, l)| *l).fold(f32::MIN, f32::max) as f64;
    let min = finite.iter().map(|(_, l)| *l).fold(f32::MAX, f32::min) as f64;
    let pad = ((max - min) * 0.1).max(0.01);
    let (lo, hi) = ((min - pad).max(0.0), max + pad);
    let x = |s: f64| PAD_L + (s / max_step) * (W - PAD_L - PAD_R);
    let y = |v: f64| PAD_T + (1.0 - (v - lo) / (hi - lo)) * (H - PAD_T - PAD_B);
    // Axes labels.
    ctx.set_fill_style_str("#444");
    ctx.set_font("11px sans-serif");
    let _ = ctx.fill_text(&format!("{hi:.2}"), 4.0, PAD_T + 10.0);
    let _ = ctx.fill_text(&format!("{lo:.2}"), 4.0, H - PAD_B);
    let _ = ctx.fill_text(
        &format!("step {}", max_step as usize),
        W - PAD_R - 70.0,
        H - 6.0,
    );
    // Per step.
    let line = |points: &[(usize, f32)], color: &str, width: f64| {
        ctx.set_stroke_style_str(color);
        ctx.set_line_width(width);
        ctx.begin_path();
        for (i, (s, v)) in points.iter().enumerate() {
            let (px, py) = (x(*s as f64), y(*v as f64));
            if i == 0 {
                ctx.move_to(px, py);
            } else {
                ctx.line_to(px, py);
            }
        }
        ctx.stroke();
    };
    line(&finite, "rgba(78,121,167,0.35)", 1.0);
    line(&smooth(&finite), "#4e79a7", 2.0);
    // Epoch means, at the end of each epoch.
    ctx.set_fill_style_str("#e15759");
    for (i, m) in epochs.iter().enumerate() {
        if !m.is_finite() {
            continue;
        }
        let s = ((i + 1) * spe.max(1)) as f64;
        ctx.begin_path();
        let _ = ctx.arc(
            x(s.min(max_step)),
            y(*m as f64),
            4.0,
            0.0,
            std::f64::consts::TAU,
        );
        ctx.fill();
    }
}
