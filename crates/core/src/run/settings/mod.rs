//! One definition per setting of a run: its key (URL parameter, form field, the `field` of a
//! [`super::ConfigError`]), its command-line flag (the key in kebab case), the form's label,
//! other spellings accepted on input, one line of help, and, for the settings a
//! [`TrainConfig`] holds, how its value is written and parsed ([`Value`]). The command line's
//! flags, the page's URL reader and form, their checks and the error messages are all made from
//! this table; the ranges live once, in [`TrainConfig::problems`], and the defaults once, in
//! `TrainConfig::default`. Plain data: knows no command line, browser or screen.

mod text;

use super::{LrSchedule, Metric, Mining, Sampler, StepEngine, TrainConfig};
pub use text::{limit, number, on_off, switch, whole};

/// One setting.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// URL parameter, form field and error field.
    pub key: &'static str,
    /// Command-line flag, without `--`.
    pub flag: &'static str,
    /// Form label.
    pub label: &'static str,
    /// Other spellings accepted on input (flags and URL parameters).
    pub aliases: &'static [&'static str],
    /// What it does, in one line (the command line's help).
    pub help: &'static str,
    /// How a [`TrainConfig`] holds it; `None` for the settings outside one (the dataset, the
    /// recipe, the backend).
    pub value: Option<Value>,
}

/// Settings are the same when their keys are.
impl PartialEq for Setting {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Setting {}

/// How a setting's value lives in a [`TrainConfig`].
#[derive(Clone, Copy, Debug)]
pub struct Value {
    /// The value in a configuration, as the form, the URL and the command line write it.
    pub get: fn(&TrainConfig) -> String,
    /// Parses `raw` (trimmed; names in any case) into the configuration, or says what is wrong
    /// with it in one line.
    pub set: fn(&mut TrainConfig, &str) -> Result<(), String>,
    /// What kind of text it takes.
    pub kind: Kind,
    /// Whether the page's form reads it in this configuration (`K` only with P×K batches, the
    /// soft margin only with batch-hard mining); settings earlier in the form are already read.
    pub applies: fn(&TrainConfig) -> bool,
}

/// The kinds of text a setting takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole number.
    Whole,
    /// A decimal number.
    Number,
    /// One of these names (canonical, in listing order; see `names!`).
    Choice(&'static [&'static str]),
    /// On or off (a bare flag on the command line).
    Switch,
    /// A whole number, or empty for everything.
    Limit,
}

impl Setting {
    /// The value of this setting in `config` (`None` for a setting outside a configuration).
    pub fn get(&self, config: &TrainConfig) -> Option<String> {
        self.value.map(|v| (v.get)(config))
    }

    /// The canonical spelling of `raw` for a name or a switch (`L2` is `l2`, `yes` is `on`),
    /// `None` when it is not one (or the setting takes another kind of text).
    pub fn canonical(&self, raw: &str) -> Option<String> {
        let v = self.value?;
        if !matches!(v.kind, Kind::Choice(_) | Kind::Switch) {
            return None;
        }
        let mut config = TrainConfig::default();
        (v.set)(&mut config, raw).ok()?;
        Some((v.get)(&config))
    }
}

fn always(_: &TrainConfig) -> bool {
    true
}

/// A [`Value`] for the configuration's field `$field`: `$kind`, written by `$get`, parsed by
/// `$parse` (a `fn(&str) -> Result<T, String>`).
macro_rules! value {
    ($field:ident, $kind:expr, $get:expr, $parse:expr) => {
        value!($field, $kind, $get, $parse, always)
    };
    ($field:ident, $kind:expr, $get:expr, $parse:expr, $applies:expr) => {
        Some(Value {
            get: |c| $get(&c.$field),
            set: |c, raw| {
                c.$field = $parse(raw)?;
                Ok(())
            },
            kind: $kind,
            applies: $applies,
        })
    };
}

/// A whole-number field.
macro_rules! whole_value {
    ($field:ident) => {
        value!($field, Kind::Whole, ToString::to_string, whole)
    };
}

