//! `tripletlab train`: the driver's run in a terminal (a progress bar, or log lines with
//! `--quiet`), and its outputs (vecs.tsv, meta.tsv, metrics.json, weights.safetensors), written
//! for the last state the engine kept even when the run fails.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use tripletlab_core::metrics::evaluate;
use tripletlab_core::run::{
    EpochFigures, Event, LrSchedule, Mining, MiningStats, Recipe, Summary, TrainConfig,
    describe_schedule, kind_names,
};
use tripletlab_engine::device::native_device;
use tripletlab_engine::model::EMBEDDING_DIM;
use tripletlab_engine::train::{Host, Trainer, run};

use super::outputs::{add_scores, raw_pixel_knn1, report_of, write_embedding_files, write_report};
use super::*;

struct Terminal {
    bar: ProgressBar,
    start: Instant,
    quiet: bool,
    /// Batches skipped in the current epoch (said on its line).
    skipped: usize,
    steps_per_epoch: usize,
    /// How the run mines (names the figures on the epoch line).
    mining: Mining,
}

impl Terminal {
    /// A log line: on stdout with `--quiet` (stderr is for the one line of an error), else
    /// above the progress bar.
    fn say(&self, line: String) {
        if self.quiet {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }
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
                ..
            } => {
                self.steps_per_epoch = steps_per_epoch;
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
                self.skipped += 1;
                self.bar
                    .println(format!("epoch {epoch} step {step}: skipped ({reason})"));
            }
            Event::EpochEnd {
                epoch,
                mean_loss,
                figures,
                metrics,
                elapsed_s,
            } => {
                let EpochFigures { mining, collapse } = *figures;
                let mut line = format!(
                    "epoch {epoch}: loss {mean_loss:.4}  {}  test P@1 {:.4}  MAP@R {:.4}  ({elapsed_s:.1} s)",
                    mining_figures(&mining, self.mining),
                    metrics.precision_at_1,
                    metrics.map_at_r
                );
                if self.skipped > 0 {
                    line.push_str(&format!(
                        "  {} of {} batches skipped (no loss defined)",
                        self.skipped, self.steps_per_epoch
                    ));
                    self.skipped = 0;
                }
                if let Some(warning) = collapse.warning() {
                    line.push_str(&format!("\nwarning: {warning}"));
                }
                self.say(line);
            }
            Event::Embeddings { .. } | Event::Triplets(_) | Event::Done(_) | Event::Failed(_) => {}
        }
    }

    fn now_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }
}

/// An epoch's mining figures on its log line: percentages of the loss terms, mean distances.
/// Batch-hard names them for what they are there: the hardest negative farther than the hardest
/// positive (in order) or not (violated).
fn mining_figures(m: &MiningStats, mining: Mining) -> String {
    let percent = |f: f64| format!("{:.1}%", 100.0 * f);
    let (farther, not_farther) = kind_names(mining);
    format!(
        "{farther} {}  {not_farther} {}  active {}  d_ap {:.3}  d_an {:.3}",
        percent(m.semi_hard_fraction()),
        percent(m.fallback_fraction()),
        percent(m.active_fraction()),
        m.mean_d_ap(),
        m.mean_d_an()
    )
}

/// The run's settings from the flags, validated (an error names the flag): the recipe's, then
/// the flags; a flag of a setting the recipe fixes is refused.
pub(super) fn config_of(args: &TrainArgs) -> Result<TrainConfig, String> {
    let mut config = TrainConfig {
        knn_against_train: !args.no_knn,
        ..TrainConfig::default()
    };
    args.recipe.apply(&mut config);
    if let Some((s, _)) = args
        .settings
        .given
        .iter()
        .find(|(s, _)| args.recipe.locks().contains(s))
    {
        return Err(format!(
            "invalid setting --{}: --{} {} sets it (leave one of the two out)",
            s.flag,
            settings::RECIPE.flag,
            args.recipe
        ));
    }
    args.settings.apply(&mut config)?;
    validated(&config)?;
    Ok(config)
}

