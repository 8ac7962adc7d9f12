//! The notebook's net on a wgpu / WebGPU device as hand-written WGSL kernels: forward pass,
//! backward pass and Adam, launched on burn's own device and buffers (burn's `template`
//! extension), so the loss between them stays burn's TFA-exact code and nothing is read back.
//!
//! It is the GPU twin of [`crate::fused`] (same layouts, dropout masks, first-maximum pooling
//! and Adam), tested against it: same embeddings, gradients and updates to float rounding
//! (`tests/wgpu_backend.rs` runs both on Mesa's lavapipe). burn's generic kernels (tiled
//! matmuls with workgroup barriers, dozens of small element-wise passes under autodiff) are what
//! a step cost before; here a step is eleven dispatches plus the loss:
//!
//! * forward — `stage1` (conv1 at the four offsets of each pooling window, first maximum, bias,
//!   relu, dropout, into conv2's zero-padded 15×15 grid; one thread per value), `stage2` (conv2
//!   over the grid at the four offsets, pooling, bias, relu, dropout; one thread per pooled
//!   output: conv2's full-resolution output is never stored), `dense`, `normalize`;
//! * backward — `norm_back`, `dense_back_input` (gated by stage 2), `dense_back_weight`,
//!   `conv2_back_weight` and `conv2_back_input` (summing only the winning positions of each
//!   pooling window), `conv1_back`;
//! * `adam` over all weights at once; it leaves them untouched when the loss is not finite.
//!
//! Between the passes, the loss (`loss`: TFA's semi-hard or batch-hard loss, its gradient and
//! the mining statistics) is four more kernels (three for batch-hard), so a training step
//! ([`GpuNet::train_step`]) is 15 launches, all recorded after the step's uploads: one submit.
//!
//! Every kernel is a `run(id)` called from one shared entry point (`ENTRY`), one thread per
//! output value (or four) with no workgroup memory or barriers, each
//! output summed by one thread in a fixed order, so results are deterministic. The weights, the
//!
//! `kernels`: the WGSL sources, their bindings and their launch; `net`: the net's buffers and
//! passes ([`GpuNet`]); `loss`: the loss's kernels ([`triplet_loss`]). This module: the
//! engine's batch limit on a device.

mod kernels;
mod loss;
mod net;

pub use loss::{LossSettings, triplet_loss};
pub use net::*;

use burn::prelude::*;

use crate::model::{CONV1, GRID1_CELLS, PARAM_SIZES};

/// Weights in all.
const PARAMS: usize = {
    let mut total = 0;
    let mut i = 0;
    while i < PARAM_SIZES.len() {
        total += PARAM_SIZES[i];
        i += 1;
    }
    total
};
/// Images per forward pass when embedding a whole set (bounds the work buffers: ≈ 8 MB).
pub const EMBED_PIECE: usize = 128;
/// Bytes per image of the engine's largest buffer, conv2's zero-padded input grid (`a1`):
/// a batch's buffer must fit in one storage binding of the device.
const LARGEST_BYTES_PER_IMAGE: u64 = (GRID1_CELLS * CONV1 * 4) as u64;
/// The largest batch whose buffers fit in `max_buffer_bytes` (the device's largest storage
/// binding and buffer), at most [`tripletlab_core::run::MAX_BATCH`]: 2,330 in the 128 MiB that
/// WebGPU guarantees, every batch the settings allow in 1 GiB.
pub fn max_batch_for(max_buffer_bytes: u64) -> usize {
    usize::try_from(max_buffer_bytes / LARGEST_BYTES_PER_IMAGE)
        .unwrap_or(usize::MAX)
        .min(tripletlab_core::run::MAX_BATCH)
}

/// The WGSL engine's largest batch on `device` (see [`max_batch_for`]); `None` when it is not
/// a wgpu / WebGPU device.
pub fn max_batch(device: &Device) -> Option<usize> {
    let probe = net::buffer(Tensor::<1>::zeros([1], device)).ok()?;
    Some(max_batch_for(
        probe.client.properties().memory.max_page_size,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_limit_follows_the_device_s_largest_binding() {
        // WebGPU's guaranteed 128 MiB: conv2's input grid (57,600 bytes an image) of 2,330.
        assert_eq!(LARGEST_BYTES_PER_IMAGE, 57_600);
        assert_eq!(max_batch_for(128 << 20), 2_330);
        // SwiftShader's 1 GiB holds every batch the settings allow.
        assert_eq!(max_batch_for(1 << 30), tripletlab_core::run::MAX_BATCH);
        assert_eq!(max_batch_for(u64::MAX), tripletlab_core::run::MAX_BATCH);
        assert_eq!(max_batch_for(57_599), 0);
    }
}
