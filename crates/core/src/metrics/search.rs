//! The neighbour search: reference rows in transposed cache-sized tiles, blocks of queries
//! scored against them, each query keeping its top `k`; deterministic ranking.

use std::cmp::Ordering;

use super::*;

/// One ranked neighbour: its similarity to the query and its reference index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Neighbor {
    pub(crate) sim: f32,
    pub(crate) index: u32,
}

/// Ranking order: higher similarity first, then lower index. A strict total
/// order because similarities are never NaN and `-0.0` is stored as `+0.0`.
pub(super) fn rank_order(a: &Neighbor, b: &Neighbor) -> Ordering {
    b.sim.total_cmp(&a.sim).then(a.index.cmp(&b.index))
}

/// Reference rows per tile: a tile (`TILE × dim` values) stays in L2 cache
/// while a block of queries is scored against it.
pub(super) const TILE: usize = 64;
/// Queries scored together; a multiple of the 4 rows the kernel handles.
pub(super) const QUERY_BLOCK: usize = 32;
/// Up to this `k`, top-k uses insertion into a small sorted buffer.
pub(super) const SMALL_K: usize = 32;

/// Scores four queries against one transposed tile (`dim` rows of `width`
/// reference values): `out[i][j] = q[i] · r_j`.
///
/// Each score is accumulated in plain `f32` in dimension order (exactly
/// `q.iter().zip(r).fold(0.0, |s, (a, b)| s + a * b)`), so equal rows always
/// get bit-identical scores. The update is an element-wise loop over
/// contiguous memory that LLVM's loop vectoriser handles at opt-level 2 as
/// well as 3 (rustc runs the SLP vectoriser, which register-blocked
/// dot-product kernels rely on, only at opt-level 3), and the reference
/// values are loaded once for all four queries.
pub(super) fn score_tile(q: [&[f32]; 4], tile: &[f32], width: usize, out: [&mut [f32]; 4]) {
    let [o0, o1, o2, o3] = out;
    for o in [&mut *o0, &mut *o1, &mut *o2, &mut *o3] {
        o.fill(0.0);
    }
    for (d, r) in tile.chunks_exact(width).enumerate() {
        let (a, b, c, e) = (q[0][d], q[1][d], q[2][d], q[3][d]);
        let outs = o0
            .iter_mut()
            .zip(o1.iter_mut())
            .zip(o2.iter_mut())
            .zip(o3.iter_mut());
        for (&rj, (((x0, x1), x2), x3)) in r.iter().zip(outs) {
            *x0 += a * rj;
            *x1 += b * rj;
            *x2 += c * rj;
            *x3 += e * rj;
        }
    }
}

/// A reference set cut into tiles of [`TILE`] rows stored transposed, so that
/// blocks of [`QUERY_BLOCK`] queries are scored tile by tile: the full
/// similarity matrix never exists and the working set stays in cache. Built
/// once per reference set, then used for any number of query slices.
pub(crate) struct Tiled {
    tiles: Vec<f32>,
    rows: usize,
    dim: usize,
}

impl Tiled {
    /// `reference`: row-major, `dim > 0` values per row, a whole number of rows.
    pub(crate) fn new(reference: &[f32], dim: usize) -> Self {
        let rows = reference.len() / dim;
        // Transposed tiles: tile `t` covers reference rows `start..start + width`
        // and stores value `d` of row `start + j` at `start * dim + d * width + j`.
        let mut tiles = vec![0.0f32; rows * dim];
        for start in (0..rows).step_by(TILE) {
            let width = TILE.min(rows - start);
            let tile = &mut tiles[start * dim..(start + width) * dim];
            for (j, row) in reference[start * dim..(start + width) * dim]
                .chunks_exact(dim)
                .enumerate()
            {
                for (d, &x) in row.iter().enumerate() {
                    tile[d * width + j] = x;
                }
            }
        }
        Self { tiles, rows, dim }
    }

