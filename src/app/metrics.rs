//! Per-epoch metrics (kNN-1, precision@1, MAP@R from the core's `metrics` module), and beside
//! the final ones what the raw pixels score with the same sets: what training added.

use std::rc::Rc;

use yew::prelude::*;

use tripletlab_core::metrics::Metrics;

use crate::page::state::EpochRow;

/// Props of [`MetricsTable`].
#[derive(Properties, PartialEq)]
pub struct MetricsProps {
    /// One row per finished epoch.
    pub rows: Rc<Vec<EpochRow>>,
    /// The final metrics (kNN against the training set).
    pub final_metrics: Option<Rc<Metrics>>,
    /// The raw pixels' scores on the same sets, or why there are none.
    pub raw_pixels: Option<Result<Rc<Metrics>, String>>,
}

fn opt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.4}"))
}

/// The line under the table that says what training added over the raw pixels.
fn added(final_metrics: Option<&Metrics>, raw: Option<&Result<Rc<Metrics>, String>>) -> String {
    match (final_metrics.and_then(|m| m.knn1_acc), raw) {
        (Some(_), None) => "Raw pixels: computing their kNN-1 with the same sets…".into(),
        (Some(learnt), Some(Ok(raw))) => match raw.knn1_acc {
            Some(r) => format!(
                "Training added {:+.4} kNN-1 over the raw pixels ({r:.4} → {learnt:.4}): {:.0}% of the raw pixels' errors are gone.",
                learnt - r,
                if r < 1.0 {
                    (learnt - r) / (1.0 - r) * 100.0
                } else {
                    0.0
                }
            ),
            None => String::new(),
        },
        (Some(_), Some(Err(why))) => format!("Raw pixels: {why}."),
        _ => String::new(),
    }
}

/// The table.
#[function_component(MetricsTable)]
pub fn metrics_table(props: &MetricsProps) -> Html {
    let raw = props.raw_pixels.as_ref().and_then(|r| r.as_ref().ok());
    html! {
        <section class="metrics" aria-label="Metrics">
            <h2>{ "Metrics (test set)" }</h2>
            <table>
                <thead>
                    <tr>
                        <th scope="col">{ "epoch" }</th>
                        <th scope="col">{ "loss" }</th>
                        <th scope="col">{ "kNN-1" }</th>
                        <th scope="col">{ "kNN-5" }</th>
                        <th scope="col">{ "P@1" }</th>
                        <th scope="col">{ "MAP@R" }</th>
                    </tr>
                </thead>
                <tbody>
                    { for props.rows.iter().map(|r| html! {
                        <tr>
                            <td>{ r.epoch }</td>
                            <td>{ format!("{:.4}", r.mean_loss) }</td>
                            <td>{ opt(r.metrics.knn1_acc.map(f64::from)) }</td>
                            <td>{ opt(r.metrics.knn5_acc.map(f64::from)) }</td>
                            <td>{ format!("{:.4}", r.metrics.precision_at_1) }</td>
                            <td>{ format!("{:.4}", r.metrics.map_at_r) }</td>
                        </tr>
                    }) }
                    { match &props.final_metrics {
                        Some(m) => html! {
                            <tr class="final">
                                <td>{ "final" }</td>
                                <td></td>
                                <td>{ opt(m.knn1_acc.map(f64::from)) }</td>
                                <td>{ opt(m.knn5_acc.map(f64::from)) }</td>
                                <td>{ format!("{:.4}", m.precision_at_1) }</td>
                                <td>{ format!("{:.4}", m.map_at_r) }</td>
                            </tr>
                        },
                        None => html! {},
                    } }
                    { match raw {
                        Some(m) => html! {
                            <tr class="raw" title="cosine on pixels / 255, the same training and test images: no learning">
                                <td>{ "raw pixels" }</td>
                                <td></td>
                                <td>{ opt(m.knn1_acc) }</td>
                                <td>{ opt(m.knn5_acc) }</td>
                                <td>{ format!("{:.4}", m.precision_at_1) }</td>
                                <td>{ format!("{:.4}", m.map_at_r) }</td>
                            </tr>
                        },
                        None => html! {},
                    } }
                </tbody>
            </table>
            <p class="added" data-testid="raw-pixels">{ added(props.final_metrics.as_deref(), props.raw_pixels.as_ref()) }</p>
            <p class="hint">{ "kNN-1/kNN-5: cosine nearest neighbours in the training set (after the run). P@1, MAP@R: within the test set." }</p>
        </section>
    }
}
