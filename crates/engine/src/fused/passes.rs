//! The fused forward pass (stage 1, conv2, stage 2, dense, normalisation) and backward pass
//! over one batch, chunk by chunk; see the module above for the layout.

use super::*;

pub(super) fn forward(
    params: &[Vec<f32>; 6],
    batch: &mut Batch,
    pixels: &[f32],
    masks: Option<&[Vec<f32>; 2]>,
) {
    assert_eq!(
        pixels.len() % IMAGE_PIXELS,
        0,
        "forward: pixels of whole 28×28 images"
    );
    let n = pixels.len() / IMAGE_PIXELS;
    let [w1, b1, w2, b2, w3, b3] = params;
    batch.n = n;
    batch.norms.clear();
    batch.dense.clear();
    batch.embeddings.clear();
    if n == 0 {
        return;
    }
    // Chunk buffers are kept between batches (a final partial batch uses the first ones).
    let chunk_count = n.div_ceil(CHUNK);
    if batch.chunks.len() < chunk_count {
        batch.chunks.resize_with(chunk_count, ChunkWork::default);
    }
    sized(&mut batch.a2, n * FLAT);

    // Stages 1 and 2 per chunk.
    let mask1 = masks.map(|m| &m[0][..]);
    let mask2 = masks.map(|m| &m[1][..]);
    let tasks: Vec<_> = batch
        .chunks
        .iter_mut()
        .zip(pixels.chunks(CHUNK * IMAGE_PIXELS))
        .zip(batch.a2.chunks_mut(CHUNK * FLAT))
        .enumerate()
        .collect();
    each(tasks, |(c, ((work, px), a2))| {
        let m = px.len() / IMAGE_PIXELS;
        let start = c * CHUNK;
        let mask1 =
            mask1.map(|v| &v[start * GRID1_CELLS * CONV1..(start + m) * GRID1_CELLS * CONV1]);
        let mask2 = mask2.map(|v| &v[start * FLAT..(start + m) * FLAT]);
        stage1_forward(work, px, w1, b1, mask1);
        conv2_forward(work, m, w2);
        stage2_forward(work, m, b2, mask2, a2);
    });

    // Dense layer and normalisation on the whole batch.
    for _ in 0..n {
        batch.dense.extend_from_slice(b3);
    }
    matmul(
        &mut batch.dense,
        0,
        EMBEDDING_DIM,
        true,
        (n, EMBEDDING_DIM, FLAT),
        rows(&batch.a2, 0, FLAT),
        rows(w3, 0, EMBEDDING_DIM),
        batch_parallelism(),
    );
    sized(&mut batch.embeddings, n * EMBEDDING_DIM);
    for (e, out) in batch
        .dense
        .chunks_exact(EMBEDDING_DIM)
        .zip(batch.embeddings.chunks_exact_mut(EMBEDDING_DIM))
    {
        // `tf.math.l2_normalize`: x / sqrt(max(Σx², 1e-12)).
        let sum: f32 = e.iter().map(|v| v * v).sum();
        let norm = sum.max(1e-12).sqrt();
        for (o, v) in out.iter_mut().zip(e) {
            *o = v / norm;
        }
        batch.norms.push((norm, sum >= 1e-12));
    }
}

