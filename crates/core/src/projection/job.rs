//! One incremental layout, t-SNE or UMAP, behind one interface: its parameters ([`Layout`]),
//! its neighbour search in slices ([`LayoutPrep`]) and its optimisation in steps
//! ([`LayoutRun`]), with the words that describe it. What a host that must stay responsive (the
//! page's worker) drives; it knows no host, no clock and no screen.

use super::{ProjectionError, Tsne, TsneParams, TsnePrep, Umap, UmapParams, UmapPrep};

/// t-SNE's name as people write it (captions, the page's progress, projection.tsv).
pub const TSNE_NAME: &str = "t-SNE";
/// UMAP's name as people write it.
pub const UMAP_NAME: &str = "UMAP";

/// Which layout, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    /// Barnes-Hut t-SNE.
    Tsne(TsneParams),
    /// UMAP.
    Umap(UmapParams),
}

impl Layout {
    /// t-SNE with the usual perplexity of 30, lowered for small sets (t-SNE needs perplexity
    /// < n; a third of the points keeps each point's neighbourhood meaningful).
    pub fn tsne_for(n: usize) -> Self {
        Layout::Tsne(TsneParams {
            perplexity: 30f32.min((n.saturating_sub(1) / 3).max(1) as f32),
            ..TsneParams::default()
        })
    }

    /// The method's name as people write it.
    pub fn name(&self) -> &'static str {
        match self {
            Layout::Tsne(_) => TSNE_NAME,
            Layout::Umap(_) => UMAP_NAME,
        }
    }

    /// What one step of the run is called.
    pub fn unit(&self) -> &'static str {
        match self {
            Layout::Tsne(_) => "iteration",
            Layout::Umap(_) => "epoch",
        }
    }

    /// The finished layout with its parameters, e.g. "UMAP, n_neighbors 15, min_dist 0.1,
    /// 500 epochs" (`total` steps in all).
    pub fn describe(&self, total: usize) -> String {
        match self {
            Layout::Tsne(p) => format!("t-SNE, perplexity {}, {total} iterations", p.perplexity),
            Layout::Umap(p) => format!(
                "UMAP, n_neighbors {}, min_dist {}, {total} epochs",
                p.n_neighbors, p.min_dist
            ),
        }
    }

    /// The layout under way, e.g. "UMAP, epoch 40 of 500".
    pub fn describe_progress(&self, done: usize, total: usize) -> String {
        format!("{}, {} {done} of {total}", self.name(), self.unit())
    }

    /// Validates the parameters against `data` and starts the neighbour search.
    ///
    /// # Errors
    /// Those of [`TsnePrep::new`] or [`UmapPrep::new`].
    pub fn prepare(&self, data: &[f32], dim: usize) -> Result<LayoutPrep, ProjectionError> {
        Ok(match *self {
            Layout::Tsne(p) => LayoutPrep::Tsne(TsnePrep::new(data, dim, p)?),
            Layout::Umap(p) => LayoutPrep::Umap(UmapPrep::new(data, dim, p)?),
        })
    }
}

/// A layout's neighbour search, a few points at a time.
pub enum LayoutPrep {
    /// t-SNE's.
    Tsne(TsnePrep),
    /// UMAP's.
    Umap(UmapPrep),
}

impl LayoutPrep {
    /// Searches the neighbours of up to `points` more points; `true` once all are done.
    pub fn advance(&mut self, points: usize) -> bool {
        match self {
            LayoutPrep::Tsne(p) => p.advance(points),
            LayoutPrep::Umap(p) => p.advance(points),
        }
    }

    /// The run, ready to step.
    pub fn finish(self) -> LayoutRun {
        match self {
            LayoutPrep::Tsne(p) => LayoutRun::Tsne(p.finish()),
            LayoutPrep::Umap(p) => LayoutRun::Umap(p.finish()),
        }
    }
}

/// A layout's optimisation, a few steps (t-SNE iterations, UMAP epochs) at a time.
pub enum LayoutRun {
    /// t-SNE's.
    Tsne(Tsne),
    /// UMAP's.
    Umap(Umap),
}