pub(super) fn train(args: TrainArgs) -> Result<(), String> {
    let config = config_of(&args)?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let split = load_dataset(&args.dataset)?;
    // P×K batches need P classes with K examples in the (limited) training set: said at the
    // flag before anything starts.
    let train = &split.train.labels;
    let limit = config
        .train_limit
        .map_or(train.len(), |n| n.min(train.len()));
    config.pk_epoch(&train[..limit]).map_err(flagged)?;
    let device = native_device(args.backend)?;
    let mut trainer = trainer_from(config.clone(), &split, &device, args.weights.as_deref())?;

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
        skipped: 0,
        steps_per_epoch: 0,
        mining: config.mining,
    };
    // How the batches and the rate go, where they are not the notebook's.
    let mut said = Vec::new();
    if args.recipe != Recipe::Notebook {
        said.push(format!(
            "recipe {}: {}",
            args.recipe,
            args.recipe.describe()
        ));
    }
    if let Some(pk) = trainer.pk_epoch() {
        said.push(pk.describe());
    }
    if config.lr_schedule != LrSchedule::Constant || config.warmup_steps > 0 {
        said.push(format!("learning rate {}", describe_schedule(&config)));
    }
    for line in said {
        host.say(line);
    }
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
    let test_vectors = write_embedding_files(&args.out, trainer)?;
    let mut report = report_of(&args.dataset, args.backend, trainer, &test_vectors);
    report["config"] = json!(config);
    report["recipe"] = json!(args.recipe.as_str());
    if let Some(pk) = trainer.pk_epoch() {
        report["pk_epoch"] = json!(pk);
    }
    match outcome {
        Ok(summary) => {
            add_scores(&mut report, &summary.metrics);
            if config.knn_against_train {
                report["raw_pixel_knn1"] = json!(raw_pixel_knn1(trainer)?);
            }
            report["examples_per_s"] = json!(summary.examples_per_s);
            report["train_seconds"] = json!(summary.train_seconds);
            report["total_seconds"] = json!(summary.total_seconds);
            report["epoch_losses"] = json!(summary.epoch_losses);
            add_epoch_figures(&mut report, summary);
            report["skipped_batches"] = json!(summary.skipped_batches);
            report["steps"] = json!(summary.steps);
        }
        Err(error) => {
            report["error"] = json!(error);
            let labels = trainer.test_set().labels_u32();
            match evaluate(&test_vectors, &labels, None, EMBEDDING_DIM) {
                Ok(m) => {
                    report["precision_at_1"] = json!(m.precision_at_1);
                    report["map_at_r"] = json!(m.map_at_r);
                }
                Err(e) => report["metrics_error"] = json!(e.to_string()),
            }
        }
    }
    if args.projector {
        let (zip, points) = tripletlab_core::embedding_projector::bundle(
            "tripletlab",
            &test_vectors,
            EMBEDDING_DIM,
            trainer.test_set(),
        )
        .map_err(|e| e.to_string())?;
        report["projector_points"] = json!(points);
        let path = args.out.join("projector.zip");
        std::fs::write(&path, zip).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    write_report(&args.out, &report)
}

/// The per-epoch mining statistics and collapse indicator into metrics.json, one array each,
/// one value per completed epoch (`null` where undefined: no terms, or fewer than two rows).
fn add_epoch_figures(report: &mut serde_json::Value, summary: &Summary) {
    let epochs = &summary.epoch_figures;
    let each =
        |f: fn(&MiningStats) -> f64| json!(epochs.iter().map(|e| f(&e.mining)).collect::<Vec<_>>());
    report["semi_hard_fraction"] = each(MiningStats::semi_hard_fraction);
    report["fallback_fraction"] = each(MiningStats::fallback_fraction);
    report["no_negative_fraction"] = each(MiningStats::no_negative_fraction);
    report["active_fraction"] = each(MiningStats::active_fraction);
    report["mean_d_ap"] = each(MiningStats::mean_d_ap);
    report["mean_d_an"] = each(MiningStats::mean_d_an);
    report["epoch_mining"] = json!(epochs.iter().map(|e| e.mining).collect::<Vec<_>>());
    report["epoch_collapse"] = json!(epochs.iter().map(|e| e.collapse).collect::<Vec<_>>());
}