    /// Calls `visit(q, row)` for every row `q` of `query`, where `row[j]` is the dot product
    /// of query row `q` with reference row `j` (the caller may overwrite `row`); `query` is
    /// row-major with this set's `dim` values per row.
    pub(crate) fn for_each_dot_row(&self, query: &[f32], mut visit: impl FnMut(usize, &mut [f32])) {
        let (dim, n_ref) = (self.dim, self.rows);
        let n_query = query.len() / dim;
        if n_ref == 0 {
            (0..n_query).for_each(|q| visit(q, &mut []));
            return;
        }
        let query_row = |q: usize| &query[q * dim..(q + 1) * dim];
        // One similarity row per query of a block, rounded up to whole groups of
        // four; rows past the last query are scratch for a short last group.
        let block_rows = QUERY_BLOCK.min(n_query.next_multiple_of(4));
        let mut sims = vec![0.0f32; block_rows * n_ref];
        for q0 in (0..n_query).step_by(QUERY_BLOCK) {
            let q_end = (q0 + QUERY_BLOCK).min(n_query);
            for start in (0..n_ref).step_by(TILE) {
                let width = TILE.min(n_ref - start);
                let tile = &self.tiles[start * dim..(start + width) * dim];
                for g in (q0..q_end).step_by(4) {
                    // A short last group repeats its last query.
                    let q = std::array::from_fn(|i| query_row((g + i).min(q_end - 1)));
                    let group = &mut sims[(g - q0) * n_ref..(g - q0 + 4) * n_ref];
                    let (r0, rest) = group.split_at_mut(n_ref);
                    let (r1, rest) = rest.split_at_mut(n_ref);
                    let (r2, r3) = rest.split_at_mut(n_ref);
                    let span = start..start + width;
                    let out = [r0, r1, r2, r3].map(|row| &mut row[span.clone()]);
                    score_tile(q, tile, width, out);
                }
            }
            for (q, row) in (q0..q_end).zip(sims.chunks_exact_mut(n_ref)) {
                visit(q, row);
            }
        }
    }
}

/// Keeps the `k` best neighbours of one similarity row (skipping index
/// `exclude`) in `out`, best first by [`rank_order`]: higher similarity, then
/// lower index. Similarities must not be NaN.
pub(crate) fn top_k(sims: &[f32], k: usize, exclude: Option<usize>, out: &mut Vec<Neighbor>) {
    out.clear();
    let candidates = sims
        .iter()
        .enumerate()
        .filter(|&(j, _)| Some(j) != exclude)
        // `+ 0.0` turns -0.0 into +0.0 so `total_cmp` agrees with `>=`.
        .map(|(j, &s)| Neighbor {
            sim: s + 0.0,
            index: j as u32,
        });
    if k == 0 {
        return;
    }
    if k <= SMALL_K {
        for cand in candidates {
            if out.len() == k {
                // Candidates arrive in increasing index order, so an equal
                // similarity ranks below everything already kept.
                if cand.sim <= out[k - 1].sim {
                    continue;
                }
                out.pop();
            }
            let pos = out.partition_point(|n| n.sim >= cand.sim);
            out.insert(pos, cand);
        }
    } else {
        out.extend(candidates);
        if k < out.len() {
            out.select_nth_unstable_by(k - 1, rank_order);
            out.truncate(k);
        }
        out.sort_unstable_by(rank_order);
    }
}

/// Calls `visit(q, neighbours)` for every query row `q` in `rows` with its top
/// `k_of(q)` neighbours among `reference` by cosine similarity (best first;
/// clamped to the number of available references; queries wanting 0 are not
/// visited). With `exclude_self`, `query` and `reference` are the same set and
/// row `q` is not its own neighbour.
pub(super) fn for_each_top_k(
    query: &Normalized,
    rows: Range<usize>,
    reference: &Tiled,
    exclude_self: bool,
    k_of: impl Fn(usize) -> usize,
    mut visit: impl FnMut(usize, &[Neighbor]),
) {
    let available = reference.rows - usize::from(exclude_self);
    let mut neighbours = Vec::new();
    let first = rows.start;
    let slice = &query.data[rows.start * query.dim..rows.end * query.dim];
    reference.for_each_dot_row(slice, |i, row| {
        let q = first + i;
        let k = k_of(q).min(available);
        if k > 0 {
            top_k(row, k, exclude_self.then_some(q), &mut neighbours);
            visit(q, &neighbours);
        }
    });
}

/// Majority label among `neighbours` (best first); a tie goes to the tied
/// label whose best-ranked member comes first.
pub(super) fn vote(neighbours: &[Neighbor], labels: &[u32]) -> Option<u32> {
    // (label, votes) in order of first appearance, i.e. of best rank.
    let mut tally: Vec<(u32, usize)> = Vec::with_capacity(neighbours.len());
    for n in neighbours {
        let label = labels[n.index as usize];
        match tally.iter_mut().find(|(l, _)| *l == label) {
            Some((_, votes)) => *votes += 1,
            None => tally.push((label, 1)),
        }
    }
    let mut best: Option<(u32, usize)> = None;
    for (label, votes) in tally {
        if best.is_none_or(|(_, b)| votes > b) {
            best = Some((label, votes));
        }
    }
    best.map(|(label, _)| label)
}
