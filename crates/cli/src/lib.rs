//! tripletlab-cli, the native command line: `train`, `embed`, `eval` and `loss`, on the engine
//! (`tripletlab-engine`) and the core. It owns the terminal (arguments, the progress bar, exit
//! codes, the files a run leaves); it must not know the page, the worker or a browser.
//!
//! This file: the command line (clap) and
//! reading inputs; `train`: a run in the terminal (the driver's host: a progress bar); `embed`:
//! a net's embeddings without training; `outputs`: the files both leave; `project`: a measured
//! 2-D layout; `tools`: `eval` and `loss`.

mod embed;
mod flags;
mod outputs;
mod project;
mod tools;
mod train;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use tripletlab_core::backend::BackendKind;
use tripletlab_core::data::{BundledDataset, Split, load_dir};
use tripletlab_core::export::text_of;
use tripletlab_core::run::settings;
use tripletlab_core::run::{ConfigError, Recipe, TrainConfig};
use tripletlab_engine::train::Trainer;

/// Largest text or weights file the CLI reads (case files, vecs/meta TSV, weights): 1 GiB.
const MAX_INPUT_BYTES: u64 = 1 << 30;

#[derive(Parser)]
#[command(
    name = "tripletlab",
    version,
    about = "Semi-hard triplet-loss embeddings of MNIST, TFA-exact, with burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the notebook's net and write vecs.tsv, meta.tsv, metrics.json, weights.safetensors.
    Train(TrainArgs),
    /// Embed and score the test set with given weights or the seed's untrained net (no
    /// training): vecs.tsv, meta.tsv, metrics.json, weights.safetensors.
    Embed(embed::EmbedArgs),
    /// A 2-D layout (PCA, t-SNE or UMAP) of a vecs.tsv, written as layout.tsv, with its
    /// trustworthiness.
    Project(project::ProjectArgs),
    /// Score any vecs.tsv/meta.tsv pair (kNN against a train pair when given).
    Eval {
        /// Test embeddings (numpy savetxt TSV).
        #[arg(long)]
        vecs: PathBuf,
        /// Test labels, one per line.
        #[arg(long)]
        meta: PathBuf,
        /// Reference (train) embeddings for kNN accuracy.
        #[arg(long, requires = "train_meta")]
        train_vecs: Option<PathBuf>,
        /// Reference (train) labels.
        #[arg(long, requires = "train_vecs")]
        train_meta: Option<PathBuf>,
    },
    /// The triplet loss (semi-hard, or batch-hard for a case with "mining": "hard") and its
    /// gradient for cases in the golden-file schema, as JSON on stdout.
    Loss {
        /// JSON file: {"cases": [...]} or [...], each with labels, embeddings, margin,
        /// distance_metric, name, and optionally mining ("semi-hard" or "hard") and soft.
        #[arg(long)]
        cases: PathBuf,
        /// Where the negatives are selected.
        #[arg(long, default_value = "auto", value_parser = ["auto", "device", "read-back"])]
        selection: String,
        /// Backend.
        #[arg(long, default_value = "cpu")]
        backend: BackendKind,
    },
}

/// The arguments of `train`: the run's settings as flags made from the table of settings
/// ([`flags::SettingFlags`], like the page's URL and form), the recipe, the dataset and the
/// backend. The settings a recipe fixes ([`tripletlab_core::run::RECIPE_SETTINGS`]) are the
/// recipe's when unset (the notebook's by default); set beside `--recipe tuned`, they are refused.
#[derive(clap::Args)]
struct TrainArgs {
    /// notebook (the original's settings) | tuned (P×K batches, warm-up and cosine decay, the
    /// angular distance with a small margin: see docs/results.md); tuned fixes batch, sampler,
    /// per-class, lr, lr-schedule, warmup-steps, margin, metric and mining.
    #[arg(long = settings::RECIPE.flag, aliases = settings::RECIPE.aliases.iter().copied(), default_value = "notebook")]
    recipe: Recipe,
    /// `mnist` (bundled 8k/2k), `fashion` (bundled 60k/10k) or a folder with the four IDX files.
    #[arg(long = settings::DATASET.flag, default_value = "mnist")]
    dataset: String,
    #[command(flatten)]
    settings: flags::SettingFlags,
    /// cpu | wgpu
    #[arg(long = settings::BACKEND.flag, default_value = "cpu")]
    backend: BackendKind,
    /// Skip the final kNN against the train embeddings.
    #[arg(long)]
    no_knn: bool,
    /// Start from these weights (safetensors, as `train` writes them) instead of the seed's
    /// initialisation.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// No progress bar (log lines per epoch on stdout instead).
    #[arg(long)]
    quiet: bool,
    /// Also write projector.zip: vecs.tsv, meta.tsv, sprite.png, projector_config.json and a
    /// README, everything the Embedding Projector needs (the page's "Download for the
    /// Projector").
    #[arg(long)]
    projector: bool,
}

