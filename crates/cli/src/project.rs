//! `tripletlab project`: a 2-D layout (PCA, t-SNE or UMAP) of any vecs.tsv, written as
//! layout.tsv (a `#` line naming the method and its parameters, then one `x<TAB>y` row per
//! vector, in meta.tsv's order) and measured: its trustworthiness at k = 10 (scikit-learn's
//! definition) and how often a point's nearest neighbour in the layout shares its label.

use std::time::Instant;

use tripletlab_core::export::{parse_meta_tsv, parse_vecs_tsv};
use tripletlab_core::projection::{
    Method, Tsne, TsneParams, Umap, UmapParams, pca_2d, trustworthiness,
};

use super::*;

/// The flags of `project`.
#[derive(clap::Args)]
pub(super) struct ProjectArgs {
    /// Vectors (numpy savetxt TSV, as `train` writes them).
    #[arg(long)]
    vecs: PathBuf,
    /// Their labels, one per line.
    #[arg(long)]
    meta: PathBuf,
    /// pca | tsne | umap
    #[arg(long, default_value = "umap")]
    method: Method,
    /// Where the layout goes.
    #[arg(long)]
    out: PathBuf,
    /// UMAP's neighbourhood (the point itself counted).
    #[arg(long, default_value_t = 15)]
    n_neighbors: usize,
    /// UMAP's minimum distance.
    #[arg(long, default_value_t = 0.1)]
    min_dist: f32,
    /// t-SNE's perplexity.
    #[arg(long, default_value_t = 30.0)]
    perplexity: f32,
    /// Seed of t-SNE's and UMAP's randomness.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Neighbours of the trustworthiness.
    #[arg(long, default_value_t = 10)]
    trust_k: usize,
}

pub(super) fn project(args: ProjectArgs) -> Result<(), String> {
    let (vecs, dim) =
        parse_vecs_tsv(&read(&args.vecs)?).map_err(|e| format!("{}: {e}", args.vecs.display()))?;
    let labels =
        parse_meta_tsv(&read(&args.meta)?).map_err(|e| format!("{}: {e}", args.meta.display()))?;
    let n = labels.len();
    if n * dim != vecs.len() {
        return Err(format!(
            "{} has {} rows but {} has {n} labels",
            args.vecs.display(),
            vecs.len() / dim.max(1),
            args.meta.display()
        ));
    }
    let start = Instant::now();
    let (layout, header) = match args.method {
        Method::Pca => (
            pca_2d(&vecs, dim).map_err(|e| e.to_string())?,
            "pca".to_string(),
        ),
        Method::Tsne => {
            let params = TsneParams {
                perplexity: args.perplexity,
                seed: args.seed,
                ..TsneParams::default()
            };
            let mut tsne = Tsne::new(&vecs, dim, params).map_err(|e| e.to_string())?;
            tsne.step(usize::MAX);
            let header = format!(
                "tsne perplexity={} iterations={} seed={}",
                params.perplexity,
                tsne.total_iters(),
                params.seed
            );
            (tsne.embedding(), header)
        }
        Method::Umap => {
            let params = UmapParams {
                n_neighbors: args.n_neighbors,
                min_dist: args.min_dist,
                seed: args.seed,
                ..UmapParams::default()
            };
            let mut umap = Umap::new(&vecs, dim, params).map_err(|e| e.to_string())?;
            umap.step(usize::MAX);
            let header = format!(
                "umap n_neighbors={} min_dist={} epochs={} seed={}",
                params.n_neighbors,
                params.min_dist,
                umap.total_epochs(),
                params.seed
            );
            (umap.embedding(), header)
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    write_layout(&args.out, &header, &layout)?;
    let trust = trustworthiness(&vecs, dim, &layout, args.trust_k).map_err(|e| e.to_string())?;
    println!(
        "{header}: {n} points in {seconds:.2} s; trustworthiness (k = {}) {trust:.4}; layout \
         kNN-1 {:.4} -> {}",
        args.trust_k,
        layout_knn1(&layout, &labels),
        args.out.display()
    );
    Ok(())
}

/// The layout file ([`tripletlab_core::embedding_projector::layout_tsv`]).
fn write_layout(out: &Path, header: &str, layout: &[[f32; 2]]) -> Result<(), String> {
    std::fs::write(
        out,
        tripletlab_core::embedding_projector::layout_tsv(header, layout),
    )
    .map_err(|e| format!("{}: {e}", out.display()))
}

/// The share of points whose nearest other point in the layout has their label.
fn layout_knn1(layout: &[[f32; 2]], labels: &[u32]) -> f64 {
    let d2 = |a: [f32; 2], b: [f32; 2]| {
        (f64::from(a[0]) - f64::from(b[0])).powi(2) + (f64::from(a[1]) - f64::from(b[1])).powi(2)
    };
    let right = (0..layout.len())
        .filter(|&i| {
            (0..layout.len())
                .filter(|&j| j != i)
                .min_by(|&a, &b| d2(layout[i], layout[a]).total_cmp(&d2(layout[i], layout[b])))
                .is_some_and(|j| labels[j] == labels[i])
        })
        .count();
    right as f64 / layout.len().max(1) as f64
}
