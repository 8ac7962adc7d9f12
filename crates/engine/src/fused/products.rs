//! The matrix products of the fused kernels (`gemm` on strided row/column views, no copies)
//! and how chunks of a batch run: in parallel natively, in turn in wasm.

/// Runs `f` on every item: on rayon's pool natively, in turn in wasm.
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn each<T: Send>(items: Vec<T>, f: impl Fn(T) + Sync + Send) {
    use rayon::prelude::*;
    items.into_par_iter().for_each(f);
}

#[cfg(target_arch = "wasm32")]
pub(super) fn each<T>(items: Vec<T>, f: impl Fn(T)) {
    items.into_iter().for_each(f);
}

/// Parallelism for a product over the whole batch.
pub(super) fn batch_parallelism() -> gemm::Parallelism {
    #[cfg(not(target_arch = "wasm32"))]
    {
        gemm::Parallelism::Rayon(0)
    }
    #[cfg(target_arch = "wasm32")]
    {
        gemm::Parallelism::None
    }
}

/// A strided matrix view of a slice: element `(i, j)` at `data[offset + i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    data: &'a [f32],
    offset: usize,
    rs: usize,
    cs: usize,
}

/// Row-major `width`-column matrix starting at `offset`.
pub(super) fn rows(data: &[f32], offset: usize, width: usize) -> View<'_> {
    View {
        data,
        offset,
        rs: width,
        cs: 1,
    }
}

/// The transpose of [`rows`]: column-major, `width` rows between columns.
pub(super) fn cols(data: &[f32], offset: usize, width: usize) -> View<'_> {
    View {
        data,
        offset,
        rs: 1,
        cs: width,
    }
}

impl View<'_> {
    /// Whether an `r × c` matrix fits inside the slice.
    pub(super) fn fits(&self, r: usize, c: usize) -> bool {
        self.offset + (r - 1) * self.rs + (c - 1) * self.cs < self.data.len()
    }
}

/// `dst[m×n] (+)= lhs[m×k] · rhs[k×n]`, `dst` row-major with `dst_width` columns, starting at
/// `dst_offset`. Panics if a view does not fit its slice (a bug in this module).
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul(
    dst: &mut [f32],
    dst_offset: usize,
    dst_width: usize,
    accumulate: bool,
    (m, n, k): (usize, usize, usize),
    lhs: View<'_>,
    rhs: View<'_>,
    parallelism: gemm::Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[dst_offset + r * dst_width..][..n].fill(0.0);
            }
        }
        return;
    }
    assert!(
        dst_offset + (m - 1) * dst_width + n <= dst.len(),
        "matmul: destination too small"
    );
    assert!(
        lhs.fits(m, k) && rhs.fits(k, n),
        "matmul: operand too small"
    );
    // SAFETY: the asserts above keep every element gemm reads or writes inside its slice; `dst`
    // is a unique borrow, so it cannot overlap the shared borrows behind `lhs` and `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst[dst_offset..].as_mut_ptr(),
            1,
            dst_width as isize,
            accumulate,
            lhs.data[lhs.offset..].as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data[rhs.offset..].as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}
