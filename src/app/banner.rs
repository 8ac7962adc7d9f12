//! Messages above the page: the CPU fallback, load and training errors, notes.

use std::rc::Rc;

use yew::prelude::*;

use crate::page::state::{Level, Notice};

/// Props of [`Banner`].
#[derive(Properties, PartialEq)]
pub struct BannerProps {
    /// The messages, oldest first.
    pub notices: Rc<Vec<Notice>>,
    /// Close message `i`.
    pub on_dismiss: Callback<usize>,
}

/// The list of banner messages.
#[function_component(Banner)]
pub fn banner(props: &BannerProps) -> Html {
    html! {
        <div class="banners">
            { for props.notices.iter().enumerate().map(|(i, n)| {
                let (class, role) = match n.level {
                    Level::Error => ("banner error", "alert"),
                    Level::Warning => ("banner warning", "status"),
                    Level::Info => ("banner info", "status"),
                };
                let dismiss = {
                    let cb = props.on_dismiss.clone();
                    Callback::from(move |_| cb.emit(i))
                };
                html! {
                    <div class={class} role={role}>
                        <span>{ n.text.clone() }</span>
                        <button class="dismiss" aria-label="Dismiss message" onclick={dismiss}>{ "×" }</button>
                    </div>
                }
            }) }
        </div>
    }
}
