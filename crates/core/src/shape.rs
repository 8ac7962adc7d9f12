//! The net's input and output sizes: what the data pipeline, the page and the engines all agree
//! on; and [`ShapeError`], what can be wrong with a buffer of rows. Plain data, no device.

/// Input image side (the net is fixed at 28×28×1, as in the notebook).
pub const IMAGE_SIDE: usize = 28;
/// Pixels per image.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Output embedding width.
pub const EMBEDDING_DIM: usize = 256;

/// What can be wrong with a row-major buffer of `dim` values per row: the one shape error of the
/// slice-based modules (`export`, `metrics`, `projection`), which wrap it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// A row length of zero was given.
    #[error("embedding dimension must be at least 1")]
    ZeroDim,
    /// The buffer does not hold a whole number of rows.
    #[error("data length {len} is not a multiple of the embedding dimension {dim}")]
    RaggedData {
        /// Length of the flat buffer.
        len: usize,
        /// Requested row length.
        dim: usize,
    },
    /// A value is NaN or infinite.
    #[error("value at row {row}, column {col} is not finite")]
    NonFinite {
        /// 0-based row.
        row: usize,
        /// 0-based column.
        col: usize,
    },
}

/// The number of rows of `len` values cut in rows of `dim`.
pub fn rows_of(len: usize, dim: usize) -> Result<usize, ShapeError> {
    if dim == 0 {
        return Err(ShapeError::ZeroDim);
    }
    if !len.is_multiple_of(dim) {
        return Err(ShapeError::RaggedData { len, dim });
    }
    Ok(len / dim)
}

/// The number of rows of `data`, every value finite.
pub fn finite_rows(data: &[f32], dim: usize) -> Result<usize, ShapeError> {
    let rows = rows_of(data.len(), dim)?;
    match data.iter().position(|x| !x.is_finite()) {
        Some(pos) => Err(ShapeError::NonFinite {
            row: pos / dim,
            col: pos % dim,
        }),
        None => Ok(rows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked_once_for_every_module() {
        assert_eq!(rows_of(6, 3), Ok(2));
        assert_eq!(rows_of(0, 3), Ok(0));
        assert_eq!(rows_of(6, 0), Err(ShapeError::ZeroDim));
        assert_eq!(
            rows_of(7, 3),
            Err(ShapeError::RaggedData { len: 7, dim: 3 })
        );
        assert_eq!(
            finite_rows(&[1.0, 2.0, f32::NAN, 4.0], 2),
            Err(ShapeError::NonFinite { row: 1, col: 0 })
        );
        assert_eq!(finite_rows(&[1.0, 2.0], 2), Ok(1));
    }
}