/// A field of names (`names!`): parsed by their lenient `FromStr`, written canonically.
macro_rules! choice_value {
    ($field:ident, $names:ty) => {
        value!(
            $field,
            Kind::Choice(&<$names>::NAMES),
            ToString::to_string,
            |raw: &str| raw.parse()
        )
    };
}

const fn setting(
    key: &'static str,
    flag: &'static str,
    label: &'static str,
    aliases: &'static [&'static str],
    help: &'static str,
    value: Option<Value>,
) -> Setting {
    Setting {
        key,
        flag,
        label,
        aliases,
        help,
        value,
    }
}

pub const DATASET: Setting = setting(
    "dataset",
    "dataset",
    "Dataset",
    &[],
    "mnist (bundled 8k/2k), fashion (bundled 60k/10k) or a folder with the four IDX files",
    None,
);
pub const EPOCHS: Setting = setting(
    "epochs",
    "epochs",
    "Epochs",
    &[],
    "Passes over the training set",
    whole_value!(epochs),
);
pub const BATCH: Setting = setting(
    "batch",
    "batch",
    "Batch size",
    &["batch-size", "batch_size"],
    "Examples per step",
    whole_value!(batch_size),
);
pub const LR: Setting = setting(
    "lr",
    "lr",
    "Learning rate",
    &["learning-rate"],
    "Adam's learning rate (the peak, with a schedule)",
    value!(lr, Kind::Number, ToString::to_string, number),
);
pub const MARGIN: Setting = setting(
    "margin",
    "margin",
    "Margin",
    &[],
    "Triplet margin",
    value!(margin, Kind::Number, |m: &f32| format!("{m:?}"), number),
);
pub const METRIC: Setting = setting(
    "metric",
    "metric",
    "Distance",
    &[],
    "l2 | squared-l2 | angular",
    choice_value!(metric, Metric),
);
pub const MINING: Setting = setting(
    "mining",
    "mining",
    "Mining",
    &[],
    "semi-hard | hard (batch-hard)",
    choice_value!(mining, Mining),
);
pub const SOFT: Setting = setting(
    "soft",
    "soft",
    "Soft margin",
    &["soft_margin", "soft-margin"],
    "Soft-margin batch-hard loss (with mining hard)",
    value!(
        soft,
        Kind::Switch,
        |on: &bool| on_off(*on).to_string(),
        switch,
        |c| c.mining == Mining::Hard
    ),
);
pub const SEED: Setting = setting(
    "seed",
    "seed",
    "Seed",
    &[],
    "Seed of the initialisation, the shuffle and the dropout masks",
    value!(seed, Kind::Whole, ToString::to_string, |raw: &str| whole(
        raw
    )
    .map_err(|m| format!("{m} ≥ 0"))),
);
pub const TRAIN_LIMIT: Setting = setting(
    "train_limit",
    "train-limit",
    "Training subset",
    &["limit-train", "limit_train"],
    "Train on the first N training examples",
    value!(train_limit, Kind::Limit, limit_text, limit),
);
pub const TEST_LIMIT: Setting = setting(
    "test_limit",
    "test-limit",
    "Test subset",
    &["limit-test", "limit_test"],
    "Embed, score and export the first N test examples",
    value!(test_limit, Kind::Limit, limit_text, limit),
);
pub const SHUFFLE_BUFFER: Setting = setting(
    "shuffle_buffer",
    "shuffle-buffer",
    "Shuffle buffer",
    &[],
    "Shuffle-buffer size; 0 = full shuffle",
    whole_value!(shuffle_buffer),
);
pub const DROPOUT: Setting = setting(
    "dropout",
    "dropout",
    "Dropout",
    &[],
    "Dropout rate of the net's two dropout layers",
    value!(dropout, Kind::Number, ToString::to_string, number),
);
pub const READ_EVERY: Setting = setting(
    "read_every",
    "read-every",
    "Losses per read",
    &[],
    "Steps whose losses are read from the device together",
    whole_value!(read_every),
);
pub const EMBED_EVERY: Setting = setting(
    "embed_every",
    "embed-every",
    "Projection every N steps",
    &[],
    "Embed the test set for the live projection every N steps (0: at each epoch's end)",
    whole_value!(embed_every),
);
pub const SAMPLER: Setting = setting(
    "sampler",
    "sampler",
    "Sampler",
    &[],
    "shuffle (the notebook's shuffle buffer) | pk (P classes × K examples a batch, without \
     replacement within an epoch)",
    choice_value!(sampler, Sampler),
);
pub const PER_CLASS: Setting = setting(
    "per_class",
    "per-class",
    "Per class (K)",
    &["k"],
    "K, the examples of each class in a P×K batch (at least 2, dividing the batch)",
    value!(per_class, Kind::Whole, ToString::to_string, whole, |c| c
        .sampler
        == Sampler::Pk),
);
pub const LR_SCHEDULE: Setting = setting(
    "lr_schedule",
    "lr-schedule",
    "LR schedule",
    &["schedule"],
    "constant | cosine (decay to 0 at the last step)",
    choice_value!(lr_schedule, LrSchedule),
);
pub const WARMUP_STEPS: Setting = setting(
    "warmup_steps",
    "warmup-steps",
    "Warm-up steps",
    &["warmup"],
    "Steps over which the learning rate climbs linearly from 0",
    whole_value!(warmup_steps),
);
pub const RECIPE: Setting = setting(
    "recipe",
    "recipe",
    "Recipe",
    &["preset"],
    "notebook (the original's settings) | tuned (P×K batches, warm-up and cosine decay, the \
     angular distance with a small margin; it fixes those settings)",
    None,
);
pub const ENGINE: Setting = setting(
    "engine",
    "engine",
    "Engine",
    &[],
    "How steps are computed: auto = fused (the fused CPU kernels on the CPU, the WGSL kernels on \
     wgpu) | autodiff (burn's autodiff of the net, any device)",
    choice_value!(engine, StepEngine),
);
pub const BACKEND: Setting = setting("backend", "backend", "Backend", &[], "cpu | wgpu", None);