/// The run configuration a `tripletlab train …` command line (`argv`, program name first) gives,
/// or the error the command would print: what the CLI's flags mean, without running anything.
pub fn train_config<S: AsRef<str>>(argv: &[S]) -> Result<TrainConfig, String> {
    let argv = argv.iter().map(AsRef::as_ref);
    match Cli::try_parse_from(argv)
        .map_err(|e| e.to_string())?
        .command
    {
        Command::Train(args) => train::config_of(&args),
        _ => Err("not a train command".into()),
    }
}

/// Runs the command line: parses the arguments, runs the command, exits with its status.
pub fn main() {
    tripletlab_engine::device::tune_allocator();
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        eprintln!("error: internal error: {msg}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One line, not clap's usage block.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("error: {first} (see tripletlab --help)");
            std::process::exit(2);
        }
    };
    let result = match cli.command {
        Command::Train(args) => train::train(args),
        Command::Embed(args) => embed::embed(args),
        Command::Project(args) => project::project(args),
        Command::Eval {
            vecs,
            meta,
            train_vecs,
            train_meta,
        } => tools::eval(&vecs, &meta, train_vecs.zip(train_meta)),
        Command::Loss {
            cases,
            selection,
            backend,
        } => tools::loss(&cases, &selection, backend),
    };
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    };
    std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
}

/// A run's trainer, from the `--weights` file when one is given ([`Trainer::starting_from`]).
fn trainer_from(
    config: TrainConfig,
    split: &Split,
    device: &burn::tensor::Device,
    weights: Option<&Path>,
) -> Result<Trainer, String> {
    let file = match weights {
        Some(path) => Some((path.display().to_string(), read_bytes(path)?)),
        None => None,
    };
    let weights = file.as_ref().map(|(n, b)| (n.as_str(), b.as_slice()));
    Trainer::starting_from(config, split, device, weights)
}

/// `Ok` for valid settings, else the error naming the flag.
fn validated(config: &TrainConfig) -> Result<(), String> {
    config.validate().map_err(flagged)
}

/// A refused setting as the command line says it: the flag, then why.
fn flagged(e: ConfigError) -> String {
    format!(
        "invalid setting {}: {}",
        settings::flag_of(&e.field),
        e.message
    )
}

/// The bytes of an input file, refused above [`MAX_INPUT_BYTES`] before it is read.
fn read_bytes(path: &Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_INPUT_BYTES {
        return Err(format!(
            "{}: the file is {size} bytes, more than the {} MiB limit on an input file",
            path.display(),
            MAX_INPUT_BYTES >> 20
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// An input file as UTF-8 text (the error names the line of the first invalid byte).
fn read(path: &Path) -> Result<String, String> {
    let bytes = read_bytes(path)?;
    text_of(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(String::from_utf8(bytes).unwrap_or_default())
}

fn load_dataset(name: &str) -> Result<Split, String> {
    let dir = match name.parse::<BundledDataset>() {
        Ok(bundled) => {
            let rel = Path::new("www/data").join(bundled.dir_name());
            let in_repo = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(&rel);
            if in_repo.is_dir() { in_repo } else { rel }
        }
        Err(_) => PathBuf::from(name),
    };
    if !dir.is_dir() {
        return Err(format!(
            "dataset '{name}' is neither mnist, fashion nor a folder with the four IDX files"
        ));
    }
    load_dir(&dir).map_err(|e| e.to_string())
}
