//! MNIST-format (IDX) datasets and the training input pipeline, one concern per file:
//!
//! * `files`: the four files' roles and names, and the bundled datasets.
//! * `idx`: [`parse_images`] / [`parse_labels`] read the standard MNIST files, gzipped or plain
//!   (gzip is detected by its magic bytes `1f 8b`; anything else must be a valid IDX file).
//!   Absurd headers are rejected before anything is allocated; decompression stops one byte
//!   past what the header describes (so a gzip bomb fails as soon as its output passes the
//!   header's size, with "the file holds more than its header says"), and a header may describe
//!   at most [`MAX_PAYLOAD_BYTES`].
//! * `error`: [`DataError`]; every malformed input is typed, its message names the file
//!   ("train images", …); nothing here panics on bad bytes.
//! * `dataset`: [`Dataset`], [`Split`], and [`load_split`], the one loader shared by the page's
//!   file picker, a `fetch` of the bundled files and the CLI ([`load_dir`], which refuses files
//!   above [`MAX_FILE_BYTES`] before reading them).
//! * `pipeline`: [`epoch_order`] reproduces `tf.data`'s `shuffle(buffer)` (reshuffled every
//!   epoch) with a portable, seeded RNG; [`batches`] is `batch(n)` keeping the final partial
//!   batch.
//! * `sampler`: [`pk_order`], the other way to batch an epoch: `P` classes × `K` examples a
//!   batch, without replacement within the epoch; [`PkEpoch`] says how long such an epoch is and
//!   why it ends.
//!
//! Byte slices only, so the same on native and `wasm32-unknown-unknown`; [`load_dir`] is the
//! one filesystem helper (native). Knows no browser, terminal or device.

mod dataset;
mod error;
mod files;
mod idx;
mod pipeline;
mod sampler;
#[cfg(test)]
mod tests;

pub use dataset::*;
pub use error::*;
pub use files::*;
pub use idx::*;
pub use pipeline::*;
pub use sampler::*;

/// Number of classes; labels must be `0..NUM_CLASSES` (the app's legend has 10 entries).
pub const NUM_CLASSES: usize = 10;
/// Largest payload (pixels or labels, in bytes) a header may describe: 256 MiB. Bigger headers
/// are rejected before any allocation or decompression. This admits full MNIST (60,000 train
/// images: 47 MB) and EMNIST-size sets (240,000 × 784 = 188 MB) and keeps a decompression bomb
/// to a bounded amount of work and memory (a wasm32 page cannot hold a 2 GiB buffer twice).
pub const MAX_PAYLOAD_BYTES: u64 = 256 << 20;
/// Largest file [`load_dir`] reads: the largest payload plus room for an IDX header and gzip's
/// overhead on incompressible data (a few bytes per 16 KiB block).
pub const MAX_FILE_BYTES: u64 = MAX_PAYLOAD_BYTES + (MAX_PAYLOAD_BYTES >> 10);
/// Largest accepted image side in an IDX header; anything above is treated as a corrupt header.
pub const MAX_IMAGE_SIDE: u32 = 4096;

/// IDX magic number of an unsigned-byte, 3-dimensional array (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// IDX magic number of an unsigned-byte, 1-dimensional array (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
