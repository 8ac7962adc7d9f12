//! Where the semi-hard negative of each (anchor, positive) pair is selected: on the device
//! (tensor arithmetic, chunked; usable inside a WebGPU step) or by read-back (the distance
//! matrix read once, each anchor's negatives sorted; native and the browser's CPU device).
//! Same columns either way.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use tripletlab_core::run::select_semi_hard;

use super::{DEVICE_CHUNK_ELEMS, Masks};

/// Whether the host selection's synchronous read is available on `device`: always natively; in
/// the browser only on the CPU device (WebGPU cannot block on a read). There the device path's
/// B³ comparisons would cost minutes per step at B = 4096 (4 min natively on two cores).
pub(super) fn can_read_back(device: &Device) -> bool {
    !cfg!(target_arch = "wasm32") || device.clone().inner() == crate::device::cpu_device()
}

/// Device path of the selection: for each (a, p), the column of the smallest `D[a, n] > D[a, p]`
/// among the negatives of `a` (the lowest column among exact ties, as on the host) and whether
/// one exists, as `[B, B]` tensors on `dist`'s device. `negative` is the 0/1 negative mask.
///
/// Pure tensor arithmetic without a read-back, so it can run inside a WebGPU step. It works on
/// the distances detached from the autodiff graph (nothing here is recorded for backward), a
/// chunk of anchors at a time, so every chunk's `[chunk, B, B]` scratch is freed before the next
/// one is built: memory stays O(B²).
pub fn select_semi_hard_device(
    dist: &Tensor<2>,
    negative: &Tensor<2>,
) -> (Tensor<2, Int>, Tensor<2, Bool>) {
    let [b, _] = dist.dims();
    let dist = dist.clone().without_autodiff();
    let not_negative = negative.clone().without_autodiff().lower_equal_elem(0.0);
    // D[a, n] where n is a negative of a, -inf elsewhere (never strictly farther than anything).
    let negatives_only = dist.clone().mask_fill(not_negative, f32::NEG_INFINITY);
    let chunk = (DEVICE_CHUNK_ELEMS / (b * b).max(1)).clamp(1, b.max(1));
    let mut index = Vec::new();
    let mut exists = Vec::new();
    for a0 in (0..b).step_by(chunk) {
        let a1 = (a0 + chunk).min(b);
        let c = a1 - a0;
        // [a, p, n] = D[a, n] (negatives only) and D[a, p].
        let d_an = negatives_only
            .clone()
            .slice([a0..a1, 0..b])
            .unsqueeze_dim::<3>(1)
            .expand([c, b, b]);
        let d_ap = dist
            .clone()
            .slice([a0..a1, 0..b])
            .unsqueeze_dim::<3>(2)
            .expand([c, b, b]);
        let farther = d_an.clone().greater(d_ap);
        // argmin returns the lowest coordinate among ties.
        let candidates = d_an.mask_fill(farther.clone().bool_not(), f32::INFINITY);
        index.push(candidates.argmin(2).reshape([c, b]));
        exists.push(farther.any_dim(2).reshape([c, b]));
    }
    (Tensor::cat(index, 0), Tensor::cat(exists, 0))
}

/// Host path of the selection: one read of `dist`, per-anchor sort of the negatives, binary
/// search per positive; the result is uploaded to `device`.
pub(super) fn semi_hard_host(
    dist: &Tensor<2>,
    m: &Masks,
    device: &Device,
) -> (Tensor<2, Int>, Tensor<2, Bool>) {
    let [b, _] = dist.dims();
    let host: Vec<f32> = dist
        .clone()
        .into_data()
        .try_into_vec()
        .expect("distance matrix is f32");
    let (index, exists) = select_semi_hard(&host, &m.negative_host, b);
    let index = Tensor::<2, Int>::from_data(TensorData::new(index, [b, b]), device);
    let exists = Tensor::<2, Bool>::from_data(TensorData::new(exists, [b, b]), device);
    (index, exists)
}