/// How a subset's size is written: empty for everything.
fn limit_text(limit: &Option<usize>) -> String {
    limit.map_or_else(String::new, |n| n.to_string())
}

/// The settings of a run that both the page's form and `train`'s flags take, in form order.
pub const RUN: [Setting; 16] = [
    EPOCHS,
    BATCH,
    LR,
    LR_SCHEDULE,
    WARMUP_STEPS,
    MARGIN,
    METRIC,
    MINING,
    SOFT,
    SAMPLER,
    PER_CLASS,
    SHUFFLE_BUFFER,
    DROPOUT,
    SEED,
    TRAIN_LIMIT,
    TEST_LIMIT,
];

/// `first` then `rest`, as one array (`N` = both lengths together).
pub const fn concat<const A: usize, const B: usize, const N: usize>(
    first: [Setting; A],
    rest: [Setting; B],
) -> [Setting; N] {
    assert!(A + B == N, "the lengths add up");
    let mut out = [DATASET; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < A { first[i] } else { rest[i - A] };
        i += 1;
    }
    out
}

/// Every setting: the recipe and the dataset, a run's settings ([`RUN`]), then those only the
/// URL or the command line takes.
pub const ALL: [Setting; 22] = concat::<18, 4, 22>(
    concat([RECIPE, DATASET], RUN),
    [READ_EVERY, EMBED_EVERY, ENGINE, BACKEND],
);

/// The setting a name on input means: its key, its flag or an alias.
pub fn find(name: &str) -> Option<Setting> {
    let name = name.trim();
    ALL.into_iter()
        .find(|s| s.key == name || s.flag == name || s.aliases.contains(&name))
}

