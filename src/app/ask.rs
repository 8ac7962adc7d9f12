//! "Ask the embedding": a drawing pad (mouse, touch and pen, through pointer events; a thick
//! white stroke on black as MNIST's digits are, made MNIST-style by `query::digitize` when the
//! stroke ends) or a test image picked by number, and the answer: the image the net saw, its 8
//! nearest training examples with their labels and cosine similarities, their vote, and where
//! the query lands on the projection (drawn there by the projection panel).

use std::rc::Rc;

use yew::prelude::*;

use crate::page::ask::{canvas_point, picked_test, summary};
use crate::page::state::{QueryView, Shared, class_name};
use tripletlab_core::data::Dataset;
use tripletlab_core::query::digitize::{SIDE, mnist_style};
use tripletlab_protocol::QueryImage;

use super::draw::{context, draw_gray};

/// Props of [`QueryPanel`].
#[derive(Properties, PartialEq)]
pub struct QueryProps {
    /// Test images there are to pick from (0 before the first embeddings).
    pub n_test: usize,
    /// The test set (for a picked image's label).
    pub test: Option<Shared<Dataset>>,
    /// Names for labels 0..=9.
    pub class_names: Rc<Vec<String>>,
    /// A question may be asked (a run has weights).
    pub can_ask: bool,
    /// A question is being answered.
    pub pending: bool,
    /// The latest answer.
    pub answer: Option<Rc<QueryView>>,
    /// Where the query lands on the projection shown, said in words.
    pub placement: Option<String>,
    /// A question.
    pub on_query: Callback<QueryImage>,
}

/// The pad's side in canvas pixels (10 per MNIST pixel) and its stroke width.
const PAD: u32 = 280;
const STROKE: f64 = 22.0;
const THUMB: f64 = 56.0;

/// The panel: the pad, the test image picker, and the answer.
#[function_component(QueryPanel)]
pub fn query_panel(props: &QueryProps) -> Html {
    let seen = use_node_ref();
    let neighbours = use_node_ref();
    let picked = use_state(|| "0".to_string());
    use_answer_drawing(&seen, &neighbours, props.answer.clone());
    let n_test = props.n_test;
    let pick = picked_test(&picked, n_test);
    let pick_error = pick.clone().err().filter(|_| n_test > 0);
    let on_pick_input = {
        let picked = picked.clone();
        Callback::from(move |e: InputEvent| {
            picked.set(
                e.target_unchecked_into::<web_sys::HtmlInputElement>()
                    .value(),
            )
        })
    };
    let on_ask_test = {
        let (on_query, pick) = (props.on_query.clone(), pick.clone().ok());
        Callback::from(move |_: MouseEvent| {
            pick.into_iter()
                .for_each(|n| on_query.emit(QueryImage::Test(n)))
        })
    };
    let on_random = {
        let (on_query, picked) = (props.on_query.clone(), picked.clone());
        Callback::from(move |_: MouseEvent| {
            if n_test > 0 {
                let n = (js_sys::Math::random() * n_test as f64) as u32 % n_test as u32;
                picked.set(n.to_string());
                on_query.emit(QueryImage::Test(n));
            }
        })
    };
    let on_drawn = props.on_query.reform(QueryImage::Drawn);
    let name = |l: u8| class_name(&props.class_names, l.into());
    let summary = summary(props.answer.as_deref(), props.can_ask, name);
    let n_shown = props
        .answer
        .as_ref()
        .map_or(8, |a| a.answer.neighbours.len().max(1));

    html! {
        <section class="query" aria-label="Ask the embedding">
            <h2>{ "Ask the embedding" }</h2>
            <div class="query-row">
                <DrawingPad can_ask={props.can_ask} {on_drawn} />
                <div class="query-side">
                    <label>
                        { "Test image #" }
                        <input type="text" inputmode="numeric" size="5" name="test_image" value={(*picked).clone()}
                            aria-invalid={pick_error.is_some().to_string()} oninput={on_pick_input} />
                    </label>
                    <button type="button" disabled={!props.can_ask || pick.is_err()} onclick={on_ask_test}>{ "Ask" }</button>
                    <button type="button" disabled={!props.can_ask || n_test == 0} onclick={on_random}>{ "Random test image" }</button>
                    { for pick_error.map(|e| html! { <span class="field-error" role="alert">{ e }</span> }) }
                    if props.pending {
                        <p class="hint">{ "Asking…" }</p>
                    }
                    <div class="answer" data-testid="query-answer">
                        <canvas ref={seen} width={THUMB.to_string()} height={THUMB.to_string()}
                            role="img" aria-label="What the net saw (28 × 28)"></canvas>
                        <p>{ summary }</p>
                    </div>
                    <canvas ref={neighbours} class="neighbours" width={(n_shown as f64 * (THUMB + 8.0)).to_string()}
                        height={THUMB.to_string()} role="img" aria-label="Its nearest training examples"></canvas>
                    { for props.answer.iter().map(|a| html! {
                        <ol class="matches" aria-label="Nearest training examples: label · cosine similarity">
                            { for a.answer.neighbours.iter().map(|m| html! {
                                <li>{ format!("{} · {:.3}", name(m.label), m.cosine) }</li>
                            }) }
                        </ol>
                    }) }
                    { for props.placement.iter().map(|p| html! { <p class="hint" data-testid="query-place">{ p.clone() }</p> }) }
                </div>
            </div>
        </section>
    }
}

