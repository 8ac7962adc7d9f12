//! The page's browser work (wasm32 only): the bridge to the worker that owns
//! all the computing ([`tripletlab_worker`]), picked files, downloads and the URL query. The page's
//! thread renders and sends commands; it never trains, evaluates or projects.
//!
//! It knows nothing of the components in `crate::app`, which call into it.

pub mod bridge;
pub mod io;
pub mod url;