/// Conv1 at the four offsets of each pooling window, first maximum, bias, relu, dropout (or,
/// without masks, only the zero padding), into conv2's padded grid `work.a1`.
pub(super) fn stage1_forward(
    work: &mut ChunkWork,
    px: &[f32],
    w1: &[f32],
    b1: &[f32],
    mask: Option<&[f32]>,
) {
    let m = px.len() / IMAGE_PIXELS;
    // Only the pooled cells are written below: the padding row and column and the tail rows
    // must be zero, which they stay from one batch to the next of the same size.
    let len = (m * GRID1_CELLS + TAIL) * CONV1;
    if work.a1.len() != len {
        zeroed(&mut work.a1, len);
    }
    sized(&mut work.arg1, m * SIDE1 * SIDE1 * CONV1);
    sized(&mut work.gate1, m * SIDE1 * SIDE1 * CONV1);
    let w: [&[f32]; 4] = std::array::from_fn(|t| &w1[t * CONV1..(t + 1) * CONV1]);
    for b in 0..m {
        let image = &px[b * IMAGE_PIXELS..(b + 1) * IMAGE_PIXELS];
        for i in 0..SIDE1 {
            for j in 0..SIDE1 {
                let mut best = [0f32; CONV1];
                let mut arg = [0u8; CONV1];
                for (q, p) in window_patches(image, i, j).into_iter().enumerate() {
                    for c in 0..CONV1 {
                        let z = p[0] * w[0][c] + p[1] * w[1][c] + p[2] * w[2][c] + p[3] * w[3][c];
                        if q == 0 || z > best[c] {
                            best[c] = z;
                            arg[c] = q as u8;
                        }
                    }
                }
                let cell = (b * GRID1_CELLS + i * GRID1 + j) * CONV1;
                let unit = ((b * SIDE1 + i) * SIDE1 + j) * CONV1;
                let keep = mask.map(|mk| &mk[cell..cell + CONV1]);
                let out = &mut work.a1[cell..cell + CONV1];
                let gate = &mut work.gate1[unit..unit + CONV1];
                for c in 0..CONV1 {
                    let pre = best[c] + b1[c];
                    let k = keep.map_or(1.0, |k| k[c]);
                    // relu, keeping NaN (as burn does) so that a diverged net shows in the loss.
                    let on = pre > 0.0 || pre.is_nan();
                    out[c] = if on { pre * k } else { 0.0 };
                    gate[c] = if on { k } else { 0.0 };
                }
                work.arg1[unit..unit + CONV1].copy_from_slice(&arg);
            }
        }
    }
}

/// 2×2 max-pooling of conv2's output (first maximum), bias, relu and dropout, into `a2`.
pub(super) fn stage2_forward(
    work: &mut ChunkWork,
    m: usize,
    b2: &[f32],
    mask: Option<&[f32]>,
    a2: &mut [f32],
) {
    sized(&mut work.arg2, m * FLAT);
    sized(&mut work.gate2, m * FLAT);
    for b in 0..m {
        for i in 0..SIDE2 {
            for j in 0..SIDE2 {
                let mut best = [0f32; CONV2];
                let mut arg = [0u8; CONV2];
                for q in 0..4 {
                    let cell = b * GRID1_CELLS + (2 * i + q / 2) * GRID1 + 2 * j + q % 2;
                    let y = &work.y2[cell * CONV2..(cell + 1) * CONV2];
                    for o in 0..CONV2 {
                        if q == 0 || y[o] > best[o] {
                            best[o] = y[o];
                            arg[o] = q as u8;
                        }
                    }
                }
                let unit = ((b * SIDE2 + i) * SIDE2 + j) * CONV2;
                for o in 0..CONV2 {
                    let pre = best[o] + b2[o];
                    let k = mask.map_or(1.0, |mk| mk[unit + o]);
                    let on = pre > 0.0 || pre.is_nan();
                    a2[unit + o] = if on { pre * k } else { 0.0 };
                    work.gate2[unit + o] = if on { k } else { 0.0 };
                }
                work.arg2[unit..unit + CONV2].copy_from_slice(&arg);
            }
        }
    }
}

