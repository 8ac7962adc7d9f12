//! The net's input and output sizes: what the data pipeline, the page and the engines all agree
//! on. Plain constants, no device.

/// Input image side (the net is fixed at 28×28×1, as in the notebook).
pub const IMAGE_SIDE: usize = 28;
/// Pixels per image.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Output embedding width.
pub const EMBEDDING_DIM: usize = 256;
