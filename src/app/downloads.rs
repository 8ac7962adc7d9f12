//! The downloads: vecs.tsv, meta.tsv, the weights, the Projector bundle (from the worker) and
//! the projection on screen as projection.tsv (from the page).

use yew::prelude::*;

use tripletlab_protocol::Export as What;

/// Props of [`Downloads`].
#[derive(Properties, PartialEq)]
pub struct DownloadsProps {
    /// Embeddings exist.
    pub can_download: bool,
    /// The finished run's weights can be read.
    pub can_weights: bool,
    /// Which embeddings the TSV files hold.
    pub embeddings_note: Option<String>,
    /// A projection is on screen.
    pub can_layout: bool,
    /// A button pressed.
    pub on_download: Callback<What>,
    /// "Download projection.tsv" pressed.
    pub on_layout: Callback<()>,
}

/// The downloads panel.
#[function_component(Downloads)]
pub fn downloads(props: &DownloadsProps) -> Html {
    let click = |w: What| {
        let cb = props.on_download.clone();
        Callback::from(move |_: MouseEvent| cb.emit(w))
    };
    let layout = {
        let cb = props.on_layout.clone();
        Callback::from(move |_: MouseEvent| cb.emit(()))
    };
    html! {
        <section class="downloads" aria-label="Downloads">
            <h2>{ "Downloads" }</h2>
            <div class="buttons">
                <button type="button" disabled={!props.can_download} onclick={click(What::Vecs)}>{ "Download vecs.tsv" }</button>
                <button type="button" disabled={!props.can_download} onclick={click(What::Meta)}>{ "Download meta.tsv" }</button>
                <button type="button" disabled={!props.can_weights} onclick={click(What::Weights)}>{ "Download weights" }</button>
                <button type="button" disabled={!props.can_download} onclick={click(What::Projector)}>{ "Download for the Projector" }</button>
                <button type="button" disabled={!props.can_layout} onclick={layout}>{ "Download projection.tsv" }</button>
            </div>
            <p class="hint">
                { props.embeddings_note.clone().unwrap_or_else(|| "Available when a run is paused, stopped or done.".into()) }
            </p>
            <p class="hint">{ "Load vecs.tsv and meta.tsv into projector.tensorflow.org (Load → choose each file). projector.zip adds the images as a sprite sheet and a config; its README says how to open them." }</p>
        </section>
    }
}
