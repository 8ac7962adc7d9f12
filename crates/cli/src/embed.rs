//! `tripletlab embed`: a net's embeddings without a single step of training: given weights (a
//! file `train` or the page wrote) or the seed's untrained initialisation. It writes and scores
//! them exactly as the end of `train` does, so a run can be compared with its untrained start
//! (same data, same seed) and a weights file with the embeddings it came with.

use serde_json::json;

use tripletlab_core::metrics::evaluate;
use tripletlab_core::run::{TrainConfig, settings};
use tripletlab_engine::device::native_device;
use tripletlab_engine::model::EMBEDDING_DIM;

use super::outputs::{add_scores, raw_pixel_knn1, report_of, write_embedding_files, write_report};
use super::*;

/// The flags of `embed`: the data flags are `train`'s.
#[derive(clap::Args)]
pub(super) struct EmbedArgs {
    /// These weights (safetensors, as `train` or the page write them); without it, the seed's
    /// untrained initialisation.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Seed of the initialisation (used without --weights).
    #[arg(long = settings::SEED.flag, default_value_t = 0)]
    seed: u64,
    /// `mnist`, `fashion` or a folder with the four IDX files.
    #[arg(long = settings::DATASET.flag, default_value = "mnist")]
    dataset: String,
    /// Embed the first N training examples (the kNN references).
    #[arg(long = settings::TRAIN_LIMIT.flag, aliases = settings::TRAIN_LIMIT.aliases.iter().copied())]
    train_limit: Option<usize>,
    /// Embed, score and export the first N test examples.
    #[arg(long = settings::TEST_LIMIT.flag, aliases = settings::TEST_LIMIT.aliases.iter().copied())]
    test_limit: Option<usize>,
    /// Batch size of `test_loss` (the run's loss on the test embeddings).
    #[arg(long = settings::BATCH.flag, aliases = settings::BATCH.aliases.iter().copied(), default_value_t = 32)]
    batch_size: usize,
    /// cpu | wgpu
    #[arg(long = settings::BACKEND.flag, default_value = "cpu")]
    backend: BackendKind,
    /// Skip the kNN against the train embeddings.
    #[arg(long)]
    no_knn: bool,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

pub(super) fn embed(args: EmbedArgs) -> Result<(), String> {
    let config = TrainConfig {
        seed: args.seed,
        batch_size: args.batch_size,
        train_limit: args.train_limit,
        test_limit: args.test_limit,
        knn_against_train: !args.no_knn,
        ..TrainConfig::default()
    };
    validated(&config)?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let split = load_dataset(&args.dataset)?;
    let device = native_device(args.backend)?;
    let trainer = trainer_from(config, &split, &device, args.weights.as_deref())?;

    let test = write_embedding_files(&args.out, &trainer)?;
    let train = if args.no_knn {
        None
    } else {
        let vectors =
            pollster::block_on(trainer.embed(trainer.train_set())).map_err(|e| e.to_string())?;
        Some((vectors, trainer.train_set().labels_u32()))
    };
    let test_labels = trainer.test_set().labels_u32();
    let m = evaluate(
        &test,
        &test_labels,
        train.as_ref().map(|(v, l)| (v.as_slice(), l.as_slice())),
        EMBEDDING_DIM,
    )
    .map_err(|e| e.to_string())?;
    let mut report = report_of(&args.dataset, args.backend, &trainer, &test);
    report["weights"] = json!(args.weights.as_ref().map(|p| p.display().to_string()));
    report["seed"] = json!(args.weights.is_none().then_some(args.seed));
    add_scores(&mut report, &m);
    if !args.no_knn {
        report["raw_pixel_knn1"] = json!(raw_pixel_knn1(&trainer)?);
    }
    write_report(&args.out, &report)?;
    println!(
        "kNN-1 {}  P@1 {:.4}  MAP@R {:.4}  test loss {}  -> {}",
        m.knn1_acc.map_or("-".into(), |v| format!("{v:.4}")),
        m.precision_at_1,
        m.map_at_r,
        report["test_loss"]
            .as_f64()
            .map_or("-".into(), |v| format!("{v:.4}")),
        args.out.display()
    );
    Ok(())
}