impl LayoutRun {
    /// Runs up to `steps` more steps; returns the steps done so far.
    pub fn step(&mut self, steps: usize) -> usize {
        match self {
            LayoutRun::Tsne(t) => t.step(steps),
            LayoutRun::Umap(u) => u.step(steps),
        }
    }

    /// Steps done so far.
    pub fn done(&self) -> usize {
        match self {
            LayoutRun::Tsne(t) => t.iteration(),
            LayoutRun::Umap(u) => u.epoch(),
        }
    }

    /// Steps of the whole run.
    pub fn total(&self) -> usize {
        match self {
            LayoutRun::Tsne(t) => t.total_iters(),
            LayoutRun::Umap(u) => u.total_epochs(),
        }
    }

    /// Whether every step has run.
    pub fn is_done(&self) -> bool {
        self.done() >= self.total()
    }

    /// The current layout, one `[x, y]` per input row.
    pub fn embedding(&self) -> Vec<[f32; 2]> {
        match self {
            LayoutRun::Tsne(t) => t.embedding(),
            LayoutRun::Umap(u) => u.embedding(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> Vec<f32> {
        (0..60)
            .flat_map(|i| {
                let c = (i % 3) as f32 * 10.0;
                [
                    c + (i as f32 * 0.37).sin(),
                    c + (i as f32 * 0.91).cos(),
                    0.5,
                ]
            })
            .collect()
    }

    /// Driven in slices, each layout ends where the direct run does, and says what it is.
    #[test]
    fn a_sliced_layout_equals_the_direct_run() {
        let data = blobs();
        let umap = UmapParams {
            n_neighbors: 10,
            epochs: Some(50),
            ..UmapParams::default()
        };
        let tsne = TsneParams {
            perplexity: 5.0,
            iterations: 60,
            ..TsneParams::default()
        };
        let direct = [
            Umap::new(&data, 3, umap).unwrap().embedding_after_all(),
            Tsne::new(&data, 3, tsne).unwrap().embedding_after_all(),
        ];
        for (layout, want) in [Layout::Umap(umap), Layout::Tsne(tsne)].iter().zip(direct) {
            let mut prep = layout.prepare(&data, 3).unwrap();
            while !prep.advance(7) {}
            let mut run = prep.finish();
            let mut calls = 0;
            while !run.is_done() {
                run.step(9);
                calls += 1;
            }
            assert!(calls > 1);
            assert_eq!(run.done(), run.total());
            assert_eq!(run.embedding(), want, "{}", layout.name());
        }
        assert_eq!(
            Layout::Umap(umap).describe(50),
            "UMAP, n_neighbors 10, min_dist 0.1, 50 epochs"
        );
        assert_eq!(
            Layout::Tsne(tsne).describe_progress(3, 60),
            "t-SNE, iteration 3 of 60"
        );
    }

    #[test]
    fn bad_parameters_are_refused_before_any_work() {
        let data = blobs();
        let bad = Layout::Umap(UmapParams {
            n_neighbors: 61,
            ..UmapParams::default()
        });
        let e = bad.prepare(&data, 3).err().unwrap().to_string();
        assert!(e.contains("n_neighbors"), "{e}");
        assert!(matches!(Layout::tsne_for(10), Layout::Tsne(p) if p.perplexity == 3.0));
        assert!(matches!(Layout::tsne_for(2000), Layout::Tsne(p) if p.perplexity == 30.0));
    }

    trait AfterAll {
        fn embedding_after_all(self) -> Vec<[f32; 2]>;
    }
    impl AfterAll for Umap {
        fn embedding_after_all(mut self) -> Vec<[f32; 2]> {
            self.step(usize::MAX);
            self.embedding()
        }
    }
    impl AfterAll for Tsne {
        fn embedding_after_all(mut self) -> Vec<[f32; 2]> {
            self.step(usize::MAX);
            self.embedding()
        }
    }
}
