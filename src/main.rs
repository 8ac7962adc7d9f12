//! `tripletlab` — the native CLI (train / eval / loss). In the browser build this binary is the
//! page instead (see `tripletlab::web`).
//!
//! Every failure ends in one line on stderr and a non-zero exit. A training run that fails after
//! it started (the loss diverged, a device failed) still writes its outputs for the last state
//! the engine kept (an engine never applies a step whose loss is not finite), with the error in
//! `metrics.json`.

#[cfg(target_arch = "wasm32")]
fn main() {
    tripletlab::app::start();
}

#[cfg(all(not(target_arch = "wasm32"), feature = "engine"))]
fn main() {
    cli::main();
}

#[cfg(all(not(target_arch = "wasm32"), not(feature = "engine")))]
fn main() -> std::process::ExitCode {
    eprintln!("this tripletlab was built without the `engine` feature: nothing to train with");
    std::process::ExitCode::from(2)
}

#[cfg(all(not(target_arch = "wasm32"), feature = "engine"))]
mod cli {
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::time::Instant;

    use clap::{Parser, Subcommand};
    use indicatif::{ProgressBar, ProgressStyle};
    use serde_json::json;

    use tripletlab::backend::{BackendKind, native_device};
    use tripletlab::cases::{evaluate_case, parse_cases, results_json};
    use tripletlab::data::{BundledDataset, Split, load_dir};
    use tripletlab::export::{
        parse_meta_tsv, parse_vecs_tsv, text_of, write_meta_tsv, write_vecs_tsv,
    };
    use tripletlab::loss::{Metric, Mining, Selection};
    use tripletlab::metrics::evaluate;
    use tripletlab::model::{EMBEDDING_DIM, EmbedNetConfig};
    use tripletlab::train::settings;
    use tripletlab::train::{Event, Host, StepEngine, Summary, TrainConfig, Trainer, run};

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
        /// Semi-hard loss and gradient for cases in the golden-file schema, as JSON on stdout.
        Loss {
            /// JSON file: {"cases": [...]} or [...], each with labels, embeddings, margin,
            /// distance_metric, name.
            #[arg(long)]
            cases: PathBuf,
            /// Where the negatives are selected.
            #[arg(long, default_value = "auto", value_parser = ["auto", "device", "host"])]
            selection: String,
            /// Backend.
            #[arg(long, default_value = "cpu")]
            backend: BackendKind,
        },
    }

    /// The flags of `train`: each setting's name and aliases come from
    /// [`tripletlab::train::settings`], like the page's URL and form.
    #[derive(clap::Args)]
    struct TrainArgs {
        /// `mnist` (bundled 8k/2k), `fashion` (bundled 60k/10k) or a folder with the four IDX files.
        #[arg(long = settings::DATASET.flag, default_value = "mnist")]
        dataset: String,
        #[arg(long = settings::EPOCHS.flag, default_value_t = 5)]
        epochs: usize,
        #[arg(long = settings::BATCH.flag, aliases = settings::BATCH.aliases.iter().copied(), default_value_t = 32)]
        batch_size: usize,
        #[arg(long = settings::LR.flag, aliases = settings::LR.aliases.iter().copied(), default_value_t = 1e-3)]
        lr: f64,
        #[arg(long = settings::MARGIN.flag, default_value_t = 1.0)]
        margin: f32,
        /// l2 | squared-l2 | angular
        #[arg(long = settings::METRIC.flag, default_value = "l2")]
        metric: Metric,
        /// semi-hard | hard
        #[arg(long = settings::MINING.flag, default_value = "semi-hard")]
        mining: Mining,
        /// Soft-margin batch-hard loss (with --mining hard).
        #[arg(long)]
        soft: bool,
        #[arg(long = settings::SEED.flag, default_value_t = 0)]
        seed: u64,
        /// Shuffle-buffer size; 0 = full shuffle.
        #[arg(long = settings::SHUFFLE_BUFFER.flag, default_value_t = 1024)]
        shuffle_buffer: usize,
        /// Train on the first N training examples.
        #[arg(long = settings::TRAIN_LIMIT.flag, aliases = settings::TRAIN_LIMIT.aliases.iter().copied())]
        train_limit: Option<usize>,
        /// Embed, score and export the first N test examples.
        #[arg(long = settings::TEST_LIMIT.flag, aliases = settings::TEST_LIMIT.aliases.iter().copied())]
        test_limit: Option<usize>,
        /// cpu | wgpu
        #[arg(long = settings::BACKEND.flag, default_value = "cpu")]
        backend: BackendKind,
        /// How steps are computed: auto = fused (hand-fused kernels: host kernels on the CPU,
        /// WGSL kernels on wgpu) | autodiff (burn's autodiff of the net, any device).
        #[arg(long = settings::ENGINE.flag, default_value = "auto")]
        engine: StepEngine,
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
    }

    pub fn main() {
        tripletlab::backend::tune_allocator();
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
            Command::Train(args) => train(args),
            Command::Eval {
                vecs,
                meta,
                train_vecs,
                train_meta,
            } => eval(&vecs, &meta, train_vecs.zip(train_meta)),
            Command::Loss {
                cases,
                selection,
                backend,
            } => loss(&cases, &selection, backend),
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
                let in_repo = Path::new(env!("CARGO_MANIFEST_DIR")).join(&rel);
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

    struct Terminal {
        bar: ProgressBar,
        start: Instant,
        quiet: bool,
    }

    impl Host for Terminal {
        async fn proceed(&mut self) -> bool {
            true
        }

        fn event(&mut self, event: Event) {
            match event {
                Event::Started {
                    epochs,
                    steps_per_epoch,
                    train_examples,
                    test_examples,
                } => {
                    self.bar.set_length((epochs * steps_per_epoch) as u64);
                    self.bar.println(format!(
                        "training on {train_examples} examples, {steps_per_epoch} steps/epoch × {epochs} epochs; {test_examples} test examples"
                    ));
                }
                Event::Step {
                    epoch,
                    step,
                    steps_per_epoch,
                    global_step,
                    loss,
                    examples_per_s,
                    ..
                } => {
                    self.bar.set_position(global_step as u64);
                    self.bar.set_message(format!(
                        "epoch {epoch} step {step}/{steps_per_epoch} loss {loss:.4} {examples_per_s:.0} ex/s"
                    ));
                }
                Event::Skipped {
                    epoch,
                    step,
                    reason,
                } => {
                    self.bar
                        .println(format!("epoch {epoch} step {step}: skipped ({reason})"));
                }
                Event::EpochEnd {
                    epoch,
                    mean_loss,
                    metrics,
                    elapsed_s,
                } => {
                    let line = format!(
                        "epoch {epoch}: loss {mean_loss:.4}  test P@1 {:.4}  MAP@R {:.4}  ({elapsed_s:.1} s)",
                        metrics.precision_at_1, metrics.map_at_r
                    );
                    if self.quiet {
                        // stdout: stderr is for the one line of an error.
                        println!("{line}");
                    } else {
                        self.bar.println(line);
                    }
                }
                Event::Embeddings { .. } | Event::Done(_) | Event::Failed(_) => {}
            }
        }

        fn now_ms(&self) -> f64 {
            self.start.elapsed().as_secs_f64() * 1000.0
        }
    }

    fn train(args: TrainArgs) -> Result<(), String> {
        let config = TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            lr: args.lr,
            margin: args.margin,
            metric: args.metric,
            mining: args.mining,
            soft: args.soft,
            seed: args.seed,
            shuffle_buffer: args.shuffle_buffer,
            train_limit: args.train_limit,
            test_limit: args.test_limit,
            knn_against_train: !args.no_knn,
            engine: args.engine,
            ..TrainConfig::default()
        };
        config.validate().map_err(|e| {
            format!(
                "invalid setting {}: {}",
                settings::flag_of(&e.field),
                e.message
            )
        })?;
        std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
        let split = load_dataset(&args.dataset)?;
        let device = native_device(args.backend)?;
        let mut trainer = match &args.weights {
            Some(path) => {
                let model = EmbedNetConfig::new()
                    .load_safetensors(&read_bytes(path)?, &device)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Trainer::with_model(config.clone(), &split, &device, model)
            }
            None => Trainer::new(config.clone(), &split, &device),
        }
        .map_err(|e| e.to_string())?;

        let bar = if args.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
            )
            .expect("valid template"),
        );
        let mut host = Terminal {
            bar,
            start: Instant::now(),
            quiet: args.quiet,
        };
        let outcome = pollster::block_on(run(&mut trainer, &mut host));
        host.bar.finish_and_clear();
        match outcome {
            Ok(summary) => {
                write_outputs(&args, &config, &trainer, Ok(&summary))?;
                let m = &summary.metrics;
                println!(
                    "done: kNN-1 {}  kNN-5 {}  P@1 {:.4}  MAP@R {:.4}  {:.0} ex/s  -> {}",
                    m.knn1_acc.map_or("-".into(), |v| format!("{v:.4}")),
                    m.knn5_acc.map_or("-".into(), |v| format!("{v:.4}")),
                    m.precision_at_1,
                    m.map_at_r,
                    summary.examples_per_s,
                    args.out.display()
                );
                Ok(())
            }
            // Nothing already learnt is lost: the engines never apply a non-finite step, so the
            // trainer holds the last finite weights; write them and what they give.
            Err(e) => match write_outputs(&args, &config, &trainer, Err(&e.to_string())) {
                Ok(()) => Err(format!(
                    "{e}; the last finite state was written to {}",
                    args.out.display()
                )),
                Err(w) => Err(format!("{e} (writing the outputs failed too: {w})")),
            },
        }
    }

    /// Writes vecs.tsv, meta.tsv, weights.safetensors and metrics.json for the trainer's current
    /// weights: after a finished run (`Ok(summary)`) or a failed one (`Err(message)`, which goes
    /// into metrics.json with the test-set scores of those weights where they are finite).
    fn write_outputs(
        args: &TrainArgs,
        config: &TrainConfig,
        trainer: &Trainer,
        outcome: Result<&Summary, &str>,
    ) -> Result<(), String> {
        let test_vectors =
            pollster::block_on(trainer.embed(trainer.test_set())).map_err(|e| e.to_string())?;
        let test_labels = &trainer.test_set().labels;
        let write =
            |name: &str,
             f: &dyn Fn(&mut std::io::BufWriter<std::fs::File>) -> Result<(), String>| {
                let path = args.out.join(name);
                let file =
                    std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let mut w = std::io::BufWriter::new(file);
                f(&mut w)?;
                use std::io::Write;
                w.flush().map_err(|e| format!("{}: {e}", path.display()))
            };
        write("vecs.tsv", &|w| {
            write_vecs_tsv(w, &test_vectors, EMBEDDING_DIM).map_err(|e| e.to_string())
        })?;
        write("meta.tsv", &|w| {
            write_meta_tsv(w, test_labels).map_err(|e| e.to_string())
        })?;
        let weights =
            pollster::block_on(trainer.model().to_safetensors()).map_err(|e| e.to_string())?;
        let weights_path = args.out.join("weights.safetensors");
        std::fs::write(&weights_path, weights)
            .map_err(|e| format!("{}: {e}", weights_path.display()))?;
        let mut report = json!({
            "dataset": args.dataset,
            "backend": args.backend.as_str(),
            "engine": trainer.engine().as_str(),
            "config": config,
            "n_train": trainer.train_set().len(),
            "n_test": trainer.test_set().len(),
        });
        match outcome {
            Ok(summary) => {
                let m = &summary.metrics;
                report["knn1_acc"] = json!(m.knn1_acc);
                report["knn5_acc"] = json!(m.knn5_acc);
                report["precision_at_1"] = json!(m.precision_at_1);
                report["map_at_r"] = json!(m.map_at_r);
                report["examples_per_s"] = json!(summary.examples_per_s);
                report["train_seconds"] = json!(summary.train_seconds);
                report["total_seconds"] = json!(summary.total_seconds);
                report["epoch_losses"] = json!(summary.epoch_losses);
                report["skipped_batches"] = json!(summary.skipped_batches);
                report["steps"] = json!(summary.steps);
            }
            Err(error) => {
                report["error"] = json!(error);
                let labels: Vec<u32> = test_labels.iter().map(|&l| u32::from(l)).collect();
                match evaluate(&test_vectors, &labels, None, EMBEDDING_DIM) {
                    Ok(m) => {
                        report["precision_at_1"] = json!(m.precision_at_1);
                        report["map_at_r"] = json!(m.map_at_r);
                    }
                    Err(e) => report["metrics_error"] = json!(e.to_string()),
                }
            }
        }
        let metrics_path = args.out.join("metrics.json");
        std::fs::write(
            &metrics_path,
            serde_json::to_string_pretty(&report).expect("json"),
        )
        .map_err(|e| format!("{}: {e}", metrics_path.display()))
    }

    fn eval(vecs: &Path, meta: &Path, train: Option<(PathBuf, PathBuf)>) -> Result<(), String> {
        let load = |v: &Path, m: &Path| -> Result<(Vec<f32>, usize, Vec<u32>), String> {
            let (x, dim) =
                parse_vecs_tsv(&read(v)?).map_err(|e| format!("{}: {e}", v.display()))?;
            let labels = parse_meta_tsv(&read(m)?).map_err(|e| format!("{}: {e}", m.display()))?;
            if labels.len() * dim != x.len() {
                return Err(format!(
                    "{} has {} rows but {} has {} labels",
                    v.display(),
                    x.len() / dim.max(1),
                    m.display(),
                    labels.len()
                ));
            }
            Ok((x, dim, labels))
        };
        let (x, dim, labels) = load(vecs, meta)?;
        let train = match train {
            Some((v, m)) => {
                let (tx, tdim, tl) = load(&v, &m)?;
                if tdim != dim {
                    return Err(format!(
                        "train vectors have {tdim} columns, test vectors {dim}"
                    ));
                }
                Some((tx, tl))
            }
            None => None,
        };
        let metrics = evaluate(
            &x,
            &labels,
            train.as_ref().map(|(a, b)| (a.as_slice(), b.as_slice())),
            dim,
        )
        .map_err(|e| e.to_string())?;
        println!("{}", serde_json::to_string_pretty(&metrics).expect("json"));
        Ok(())
    }

    fn loss(cases: &Path, selection: &str, backend: BackendKind) -> Result<(), String> {
        let cases = parse_cases(&read(cases)?).map_err(|e| format!("{}: {e}", cases.display()))?;
        let selection = match selection {
            "device" => Selection::Device,
            "host" => Selection::Host,
            _ => Selection::Auto,
        };
        let device = native_device(backend)?;
        let results: Vec<_> = cases
            .iter()
            .map(|c| evaluate_case(c, &device, selection))
            .collect();
        println!("{}", results_json(&results));
        Ok(())
    }
}
