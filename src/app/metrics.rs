//! Per-epoch metrics (kNN-1, precision@1, MAP@R from the core's `metrics` module).

use std::rc::Rc;

use yew::prelude::*;

use crate::metrics::Metrics;

use crate::page::state::EpochRow;

/// Props of [`MetricsTable`].
#[derive(Properties, PartialEq)]
pub struct MetricsProps {
    /// One row per finished epoch.
    pub rows: Rc<Vec<EpochRow>>,
    /// The final metrics (kNN against the training set).
    pub final_metrics: Option<Rc<Metrics>>,
}

fn opt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.4}"))
}

/// The table.
#[function_component(MetricsTable)]
pub fn metrics_table(props: &MetricsProps) -> Html {
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
                </tbody>
            </table>
            <p class="hint">{ "kNN-1/kNN-5: cosine nearest neighbours in the training set (after the run). P@1, MAP@R: within the test set." }</p>
        </section>
    }
}