/// Draws the image the net saw and its neighbours' images whenever the answer changes.
#[hook]
fn use_answer_drawing(seen: &NodeRef, neighbours: &NodeRef, answer: Option<Rc<QueryView>>) {
    let (seen, neighbours) = (seen.clone(), neighbours.clone());
    use_effect_with(answer, move |answer| {
        if let (Some((_, s)), Some((c, n))) = (context(&seen), context(&neighbours)) {
            s.set_fill_style_str("#fff");
            s.fill_rect(0.0, 0.0, THUMB, THUMB);
            n.set_fill_style_str("#fff");
            n.fill_rect(0.0, 0.0, c.width() as f64, c.height() as f64);
            if let Some(a) = answer {
                draw_gray(&s, &a.image, SIDE, SIDE, 0.0, 0.0, THUMB);
                for (k, img) in a.neighbour_images.chunks_exact(SIDE * SIDE).enumerate() {
                    draw_gray(&n, img, SIDE, SIDE, k as f64 * (THUMB + 8.0), 0.0, THUMB);
                }
            }
        }
    });
}

/// Props of [`DrawingPad`].
#[derive(Properties, PartialEq)]
struct DrawingPadProps {
    /// A question may be asked (otherwise a stroke only draws).
    can_ask: bool,
    /// A stroke ended: the pad's ink, MNIST-style.
    on_drawn: Callback<Vec<u8>>,
}

/// The drawing pad (pointer events: mouse, touch and pen) and its Clear button.
#[function_component(DrawingPad)]
fn drawing_pad(props: &DrawingPadProps) -> Html {
    let pad = use_node_ref();
    let drawing = use_state(|| false);
    // A blank pad at first.
    {
        let pad = pad.clone();
        use_effect_with((), move |_| clear(&pad));
    }
    let point = |e: &PointerEvent| -> Option<(f64, f64)> {
        let el: web_sys::HtmlCanvasElement = e.target_dyn_into()?;
        let r = el.get_bounding_client_rect();
        let client = (e.client_x() as f64, e.client_y() as f64);
        canvas_point(
            client,
            (r.left(), r.top(), r.width(), r.height()),
            PAD as f64,
        )
    };
    let onpointerdown = {
        let (pad, drawing) = (pad.clone(), drawing.clone());
        Callback::from(move |e: PointerEvent| {
            e.prevent_default();
            let Some((x, y)) = point(&e) else { return };
            if let Some((el, ctx)) = context(&pad) {
                let _ = el.set_pointer_capture(e.pointer_id());
                ctx.begin_path();
                ctx.move_to(x, y);
                // A dot where the stroke starts (a tap draws one too).
                ctx.line_to(x + 0.01, y);
                ctx.stroke();
            }
            drawing.set(true);
        })
    };
    let onpointermove = {
        let (pad, drawing) = (pad.clone(), drawing.clone());
        Callback::from(move |e: PointerEvent| {
            if let (true, Some((x, y)), Some((_, ctx))) = (*drawing, point(&e), context(&pad)) {
                ctx.line_to(x, y);
                ctx.stroke();
            }
        })
    };
    let stroke_end = {
        let (pad, drawing, on_drawn, can_ask) = (
            pad.clone(),
            drawing.clone(),
            props.on_drawn.clone(),
            props.can_ask,
        );
        Callback::from(move |_: PointerEvent| {
            if *drawing {
                drawing.set(false);
                if can_ask && let Some(image) = ink(&pad) {
                    on_drawn.emit(image);
                }
            }
        })
    };
    let on_clear = {
        let pad = pad.clone();
        Callback::from(move |_: MouseEvent| clear(&pad))
    };
    html! {
        <div class="pad">
            <canvas ref={pad} class="pad-canvas" width={PAD.to_string()} height={PAD.to_string()}
                aria-label="Drawing pad: draw a digit" data-testid="pad"
                {onpointerdown} {onpointermove} onpointerup={stroke_end.clone()} onpointercancel={stroke_end}></canvas>
            <button type="button" onclick={on_clear}>{ "Clear" }</button>
        </div>
    }
}

/// Clears the pad to black and sets the pen.
fn clear(pad: &NodeRef) {
    if let Some((_, ctx)) = context(pad) {
        ctx.set_fill_style_str("#000");
        ctx.fill_rect(0.0, 0.0, PAD as f64, PAD as f64);
        ctx.set_stroke_style_str("#fff");
        ctx.set_line_width(STROKE);
        ctx.set_line_cap("round");
        ctx.set_line_join("round");
    }
}

/// The pad's ink made MNIST-style, if there is any.
fn ink(pad: &NodeRef) -> Option<Vec<u8>> {
    let (_, ctx) = context(pad)?;
    let data = ctx
        .get_image_data(0.0, 0.0, PAD as f64, PAD as f64)
        .ok()?
        .data();
    // White ink on black: the red channel is the ink.
    let red: Vec<u8> = data.iter().step_by(4).copied().collect();
    mnist_style(&red, PAD as usize, PAD as usize)
}
