//! The settings form, the dataset and weights pickers, and Train / Pause / Resume / Stop. The
//! training fields are made from the table of settings (`FORM_SETTINGS`, in form order): a
//! select for names and switches, a text field for numbers. A recipe's settings show in a line
//! under its select; the fields it fixes are disabled.

use std::collections::BTreeMap;
use std::rc::Rc;

use web_sys::{File, HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::page::form::{FIELDS, FORM_SETTINGS, Form};
use crate::page::state::Phase;
use crate::web::io::input_files;
use tripletlab_core::run::settings::{self, Kind, Setting};
use tripletlab_core::run::{Control, Recipe};

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

/// The placeholder of a text field left empty (what empty means), by key.
fn placeholder(key: &str) -> &'static str {
    match key {
        k if k == settings::WARMUP_STEPS.key => "0",
        k if k == settings::SHUFFLE_BUFFER.key => "0: all",
        k if k == settings::TRAIN_LIMIT.key || k == settings::TEST_LIMIT.key => "all",
        _ => "",
    }
}

/// A select's options (value, text).
fn options(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| (n.to_string(), n.to_string()))
        .collect()
}

/// The dataset's options: the bundled sets and, once loaded, the user's files.
fn datasets(custom_label: Option<&str>) -> Vec<(String, String)> {
    let mut out = vec![
        ("mnist".to_string(), "MNIST (bundled 8k / 2k)".to_string()),
        (
            "fashion".to_string(),
            "Fashion-MNIST (bundled 60k / 10k)".to_string(),
        ),
    ];
    if let Some(label) = custom_label {
        out.push(("custom".to_string(), format!("Your files: {label}")));
    }
    out
}

/// A file input's change: the picked files, the input cleared so that picking the same files
/// again fires again.
fn picked(e: &Event) -> Vec<File> {
    let input: HtmlInputElement = e.target_unchecked_into();
    let files = input_files(&input);
    input.set_value("");
    files
}

/// The left-hand panel.
#[function_component(Controls)]
pub fn controls(props: &ControlsProps) -> Html {
    let busy = matches!(props.phase, Phase::Training | Phase::Paused);
    let training = FORM_SETTINGS
        .into_iter()
        .filter(|s| *s != settings::DATASET)
        .map(|s| training_field(props, s, busy));
    // Messages that belong to no field (shown above the buttons).
    let other_errors = props
        .errors
        .iter()
        .filter(|(k, _)| !FIELDS.contains(&k.as_str()));
    let on_idx = {
        let cb = props.on_files.clone();
        Callback::from(move |e: Event| {
            let files = picked(&e);
            if !files.is_empty() {
                cb.emit(files);
            }
        })
    };
    let on_weights = {
        let cb = props.on_weights_file.clone();
        Callback::from(move |e: Event| {
            if let Some(file) = picked(&e).into_iter().next() {
                cb.emit(file);
            }
        })
    };
    let on_train = props.on_train.reform(|e: SubmitEvent| e.prevent_default());

    html! {
        <form class="controls" aria-label="Training settings" onsubmit={on_train}>
            <fieldset disabled={busy}>
                <legend>{ "Data" }</legend>
                { field(props, settings::DATASET, Some(datasets(props.custom_label.as_deref())), busy) }
                <label class="button file">
                    { "Open IDX files…" }
                    <input type="file" multiple=true class="visually-hidden" onchange={on_idx} disabled={busy} />
                </label>
                <p class="hint">{ "Four files: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (.gz or plain)." }</p>
                { for props.file_error.iter().map(|m| html! { <p class="field-error" data-testid="file-error" role="alert">{ m.clone() }</p> }) }
            </fieldset>
            <fieldset>
                <legend>{ "Training" }</legend>
                { for training }
                { for other_errors.map(|(k, v)| html! { <p class="field-error" role="alert">{ format!("{k}: {v}") }</p> }) }
                <label class="button file">
                    { "Upload weights…" }
                    <input type="file" accept=".safetensors" class="visually-hidden" onchange={on_weights} disabled={busy} />
                </label>
                { for props.weights_label.iter().map(|w| html! { <p class="hint">{ format!("Starts from {w}") }</p> }) }
            </fieldset>
            <RunButtons phase={props.phase} can_train={props.can_train} on_control={props.on_control.clone()} />
        </form>
    }
}

/// A setting's field, with the device's batch limit under the batch.
fn field(
    props: &ControlsProps,
    setting: Setting,
    choices: Option<Vec<(String, String)>>,
    busy: bool,
) -> Html {
    let key = setting.key;
    let note = (setting == settings::BATCH)
        .then(|| {
            props
                .batch_max
                .map(|max| format!("up to {max} on this device"))
        })
        .flatten();
    html! {
        <SettingField {setting} {choices} value={props.form.get(key).to_string()}
            error={props.errors.get(key).cloned()} {note}
            disabled={busy || props.form.disabled(key)} on_field={props.on_field.clone()} />
    }
}

