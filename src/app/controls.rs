//! The settings form, the dataset and weights pickers, and Train / Pause / Resume / Stop. A
//! recipe's settings show in a line under its select; the fields it fixes are disabled.

use std::collections::BTreeMap;
use std::rc::Rc;

use web_sys::{File, HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::web::io::input_files;
use tripletlab_core::run::Control;
use tripletlab_core::run::settings::{self, Setting};
use tripletlab_core::run::{LrSchedule, Metric, Mining, Recipe, Sampler};

use crate::page::form::Form;
use crate::page::state::Phase;

/// Props of [`Controls`].
#[derive(Properties, PartialEq)]
pub struct ControlsProps {
    /// The form's raw values.
    pub form: Form,
    /// Messages per field key.
    pub errors: Rc<BTreeMap<String, String>>,
    /// The page's phase.
    pub phase: Phase,
    /// Train is allowed.
    pub can_train: bool,
    /// The user's own files, when loaded.
    pub custom_label: Option<String>,
    /// The last problem with the user's files.
    pub file_error: Option<String>,
    /// The uploaded weights file, when any.
    pub weights_label: Option<String>,
    /// A field changed: `(key, value)`.
    pub on_field: Callback<(String, String)>,
    /// Files picked with "Open IDX files…".
    pub on_files: Callback<Vec<File>>,
    /// A weights file picked.
    pub on_weights_file: Callback<File>,
    /// Train pressed.
    pub on_train: Callback<()>,
    /// Pause / Resume / Stop pressed.
    pub on_control: Callback<Control>,
    /// The largest batch the device trains, once known (stated at the batch field).
    pub batch_max: Option<usize>,
    /// What the P×K fields make of the training set, when they make batches.
    pub pk_note: Option<String>,
}

/// A text field: its setting (key and label) and the placeholder shown when it is empty.
struct Field {
    setting: Setting,
    hint: &'static str,
}

const TEXT_FIELDS: [Field; 11] = [
    Field {
        setting: settings::EPOCHS,
        hint: "",
    },
    Field {
        setting: settings::BATCH,
        hint: "",
    },
    Field {
        setting: settings::LR,
        hint: "",
    },
    Field {
        setting: settings::WARMUP_STEPS,
        hint: "0",
    },
    Field {
        setting: settings::MARGIN,
        hint: "",
    },
    Field {
        setting: settings::PER_CLASS,
        hint: "",
    },
    Field {
        setting: settings::SHUFFLE_BUFFER,
        hint: "0: all",
    },
    Field {
        setting: settings::DROPOUT,
        hint: "",
    },
    Field {
        setting: settings::SEED,
        hint: "",
    },
    Field {
        setting: settings::TRAIN_LIMIT,
        hint: "all",
    },
    Field {
        setting: settings::TEST_LIMIT,
        hint: "all",
    },
];

fn error_of(errors: &BTreeMap<String, String>, key: &str) -> Html {
    match errors.get(key) {
        Some(m) => {
            html! { <p class="field-error" id={format!("{key}-error")} role="alert">{ m.clone() }</p> }
        }
        None => html! {},
    }
}

/// A select's options for names that are their own labels.
fn choices<const N: usize>(names: [&str; N]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| (n.to_string(), n.to_string()))
        .collect()
}