pub(super) fn backward(
    params: &[Vec<f32>; 6],
    batch: &mut Batch,
    grads: &mut [Vec<f32>; 6],
    pixels: &[f32],
    d_embeddings: &[f32],
) {
    let n = batch.n;
    assert_eq!(
        pixels.len(),
        n * IMAGE_PIXELS,
        "backward: pixels of another batch"
    );
    assert_eq!(
        d_embeddings.len(),
        n * EMBEDDING_DIM,
        "backward: gradient of another batch"
    );
    if n == 0 {
        grads.iter_mut().for_each(|g| g.fill(0.0));
        return;
    }
    let [_, _, w2, _, w3, _] = params;

    norm_backward(batch, d_embeddings);
    // Dense layer: bias, kernel (a2ᵀ·d) and input (d·W3ᵀ) gradients.
    let [g1, gb1, g2, gb2, g3, gb3] = grads;
    gb3.fill(0.0);
    for row in batch.d_dense.chunks_exact(EMBEDDING_DIM) {
        for (g, v) in gb3.iter_mut().zip(row) {
            *g += v;
        }
    }
    matmul(
        g3,
        0,
        EMBEDDING_DIM,
        false,
        (FLAT, EMBEDDING_DIM, n),
        cols(&batch.a2, 0, FLAT),
        rows(&batch.d_dense, 0, EMBEDDING_DIM),
        batch_parallelism(),
    );
    sized(&mut batch.d_a2, n * FLAT);
    matmul(
        &mut batch.d_a2,
        0,
        FLAT,
        false,
        (n, FLAT, EMBEDDING_DIM),
        rows(&batch.d_dense, 0, EMBEDDING_DIM),
        cols(w3, 0, EMBEDDING_DIM),
        batch_parallelism(),
    );

    // Stages 2 and 1 per chunk.
    let tasks: Vec<_> = batch
        .chunks
        .iter_mut()
        .zip(pixels.chunks(CHUNK * IMAGE_PIXELS))
        .zip(batch.d_a2.chunks(CHUNK * FLAT))
        .collect();
    each(tasks, |((work, px), d_a2)| {
        chunk_backward(work, px, d_a2, w2)
    });
    // Partial conv gradients, summed in chunk order.
    for (total, part) in [g1, gb1, g2, gb2].into_iter().zip(0..4) {
        total.fill(0.0);
        for work in &batch.chunks[..n.div_ceil(CHUNK)] {
            for (t, v) in total.iter_mut().zip(&work.grads[part]) {
                *t += v;
            }
        }
    }
}

/// One chunk's share of the conv gradients, from the gradient of stage 2's output `d_a2`.
fn chunk_backward(work: &mut ChunkWork, px: &[f32], d_a2: &[f32], w2: &[f32]) {
    let m = px.len() / IMAGE_PIXELS;
    let grid = m * GRID1_CELLS;
    for (g, size) in work.grads.iter_mut().zip(PARAM_SIZES) {
        zeroed(g, size);
    }
    stage2_backward(work, m, d_a2);
    conv2_backward(work, grid, w2);
    stage1_backward(work, m, px);
}

/// Stage 2's pooling, relu and dropout backwards: `d_a2` scattered to the winning offsets of
/// conv2's output, and conv2's bias gradient.
fn stage2_backward(work: &mut ChunkWork, m: usize, d_a2: &[f32]) {
    let grid = m * GRID1_CELLS;
    // Pooling, relu and dropout of stage 2: scatter to the winning offsets.
    zeroed(&mut work.d_y2, grid * CONV2);
    for b in 0..m {
        for i in 0..SIDE2 {
            for j in 0..SIDE2 {
                let unit = ((b * SIDE2 + i) * SIDE2 + j) * CONV2;
                for o in 0..CONV2 {
                    let g = d_a2[unit + o] * work.gate2[unit + o];
                    work.grads[3][o] += g;
                    let q = work.arg2[unit + o] as usize;
                    let cell = b * GRID1_CELLS + (2 * i + q / 2) * GRID1 + 2 * j + q % 2;
                    work.d_y2[cell * CONV2 + o] = g;
                }
            }
        }
    }
}