/// A training setting's field by its kind (a select for names and switches, else text); the
/// recipe's words under the recipe, the P×K batch the fields make under K.
fn training_field(props: &ControlsProps, s: Setting, busy: bool) -> Html {
    let choices = match s.value.map(|v| v.kind) {
        _ if s == settings::RECIPE => Some(options(&Recipe::NAMES)),
        Some(Kind::Choice(names)) => Some(options(names)),
        Some(Kind::Switch) => Some(options(&["off", "on"])),
        _ => None,
    };
    let hint = match s {
        _ if s == settings::RECIPE => props
            .form
            .recipe()
            .map(|r| ("recipe-settings", r.describe())),
        _ if s == settings::PER_CLASS => props.pk_note.clone().map(|n| ("pk-note", n)),
        _ => None,
    };
    html! {
        <>
            { field(props, s, choices, busy) }
            { for hint.map(|(id, text)| html! { <p class="hint" data-testid={id}>{ text }</p> }) }
        </>
    }
}

/// Props of [`SettingField`].
#[derive(Properties, PartialEq)]
struct SettingFieldProps {
    setting: Setting,
    /// A select's options; `None`: a text field.
    choices: Option<Vec<(String, String)>>,
    value: String,
    error: Option<String>,
    /// A line under a valid field.
    note: Option<String>,
    disabled: bool,
    on_field: Callback<(String, String)>,
}

/// One setting's field: its label, a select or a text input, and its error (or note).
#[function_component(SettingField)]
fn setting_field(props: &SettingFieldProps) -> Html {
    let key = props.setting.key;
    let id = format!("f-{key}");
    let invalid = props.error.is_some();
    let aria_invalid = if invalid { "true" } else { "false" };
    let described = invalid.then(|| format!("{key}-error"));
    let emit = {
        let cb = props.on_field.clone();
        move |value: String| cb.emit((key.to_string(), value))
    };
    let input = match &props.choices {
        Some(choices) => {
            let emit = emit.clone();
            let onchange = Callback::from(move |e: Event| {
                emit(e.target_unchecked_into::<HtmlSelectElement>().value())
            });
            html! {
                <select id={id.clone()} name={key} aria-invalid={aria_invalid} aria-describedby={described}
                    disabled={props.disabled} {onchange}>
                    { for choices.iter().map(|(value, text)| html! {
                        <option value={value.clone()} selected={*value == props.value}>{ text.clone() }</option>
                    }) }
                </select>
            }
        }
        None => {
            let oninput = Callback::from(move |e: InputEvent| {
                emit(e.target_unchecked_into::<HtmlInputElement>().value())
            });
            html! {
                <input id={id.clone()} name={key} type="text" inputmode="decimal" autocomplete="off"
                    placeholder={placeholder(key)} value={props.value.clone()} aria-invalid={aria_invalid}
                    aria-describedby={described} disabled={props.disabled} {oninput} />
            }
        }
    };
    html! {
        <div class={classes!("field", invalid.then_some("invalid"))}>
            <label for={id}>{ props.setting.label }</label>
            { input }
            { for props.error.iter().map(|m| html! { <p class="field-error" id={format!("{key}-error")} role="alert">{ m.clone() }</p> }) }
            if let (false, Some(note)) = (invalid, &props.note) {
                <p class="field-note">{ note.clone() }</p>
            }
        </div>
    }
}

/// Props of [`RunButtons`].
#[derive(Properties, PartialEq)]
struct RunButtonsProps {
    phase: Phase,
    can_train: bool,
    on_control: Callback<Control>,
}

/// Train (the form's submit), Pause, Resume and Stop, each enabled in its phases.
#[function_component(RunButtons)]
fn run_buttons(props: &RunButtonsProps) -> Html {
    let busy = matches!(props.phase, Phase::Training | Phase::Paused);
    let control = |c: Control| props.on_control.reform(move |_: MouseEvent| c);
    html! {
        <div class="buttons">
            <button type="submit" class="primary" disabled={!props.can_train}>{ "Train" }</button>
            <button type="button" disabled={props.phase != Phase::Training} onclick={control(Control::Pause)}>{ "Pause" }</button>
            <button type="button" disabled={props.phase != Phase::Paused} onclick={control(Control::Run)}>{ "Resume" }</button>
            <button type="button" disabled={!busy} onclick={control(Control::Stop)}>{ "Stop" }</button>
        </div>
    }
}
