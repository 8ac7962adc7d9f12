//! The page's pure logic (all targets, tested natively with plain `cargo test`): the settings
//! form and its validation ([`form`]), the UMAP fields ([`layout_form`]), the confusion
//! matrices ([`confusion`]), the triplets panel's words ([`triplets`]), and the one reducer that
//! folds the worker's replies and the user's actions into what the page shows ([`state`]).
//!
//! It knows the protocol's messages and the core's types, but no browser, no DOM and no yew:
//! the components in `app` render a [`state::State`] and dispatch [`state::Action`]s.

pub mod ask;
pub mod confusion;
pub mod form;
pub mod layout_form;
pub mod plot;
pub mod state;
pub mod triplets;
