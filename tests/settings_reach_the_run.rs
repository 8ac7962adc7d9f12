//! Every setting a run takes, given a value other than its default through the command line,
//! the page's URL and the page's form (typed field by field), arrives unchanged in the run's
//! configuration; each one that shapes the training steps changes them (another loss within three
//! steps of the same seed: a cosine schedule first differs in the second update). A setting
//! dropped on any of the three ways fails here.

use tripletlab::page::form::{FORM_SETTINGS, Form};
use tripletlab_core::data::load_dir;
use tripletlab_core::run::settings::{self, Setting};
use tripletlab_core::run::{LrSchedule, Metric, Mining, Recipe, Sampler, TrainConfig};
use tripletlab_engine::device::cpu_device;
use tripletlab_engine::train::{StepOutcome, Trainer};

/// One case: the values given, the configuration they make, and whether the steps change.
struct Case {
    given: &'static [(Setting, &'static str)],
    want: fn(&mut TrainConfig),
    shapes_steps: bool,
}

const fn case(
    given: &'static [(Setting, &'static str)],
    want: fn(&mut TrainConfig),
    shapes_steps: bool,
) -> Case {
    Case {
        given,
        want,
        shapes_steps,
    }
}

/// Every setting of the page's form, each with a valid non-default value (K and the soft
/// margin with the sampler and mining that give them a meaning).
fn cases() -> Vec<Case> {
    use settings::*;
    vec![
        case(&[(EPOCHS, "3")], |c| c.epochs = 3, false),
        case(&[(BATCH, "40")], |c| c.batch_size = 40, true),
        case(&[(LR, "0.004")], |c| c.lr = 0.004, true),
        case(
            &[(LR_SCHEDULE, "cosine")],
            |c| c.lr_schedule = LrSchedule::Cosine,
            true,
        ),
        case(&[(WARMUP_STEPS, "7")], |c| c.warmup_steps = 7, true),
        case(&[(MARGIN, "0.25")], |c| c.margin = 0.25, true),
        case(&[(METRIC, "angular")], |c| c.metric = Metric::Angular, true),
        case(&[(MINING, "hard")], |c| c.mining = Mining::Hard, true),
        case(
            &[(MINING, "hard"), (SOFT, "on")],
            |c| (c.mining, c.soft) = (Mining::Hard, true),
            true,
        ),
        case(&[(SAMPLER, "pk")], |c| c.sampler = Sampler::Pk, true),
        case(
            &[(SAMPLER, "pk"), (PER_CLASS, "8")],
            |c| (c.sampler, c.per_class) = (Sampler::Pk, 8),
            true,
        ),
        case(&[(SHUFFLE_BUFFER, "64")], |c| c.shuffle_buffer = 64, true),
        case(&[(DROPOUT, "0.5")], |c| c.dropout = 0.5, true),
        case(&[(SEED, "9")], |c| c.seed = 9, true),
        case(
            &[(TRAIN_LIMIT, "640")],
            |c| c.train_limit = Some(640),
            false,
        ),
        case(&[(TEST_LIMIT, "100")], |c| c.test_limit = Some(100), false),
        case(&[(RECIPE, "tuned")], |c| Recipe::Tuned.apply(c), true),
    ]
}

fn expected(case: &Case) -> TrainConfig {
    let mut want = TrainConfig::default();
    (case.want)(&mut want);
    want
}

fn from_cli(given: &[(Setting, &str)]) -> Result<TrainConfig, String> {
    let mut argv = vec!["tripletlab".to_string(), "train".into(), "--out=x".into()];
    for (s, v) in given {
        argv.push(format!("--{}", s.flag));
        // The soft margin is a switch on the command line.
        if *s != settings::SOFT {
            argv.push(v.to_string());
        }
    }
    tripletlab_cli::train_config(&argv)
}

fn from_url(given: &[(Setting, &str)]) -> Option<TrainConfig> {
    let pairs: Vec<(String, String)> = given
        .iter()
        .map(|(s, v)| (s.key.to_string(), v.to_string()))
        .collect();
    Form::from_pairs(&pairs).check(false, None, None).config
}

fn from_form(given: &[(Setting, &str)]) -> Option<TrainConfig> {
    let mut form = Form::default();
    for (s, v) in given {
        form.set(s.key, v.to_string());
    }
    form.check(false, None, None).config
}

#[test]
fn every_setting_arrives_through_the_cli_the_url_and_the_form() {
    let cases = cases();
    // Every field of the form has its case.
    for s in FORM_SETTINGS {
        assert!(
            s == settings::DATASET || cases.iter().any(|c| c.given.iter().any(|g| g.0 == s)),
            "no case gives {}",
            s.key
        );
    }
    for case in &cases {
        let want = expected(case);
        assert_ne!(want, TrainConfig::default(), "{:?}", case.given);
        let what = format!(
            "{:?}",
            case.given
                .iter()
                .map(|g| (g.0.key, g.1))
                .collect::<Vec<_>>()
        );
        assert_eq!(from_cli(case.given).as_ref(), Ok(&want), "CLI {what}");
        assert_eq!(from_url(case.given).as_ref(), Some(&want), "URL {what}");
        assert_eq!(from_form(case.given).as_ref(), Some(&want), "form {what}");
    }
}

/// The first three steps' losses of a run with `config` (the bundled MNIST, the CPU engine).
fn first_losses(config: TrainConfig) -> Vec<f32> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/data/mnist");
    let split = load_dir(&dir).expect("bundled MNIST");
    let config = TrainConfig {
        train_limit: Some(640),
        test_limit: Some(16),
        ..config
    };
    let mut trainer = Trainer::new(config, &split, &cpu_device()).expect("a trainer");
    (0..3)
        .map(|_| match trainer.step().expect("a step") {
            StepOutcome::Trained { readout, .. } => {
                readout.into_data().try_into_vec::<f32>().expect("f32")[0]
            }
            StepOutcome::Skipped { reason } => panic!("skipped: {reason}"),
        })
        .collect()
}

#[test]
fn every_setting_that_shapes_the_steps_changes_them() {
    let base = first_losses(TrainConfig::default());
    assert_eq!(
        base,
        first_losses(TrainConfig::default()),
        "a run repeats itself"
    );
    for case in cases().iter().filter(|c| c.shapes_steps) {
        let losses = first_losses(expected(case));
        assert_ne!(
            losses,
            base,
            "{:?} leaves the steps as they were",
            case.given.iter().map(|g| g.0.key).collect::<Vec<_>>()
        );
    }
}
