//! tripletlab, the page: the yew components ([`app`], wasm32 only), the browser work of the
//! page's thread ([`web`], wasm32 only: the bridge to the Web Worker, picked files, downloads,
//! the URL) and the page's pure logic ([`page`]: the settings form, the UMAP fields, the
//! confusion matrices, the triplets panel's words and the one reducer; all targets, tested
//! natively).
//!
//! The page renders and sends [`tripletlab_protocol::Command`]s; the worker
//! (`tripletlab-worker`) owns all the computing and answers with replies. This crate must not
//! know the engine (burn, the trainer): it depends only on `tripletlab-core` and the protocol,
//! so its wasm links no burn, cubecl or kernels.

pub mod page;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod web;