/// How the command line spells the setting whose key is `key` (`--batch`); the key itself for
/// a key outside the table.
pub fn flag_of(key: &str) -> String {
    format!("--{}", find(key).map_or(key, |s| s.flag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_per_setting_in_two_spellings_and_no_name_twice() {
        let mut names = Vec::new();
        for s in ALL {
            assert_eq!(s.flag, s.key.replace('_', "-"), "{}", s.key);
            names.push(s.key);
            if s.flag != s.key {
                names.push(s.flag);
            }
            names.extend(s.aliases);
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            names.len(),
            "a name means two settings: {names:?}"
        );
        assert_eq!(find("batch-size"), Some(BATCH));
        assert_eq!(find("train-limit"), Some(TRAIN_LIMIT));
        assert_eq!(find("limit_train"), Some(TRAIN_LIMIT));
        assert_eq!(find("nope"), None);
        assert_eq!(flag_of("train_limit"), "--train-limit");
    }

    /// The lists join in order, and each setting is read where it means something: K with
    /// P×K batches only, the soft margin with batch-hard mining only, the others always.
    #[test]
    fn lists_join_in_order_and_values_apply_where_they_mean_something() {
        let joined: [Setting; 3] = concat([EPOCHS, BATCH], [LR]);
        assert_eq!(joined, [EPOCHS, BATCH, LR]);
        let form: [Setting; 18] = concat([RECIPE, DATASET], RUN);
        assert_eq!(form[..2], [RECIPE, DATASET]);
        assert_eq!(form[2..], RUN);
        let plain = TrainConfig::default();
        let pk_hard = TrainConfig {
            sampler: Sampler::Pk,
            mining: Mining::Hard,
            ..TrainConfig::default()
        };
        for s in RUN {
            let applies = s.value.unwrap().applies;
            let conditional = s == PER_CLASS || s == SOFT;
            assert_eq!(applies(&plain), !conditional, "{}", s.key);
            assert!(applies(&pk_hard), "{}", s.key);
        }
    }

    /// The fields of `config` that differ from the defaults, by their serialised names.
    fn changed_fields(config: &TrainConfig) -> Vec<String> {
        let (a, b) = (
            serde_json::to_value(config).unwrap(),
            serde_json::to_value(TrainConfig::default()).unwrap(),
        );
        let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
        a.keys().filter(|k| a[*k] != b[*k]).cloned().collect()
    }

    /// Every setting a configuration holds reads back what it wrote, for the default and for
    /// another value, writes its own field and no other, and refuses nonsense with a line naming
    /// the text.
    #[test]
    fn each_value_writes_what_it_parses() {
        let others = [
            (EPOCHS, "3"),
            (BATCH, "40"),
            (LR, "0.004"),
            (MARGIN, "0.25"),
            (METRIC, "angular"),
            (MINING, "hard"),
            (SOFT, "on"),
            (SEED, "9"),
            (TRAIN_LIMIT, "640"),
            (TEST_LIMIT, "100"),
            (SHUFFLE_BUFFER, "64"),
            (DROPOUT, "0.5"),
            (READ_EVERY, "3"),
            (EMBED_EVERY, "5"),
            (SAMPLER, "pk"),
            (PER_CLASS, "8"),
            (LR_SCHEDULE, "cosine"),
            (WARMUP_STEPS, "7"),
            (ENGINE, "autodiff"),
        ];
        for s in ALL.into_iter().filter(|s| s.value.is_some()) {
            let v = s.value.unwrap();
            let (_, other) = others
                .iter()
                .find(|(o, _)| *o == s)
                .unwrap_or_else(|| panic!("no other value for {}", s.key));
            let mut config = TrainConfig::default();
            let default = (v.get)(&config);
            (v.set)(&mut config, &default).unwrap();
            assert_eq!(config, TrainConfig::default(), "{}", s.key);
            (v.set)(&mut config, other).unwrap();
            // It wrote its own field (the batch's is `batch_size`), and no other.
            let changed = changed_fields(&config);
            let own = if s == BATCH { "batch_size" } else { s.key };
            assert_eq!(changed, [own], "{}", s.key);
            assert_eq!((v.get)(&config), *other, "{}", s.key);
            let e = (v.set)(&mut config, "nonsense").unwrap_err();
            assert!(e.contains("nonsense"), "{}: {e}", s.key);
        }
        assert_eq!(METRIC.canonical(" L2 "), Some("l2".into()));
        assert_eq!(SOFT.canonical("Yes"), Some("on".into()));
        assert_eq!(METRIC.canonical("manhattan"), None);
        assert_eq!(EPOCHS.canonical("3"), None);
        assert_eq!(
            TRAIN_LIMIT.get(&TrainConfig::default()),
            Some(String::new())
        );
        assert_eq!(DATASET.get(&TrainConfig::default()), None);
    }
}
