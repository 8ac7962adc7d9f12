//! The mining, step by step: of the loss's terms (the ordered positive pairs; the anchors for
//! batch-hard), the share whose negative was semi-hard (for batch-hard: in order), the share that
//! fell back to the farthest negative (violated), and the share still active (term > 0), on the
//! left axis; the mean anchor-positive and chosen anchor-negative distances on the right. Each
//! smoothed like the loss (per-step values faint), with the test embedding's collapse indicator
//! per epoch under it.

use std::rc::Rc;

use yew::prelude::*;

use tripletlab_core::run::{EpochFigures, Mining, MiningStats, kind_names};

use super::draw::{context, smooth};

/// Props of [`MiningChart`].
#[derive(Properties, PartialEq)]
pub struct MiningChartProps {
    /// `(global_step, statistics)` per trained step.
    pub steps: Rc<Vec<(usize, MiningStats)>>,
    /// Per finished epoch: its statistics added up and the collapse indicator.
    pub epochs: Rc<Vec<EpochFigures>>,
    /// How the run mines (names the shares).
    pub mining: Mining,
}

const W: f64 = 520.0;
const H: f64 = 240.0;
const PAD_L: f64 = 40.0;
const PAD_R: f64 = 40.0;
const PAD_T: f64 = 10.0;
const PAD_B: f64 = 24.0;

/// The series: name, colour, which axis (`false`: shares, `true`: distances), value.
type Series = (&'static str, &'static str, bool, fn(&MiningStats) -> f64);

fn series(mining: Mining) -> [Series; 5] {
    let (farther, not_farther) = kind_names(mining);
    [
        (farther, "#59a14f", false, MiningStats::semi_hard_fraction),
        (
            not_farther,
            "#e15759",
            false,
            MiningStats::fallback_fraction,
        ),
        ("active", "#f28e2b", false, MiningStats::active_fraction),
        ("d(a,p)", "#4e79a7", true, MiningStats::mean_d_ap),
        ("d(a,n)", "#b07aa1", true, MiningStats::mean_d_an),
    ]
}

/// The chart.
#[function_component(MiningChart)]
pub fn mining_chart(props: &MiningChartProps) -> Html {
    let canvas = use_node_ref();
    {
        let canvas = canvas.clone();
        let steps = props.steps.clone();
        let mining = props.mining;
        use_effect_with((props.steps.clone(), mining), move |_| {
            draw(&canvas, &steps, mining);
        });
    }
    let all = series(props.mining);
    let latest: Vec<String> = all
        .iter()
        .map(|(name, _, distance, value)| {
            let points: Vec<(usize, f32)> = props
                .steps
                .iter()
                .map(|(s, m)| (*s, value(m) as f32))
                .collect();
            match smooth(&points).last() {
                Some((_, v)) if *distance => format!("{name} {v:.3}"),
                Some((_, v)) => format!("{name} {:.1}%", v * 100.0),
                None => format!("{name} –"),
            }
        })
        .collect();
    let collapse: Vec<Html> = props
        .epochs
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let c = &f.collapse;
            html! {
                <li class={classes!(c.collapsing.then_some("collapsing"))}>
                    { format!("epoch {}: mean cosine {:.3}, spread {:.3}{}", i + 1, c.mean_cosine, c.spread,
                        if c.collapsing { " — collapsing" } else { "" }) }
                </li>
            }
        })
        .collect();
    html! {
        <section class="chart mining" aria-label="Mining">
            <h2>{ "Mining" }</h2>
            <canvas ref={canvas} width={W.to_string()} height={H.to_string()} role="img"
                data-points={props.steps.len().to_string()}
                aria-label={format!("mining statistics per step: {}", latest.join(", "))}></canvas>
            <p class="legend-line">
                { for all.iter().map(|(name, color, distance, _)| html! {
                    <span class={classes!("key", format!("mine-{}", color.trim_start_matches('#')))}>
                        { format!("{name}{}", if *distance { " (right)" } else { "" }) }
                    </span>
                }) }
            </p>
            <p class="hint" data-testid="mining-latest">{ if props.steps.is_empty() { "no steps yet".to_string() } else { format!("smoothed: {}", latest.join(" · ")) } }</p>
            <ul class="collapse" aria-label="Collapse indicator of the test embeddings, per epoch">{ for collapse }</ul>
        </section>
    }
}

fn draw(node: &NodeRef, steps: &[(usize, MiningStats)], mining: Mining) {
    let Some((_, ctx)) = context(node) else {
        return;
    };
    ctx.set_fill_style_str("#ffffff");
    ctx.fill_rect(0.0, 0.0, W, H);
    ctx.set_stroke_style_str("#999");
    ctx.set_line_width(1.0);
    ctx.stroke_rect(PAD_L, PAD_T, W - PAD_L - PAD_R, H - PAD_T - PAD_B);
    if steps.is_empty() {
        ctx.set_fill_style_str("#666");
        ctx.set_font("13px sans-serif");
        let _ = ctx.fill_text("no steps yet", PAD_L + 10.0, PAD_T + 20.0);
        return;
    }
    let max_step = steps.iter().map(|(s, _)| *s).max().unwrap_or(1).max(1) as f64;
    let all = series(mining);
    let d_max = steps
        .iter()
        .flat_map(|(_, m)| [m.mean_d_ap(), m.mean_d_an()])
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-6)
        * 1.05;
    let x = |s: f64| PAD_L + (s / max_step) * (W - PAD_L - PAD_R);
    let y = |v: f64, top: f64| PAD_T + (1.0 - v / top) * (H - PAD_T - PAD_B);
    ctx.set_fill_style_str("#444");
    ctx.set_font("11px sans-serif");
    let _ = ctx.fill_text("100%", 4.0, PAD_T + 10.0);
    let _ = ctx.fill_text("0%", 4.0, H - PAD_B);
    let _ = ctx.fill_text(&format!("{d_max:.2}"), W - PAD_R + 4.0, PAD_T + 10.0);
    let _ = ctx.fill_text("0", W - PAD_R + 4.0, H - PAD_B);
    let _ = ctx.fill_text(
        &format!("step {}", max_step as usize),
        W - PAD_R - 70.0,
        H - 6.0,
    );
    for (_, color, distance, value) in all {
        let top = if distance { d_max } else { 1.0 };
        let points: Vec<(usize, f32)> = steps
            .iter()
            .map(|(s, m)| (*s, value(m) as f32))
            .filter(|(_, v)| v.is_finite())
            .collect();
        for (line, width, alpha) in [(points.clone(), 1.0, 0.25), (smooth(&points), 2.0, 1.0)] {
            ctx.set_global_alpha(alpha);
            ctx.set_stroke_style_str(color);
            ctx.set_line_width(width);
            ctx.begin_path();
            for (i, (s, v)) in line.iter().enumerate() {
                let (px, py) = (x(*s as f64), y(f64::from(*v), top));
                if i == 0 {
                    ctx.move_to(px, py);
                } else {
                    ctx.line_to(px, py);
                }
            }
            ctx.stroke();
        }
    }
    ctx.set_global_alpha(1.0);
}
