//! The "triplets" panel: a few (anchor, positive, chosen negative) triples of a recent batch
//! with their images, distances and what each term adds to the loss, refreshed with each test
//! embedding (a few times an epoch). The words are `page::triplets`'.

use std::rc::Rc;

use yew::prelude::*;

use crate::page::state::class_name;
use crate::page::triplets::{caption, distances, verdict};
use tripletlab_core::run::{Mining, ShownTriplet, TripletSample};

use super::draw::{context, draw_gray};

/// Props of [`TripletsPanel`].
#[derive(Properties, PartialEq)]
pub struct TripletsProps {
    /// The latest sample (none before the first test embedding of a run).
    pub sample: Option<Rc<TripletSample>>,
    /// Names for labels 0..=9.
    pub class_names: Rc<Vec<String>>,
}

/// Side of one image, and the gap between two.
const THUMB: f64 = 56.0;
const GAP: f64 = 10.0;

/// The panel.
#[function_component(TripletsPanel)]
pub fn triplets_panel(props: &TripletsProps) -> Html {
    let body = match &props.sample {
        None => html! {
            <p class="hint">{ "A few triplets of a recent batch show here with each test embedding of a run." }</p>
        },
        Some(s) => html! {
            <>
                <p class="hint" data-testid="triplets-caption">{ caption(s) }</p>
                <ol class="triplets" aria-label="Triplets: anchor, positive, negative">
                    { for s.shown.iter().enumerate().map(|(i, _)| html! {
                        <TripletRow sample={s.clone()} index={i} class_names={props.class_names.clone()} />
                    }) }
                </ol>
            </>
        },
    };
    html! {
        <section class="triplets-panel" aria-label="Triplets">
            <h2>{ "Triplets" }</h2>
            { body }
        </section>
    }
}

/// Props of [`TripletRow`].
#[derive(Properties, PartialEq)]
struct RowProps {
    sample: Rc<TripletSample>,
    index: usize,
    class_names: Rc<Vec<String>>,
}

/// One triplet: its three images side by side, their labels, the distances and the verdict.
#[function_component(TripletRow)]
fn triplet_row(props: &RowProps) -> Html {
    let canvas = use_node_ref();
    let t: &ShownTriplet = &props.sample.shown[props.index];
    {
        let canvas = canvas.clone();
        use_effect_with((props.sample.clone(), props.index), move |(sample, i)| {
            draw(&canvas, &sample.shown[*i]);
        });
    }
    let name = |l: u8| class_name(&props.class_names, l.into());
    let mining: Mining = props.sample.mining;
    let labels = format!(
        "anchor {} (#{}) · positive {} (#{}) · {}",
        name(t.anchor.label),
        t.anchor.index,
        name(t.positive.label),
        t.positive.index,
        t.negative
            .as_ref()
            .map_or("no negative".into(), |n| format!(
                "negative {} (#{})",
                name(n.label),
                n.index
            )),
    );
    html! {
        <li class="triplet" data-kind={format!("{:?}", t.kind)}>
            <canvas ref={canvas} width={(3.0 * THUMB + 2.0 * GAP).to_string()} height={THUMB.to_string()}
                role="img" aria-label={labels.clone()}></canvas>
            <div>
                <p class="triplet-labels">{ labels }</p>
                <p class="triplet-figures">{ format!("{} · {}", distances(t), verdict(t, mining)) }</p>
            </div>
        </li>
    }
}

/// The anchor, the positive and the negative (an empty frame without one).
fn draw(node: &NodeRef, t: &ShownTriplet) {
    let Some((_, ctx)) = context(node) else {
        return;
    };
    ctx.set_fill_style_str("#ffffff");
    ctx.fill_rect(0.0, 0.0, 3.0 * THUMB + 2.0 * GAP, THUMB);
    let side = (t.anchor.image.len() as f64).sqrt() as usize;
    let examples = [Some(&t.anchor), Some(&t.positive), t.negative.as_ref()];
    for (i, e) in examples.iter().enumerate() {
        let x = i as f64 * (THUMB + GAP);
        match e {
            Some(e) => draw_gray(&ctx, &e.image, side, side, x, 0.0, THUMB),
            None => {
                ctx.set_stroke_style_str("#bbb");
                ctx.stroke_rect(x + 0.5, 0.5, THUMB - 1.0, THUMB - 1.0);
            }
        }
    }
}
