//! The input pipeline: [`epoch_order`] is `tf.data`'s `shuffle(buffer)` reshuffled every epoch
//! (portable, seeded), [`batches`] its `batch(n)` keeping the final partial batch. The epoch
//! RNG is shared with `sampler` (P×K batches).

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// SplitMix64 finaliser, used to derive a per-epoch seed.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The RNG used for epoch `epoch` of a run seeded with `seed`. Portable and deterministic: the
/// same (seed, epoch) gives the same stream on every platform, wasm32 included.
pub(super) fn epoch_rng(seed: u64, epoch: usize) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(splitmix64(seed ^ splitmix64(epoch as u64)))
}

/// Uniform index in `0..len` (`len > 0`); sampled as `u64` so it is the same on 32-bit targets.
pub(super) fn pick(rng: &mut Pcg64Mcg, len: usize) -> usize {
    rng.random_range(0..len as u64) as usize
}

/// The order in which epoch `epoch` visits the `n` examples, like `tf.data`'s
/// `shuffle(shuffle_buffer)` (which reshuffles every epoch by default).
///
/// The shuffle-buffer algorithm: fill a buffer with the first `shuffle_buffer` indices; then
/// repeatedly pick a uniformly random slot, emit it, and replace it with the next input index or,
/// once the input is exhausted, remove it (`swap_remove`). Index `i` can therefore not be emitted
/// before position `i + 1 - shuffle_buffer`. `shuffle_buffer == 0` or `>= n` is a full uniform
/// shuffle (Fisher–Yates). The RNG is seeded from `(seed, epoch)`: every epoch differs and the
/// same seed reproduces the same orders on every platform.
pub fn epoch_order(n: usize, shuffle_buffer: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = epoch_rng(seed, epoch);
    if shuffle_buffer == 0 || shuffle_buffer >= n {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = pick(&mut rng, i + 1);
            order.swap(i, j);
        }
        return order;
    }
    let mut out = Vec::with_capacity(n);
    let mut buffer: Vec<usize> = (0..shuffle_buffer).collect();
    let mut next = shuffle_buffer;
    while !buffer.is_empty() {
        let slot = pick(&mut rng, buffer.len());
        out.push(buffer[slot]);
        if next < n {
            buffer[slot] = next;
            next += 1;
        } else {
            buffer.swap_remove(slot);
        }
    }
    out
}

/// Splits an epoch order into batches of `batch_size`, keeping the final partial batch (like
/// `tf.data`'s `batch(batch_size)` without `drop_remainder`). A `batch_size` of 0 is treated as 1.
pub fn batches(order: &[usize], batch_size: usize) -> impl ExactSizeIterator<Item = &[usize]> {
    order.chunks(batch_size.max(1))
}

/// Number of batches [`batches`] yields for `n` examples.
pub fn num_batches(n: usize, batch_size: usize) -> usize {
    n.div_ceil(batch_size.max(1))
}