/// Conv2 backwards: the kernel gradient (shifted gridᵀ · d_y2) and the input gradient (d_y2 ·
/// tap kernelᵀ added into the shifted grid), one product per tap.
fn conv2_backward(work: &mut ChunkWork, grid: usize, w2: &[f32]) {
    // Conv2: kernel gradient (shifted gridᵀ · d_y2) and input gradient (d_y2 · tap kernelᵀ
    // added into the shifted grid), one product per tap.
    // The first tap (shift 0) sets rows 0..grid, the others add; the tail rows beyond are
    // only added to, so they start at zero.
    sized(&mut work.d_a1, work.a1.len());
    work.d_a1[grid * CONV1..].fill(0.0);
    for (t, &shift) in TAPS.iter().enumerate() {
        let block = t * CONV1 * CONV2;
        matmul(
            &mut work.grads[2],
            block,
            CONV2,
            false,
            (CONV1, CONV2, grid),
            cols(&work.a1, shift * CONV1, CONV1),
            rows(&work.d_y2, 0, CONV2),
            gemm::Parallelism::None,
        );
        matmul(
            &mut work.d_a1,
            shift * CONV1,
            CONV1,
            t > 0,
            (grid, CONV1, CONV2),
            rows(&work.d_y2, 0, CONV2),
            cols(w2, block, CONV2),
            gemm::Parallelism::None,
        );
    }
}

/// Stage 1 backwards: the gate, conv1's bias gradient and its kernel gradient from the winning
/// patches of `px`.
fn stage1_backward(work: &mut ChunkWork, m: usize, px: &[f32]) {
    // Stage 1: gate, bias gradient, and the kernel gradient from the winning patches.
    let [gk1, gb1, ..] = &mut work.grads;
    for b in 0..m {
        let image = &px[b * IMAGE_PIXELS..(b + 1) * IMAGE_PIXELS];
        for i in 0..SIDE1 {
            for j in 0..SIDE1 {
                let cell = (b * GRID1_CELLS + i * GRID1 + j) * CONV1;
                let unit = ((b * SIDE1 + i) * SIDE1 + j) * CONV1;
                let patches = window_patches(image, i, j);
                for c in 0..CONV1 {
                    let g = work.d_a1[cell + c] * work.gate1[unit + c];
                    gb1[c] += g;
                    let p = patches[work.arg1[unit + c] as usize];
                    for t in 0..4 {
                        gk1[t * CONV1 + c] += p[t] * g;
                    }
                }
            }
        }
    }
}

/// The row normalisation backwards: d(x/‖x‖) = d/‖x‖ − x·(d·x)/‖x‖³ (only the first term
/// under the floor), into `batch.d_dense`.
fn norm_backward(batch: &mut Batch, d_embeddings: &[f32]) {
    let n = batch.n;
    sized(&mut batch.d_dense, n * EMBEDDING_DIM);
    for (r, &(norm, active)) in batch.norms.iter().enumerate() {
        let span = r * EMBEDDING_DIM..(r + 1) * EMBEDDING_DIM;
        let (x, d) = (&batch.dense[span.clone()], &d_embeddings[span.clone()]);
        let dot: f32 = if active {
            x.iter().zip(d).map(|(a, b)| a * b).sum()
        } else {
            0.0
        };
        let k = dot / (norm * norm * norm);
        for ((o, &dv), &xv) in batch.d_dense[span].iter_mut().zip(d).zip(x) {
            *o = dv / norm - xv * k;
        }
    }
}

/// Conv2 on one chunk: one product per tap over the shifted grid `work.a1`, into `work.y2`.
fn conv2_forward(work: &mut ChunkWork, m: usize, w2: &[f32]) {
    let grid = m * GRID1_CELLS;
    sized(&mut work.y2, grid * CONV2);
    for (t, &shift) in TAPS.iter().enumerate() {
        matmul(
            &mut work.y2,
            0,
            CONV2,
            t > 0,
            (grid, CONV2, CONV1),
            rows(&work.a1, shift * CONV1, CONV1),
            rows(w2, t * CONV1 * CONV2, CONV2),
            gemm::Parallelism::None,
        );
    }
}
