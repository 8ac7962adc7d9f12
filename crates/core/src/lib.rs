//! tripletlab-core: everything about a run that is plain data and plain arithmetic.
//!
//! It owns the datasets (IDX files, the bundled sets, shuffling and P×K sampling: [`data`]), the
//! evaluation ([`metrics`]), the Embedding Projector's files ([`export`], [`embedding_projector`]), the 2-D
//! layouts ([`projection`]), asking a trained embedding ([`query`]), the raw-pixel baseline
//! ([`baseline`]), image shapes ([`shape`]), the backend names ([`backend`]) and a run's
//! description ([`run`]: its configuration and settings, recipes, the learning-rate schedule, the
//! events a run emits, the mining statistics, the collapse indicator and the triplets panel's
//! selection).
//!
//! It must not know burn or any device, a trainer, a browser, a terminal or a screen: the
//! engine, the worker, the CLI and the page build on it, never the other way round (the
//! workspace's crates enforce that; this crate depends on none of them).

// First: the `names!` macro the modules below use.
#[macro_use]
pub mod names;

pub mod backend;
pub mod baseline;
pub mod data;
pub mod embedding_projector;
pub mod export;
pub mod metrics;
pub mod projection;
pub mod query;
pub mod run;
pub mod shape;
