//! 2-D projections of embeddings for display: PCA (instant, deterministic), Barnes-Hut t-SNE
//! and UMAP (both incremental, so a browser can show progress), and the trustworthiness that
//! measures how faithful a layout is.
//!
//! Each takes a row-major `&[f32]` buffer with `dim` values per row and return
//! one `[x, y]` pair per row.

mod affinities;
mod eigen;
mod fuzzy;
mod job;
mod neighbours;
mod pca;
mod quadtree;
#[cfg(test)]
mod tests;
mod trust;
mod tsne;
mod umap;
#[cfg(test)]
mod umap_tests;

use affinities::*;
pub use fuzzy::fit_ab;
pub use job::*;
pub use pca::*;
use quadtree::*;
pub use trust::trustworthiness;
pub use tsne::*;
pub use umap::*;

use crate::shape::{ShapeError, finite_rows};

/// A 2-D projection method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// [`pca_2d`].
    Pca,
    /// [`Tsne`].
    Tsne,
    /// [`Umap`].
    Umap,
}

names!(Method, "projection method", {
    Pca => "pca",
    Tsne => "tsne" | "t-sne",
    Umap => "umap",
});

/// Errors from the projection functions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjectionError {
    /// The buffer is not a whole number of finite rows.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// t-SNE needs at least two points.
    #[error("t-SNE needs at least 2 points, got {n}")]
    TooFewPoints {
        /// Number of rows given.
        n: usize,
    },
    /// The perplexity must be below the number of points.
    #[error("perplexity {perplexity} must be smaller than the number of points ({n})")]
    PerplexityTooLarge {
        /// Requested perplexity.
        perplexity: f32,
        /// Number of points.
        n: usize,
    },
    /// A parameter (of [`TsneParams`], [`UmapParams`] or [`trustworthiness`]) is out of range.
    #[error("parameter `{name}` = {value} is invalid: it must be {expected}")]
    InvalidParam {
        /// Which parameter.
        name: &'static str,
        /// Given value.
        value: f64,
        /// What is allowed.
        expected: &'static str,
    },
}

/// Checks the buffer shape and values; returns the number of rows.
fn check_data(data: &[f32], dim: usize) -> Result<usize, ProjectionError> {
    Ok(finite_rows(data, dim)?)
}