/// The left-hand panel.
#[function_component(Controls)]
pub fn controls(props: &ControlsProps) -> Html {
    let busy = matches!(props.phase, Phase::Training | Phase::Paused);
    let disabled = busy;
    let errors = &props.errors;

    let text_input = |setting: Setting| {
        let f = TEXT_FIELDS
            .iter()
            .find(|f| f.setting == setting)
            .expect("a text field");
        let key = f.setting.key;
        let off = busy || props.form.disabled(key);
        let oninput = {
            let cb = props.on_field.clone();
            Callback::from(move |e: InputEvent| {
                let input: HtmlInputElement = e.target_unchecked_into();
                cb.emit((key.to_string(), input.value()));
            })
        };
        let invalid = errors.contains_key(key);
        html! {
            <div class={classes!("field", invalid.then_some("invalid"))}>
                <label for={format!("f-{key}")}>{ f.setting.label }</label>
                <input
                    id={format!("f-{key}")}
                    name={key}
                    type="text"
                    inputmode="decimal"
                    autocomplete="off"
                    placeholder={f.hint}
                    value={props.form.get(key).to_string()}
                    aria-invalid={if invalid { "true" } else { "false" }}
                    aria-describedby={invalid.then(|| format!("{key}-error"))}
                    disabled={off}
                    {oninput}
                />
                { error_of(errors, key) }
                if let (false, "batch", Some(max)) = (invalid, key, props.batch_max) {
                    <p class="field-note">{ format!("up to {max} on this device") }</p>
                }
            </div>
        }
    };

    let select = |setting: Setting, options: Vec<(String, String)>| {
        let (key, label) = (setting.key, setting.label);
        let onchange = {
            let cb = props.on_field.clone();
            Callback::from(move |e: Event| {
                let select: HtmlSelectElement = e.target_unchecked_into();
                cb.emit((key.to_string(), select.value()));
            })
        };
        let current = props.form.get(key).to_string();
        let invalid = errors.contains_key(key);
        let off = busy || props.form.disabled(key);
        html! {
            <div class={classes!("field", invalid.then_some("invalid"))}>
                <label for={format!("f-{key}")}>{ label }</label>
                <select
                    id={format!("f-{key}")}
                    name={key}
                    aria-invalid={if invalid { "true" } else { "false" }}
                    aria-describedby={invalid.then(|| format!("{key}-error"))}
                    disabled={off}
                    {onchange}
                >
                    { for options.into_iter().map(|(value, text)| {
                        let selected = value == current;
                        html! { <option value={value} selected={selected}>{ text }</option> }
                    }) }
                </select>
                { error_of(errors, key) }
            </div>
        }
    };

    let mut datasets = vec![
        ("mnist".to_string(), "MNIST (bundled 8k / 2k)".to_string()),
        (
            "fashion".to_string(),
            "Fashion-MNIST (bundled 60k / 10k)".to_string(),
        ),
    ];
    if let Some(label) = &props.custom_label {
        datasets.push(("custom".to_string(), format!("Your files: {label}")));
    }
    let metrics = choices(Metric::ALL.map(Metric::as_str));
    let minings = choices(Mining::ALL.map(Mining::as_str));
    let schedules = choices(LrSchedule::ALL.map(LrSchedule::as_str));
    let samplers = choices(Sampler::ALL.map(Sampler::as_str));
    let recipes = choices(Recipe::ALL.map(Recipe::as_str));
    let switch = choices(["off", "on"]);
    // The chosen recipe's settings, in words; the P×K batch the fields make.
    let recipe_note = match props.form.recipe() {
        Some(r) => html! { <p class="hint" data-testid="recipe-settings">{ r.describe() }</p> },
        None => html! {},
    };
    let pk_note = match props.pk_note.clone() {
        Some(note) => html! { <p class="hint" data-testid="pk-note">{ note }</p> },
        None => html! {},
    };

    let on_idx = {
        let cb = props.on_files.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let files = input_files(&input);
            input.set_value("");
            if !files.is_empty() {
                cb.emit(files);
            }
        })
    };
    let on_weights = {
        let cb = props.on_weights_file.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let files = input_files(&input);
            input.set_value("");
            if let Some(f) = files.into_iter().next() {
                cb.emit(f);
            }
        })
    };
    let control = |c: Control| {
        let cb = props.on_control.clone();
        Callback::from(move |_: MouseEvent| cb.emit(c))
    };
    let on_train = {
        let cb = props.on_train.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            cb.emit(());
        })
    };
    let other_errors: Vec<(String, String)> = errors
        .iter()
        .filter(|(k, _)| !crate::page::form::FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    html! {
        <form class="controls" aria-label="Training settings" onsubmit={on_train}>
            <fieldset disabled={disabled}>
                <legend>{ "Data" }</legend>
                { select(settings::DATASET, datasets) }
                <label class="button file">
                    { "Open IDX files…" }
                    <input type="file" multiple=true class="visually-hidden" onchange={on_idx} disabled={busy} />
                </label>
                <p class="hint">{ "Four files: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (.gz or plain)." }</p>
                { match &props.file_error {
                    Some(m) => html! { <p class="field-error" data-testid="file-error" role="alert">{ m.clone() }</p> },
                    None => html! {},
                } }
            </fieldset>
            <fieldset>
                <legend>{ "Training" }</legend>
                { select(settings::RECIPE, recipes) }
                { recipe_note }
                { text_input(settings::EPOCHS) }
                { text_input(settings::BATCH) }
                { text_input(settings::LR) }
                { select(settings::LR_SCHEDULE, schedules) }
                { text_input(settings::WARMUP_STEPS) }
                { text_input(settings::MARGIN) }
                { select(settings::METRIC, metrics) }
                { select(settings::MINING, minings) }
                { select(settings::SOFT, switch.clone()) }
                { select(settings::SAMPLER, samplers) }
                { text_input(settings::PER_CLASS) }
                { pk_note }
                { text_input(settings::SHUFFLE_BUFFER) }
                { text_input(settings::DROPOUT) }
                { text_input(settings::SEED) }
                { text_input(settings::TRAIN_LIMIT) }
                { text_input(settings::TEST_LIMIT) }
                { for other_errors.iter().map(|(k, v)| html! { <p class="field-error" role="alert">{ format!("{k}: {v}") }</p> }) }
                <label class="button file">
                    { "Upload weights…" }
                    <input type="file" accept=".safetensors" class="visually-hidden" onchange={on_weights} disabled={busy} />
                </label>
                { match &props.weights_label {
                    Some(w) => html! { <p class="hint">{ format!("Starts from {w}") }</p> },
                    None => html! {},
                } }
            </fieldset>
            <div class="buttons">
                <button type="submit" class="primary" disabled={!props.can_train}>{ "Train" }</button>
                <button type="button" disabled={props.phase != Phase::Training} onclick={control(Control::Pause)}>{ "Pause" }</button>
                <button type="button" disabled={props.phase != Phase::Paused} onclick={control(Control::Run)}>{ "Resume" }</button>
                <button type="button" disabled={!busy} onclick={control(Control::Stop)}>{ "Stop" }</button>
            </div>
        </form>
    }
}
