//! One table of a run's settings: for each, the key (URL parameter, form field, the `field` of a
//! [`super::ConfigError`]), the command-line flag (the same name in kebab case), the form's
//! label, and older or other spellings accepted on input. The CLI, the page's form and URL, and
//! the error messages all read their names from here. Plain data: knows no parser or screen.

/// One setting's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// URL parameter, form field and error field.
    pub key: &'static str,
    /// Command-line flag, without `--`.
    pub flag: &'static str,
    /// Form label.
    pub label: &'static str,
    /// Other spellings accepted on input (flags and URL parameters).
    pub aliases: &'static [&'static str],
}

const fn setting(
    key: &'static str,
    flag: &'static str,
    label: &'static str,
    aliases: &'static [&'static str],
) -> Setting {
    Setting {
        key,
        flag,
        label,
        aliases,
    }
}

pub const DATASET: Setting = setting("dataset", "dataset", "Dataset", &[]);
pub const EPOCHS: Setting = setting("epochs", "epochs", "Epochs", &[]);
pub const BATCH: Setting = setting(
    "batch",
    "batch",
    "Batch size",
    &["batch-size", "batch_size"],
);
pub const LR: Setting = setting("lr", "lr", "Learning rate", &["learning-rate"]);
pub const MARGIN: Setting = setting("margin", "margin", "Margin", &[]);
pub const METRIC: Setting = setting("metric", "metric", "Distance", &[]);
pub const MINING: Setting = setting("mining", "mining", "Mining", &[]);
pub const SOFT: Setting = setting(
    "soft",
    "soft",
    "Soft margin",
    &["soft_margin", "soft-margin"],
);
pub const SEED: Setting = setting("seed", "seed", "Seed", &[]);
pub const TRAIN_LIMIT: Setting = setting(
    "train_limit",
    "train-limit",
    "Training subset",
    &["limit-train", "limit_train"],
);
pub const TEST_LIMIT: Setting = setting(
    "test_limit",
    "test-limit",
    "Test subset",
    &["limit-test", "limit_test"],
);
pub const SHUFFLE_BUFFER: Setting =
    setting("shuffle_buffer", "shuffle-buffer", "Shuffle buffer", &[]);
pub const DROPOUT: Setting = setting("dropout", "dropout", "Dropout", &[]);
pub const READ_EVERY: Setting = setting("read_every", "read-every", "Losses per read", &[]);
pub const EMBED_EVERY: Setting = setting(
    "embed_every",
    "embed-every",
    "Projection every N steps",
    &[],
);
pub const SAMPLER: Setting = setting("sampler", "sampler", "Sampler", &[]);
pub const PER_CLASS: Setting = setting("per_class", "per-class", "Per class (K)", &["k"]);
pub const LR_SCHEDULE: Setting =
    setting("lr_schedule", "lr-schedule", "LR schedule", &["schedule"]);
pub const WARMUP_STEPS: Setting =
    setting("warmup_steps", "warmup-steps", "Warm-up steps", &["warmup"]);
pub const RECIPE: Setting = setting("recipe", "recipe", "Recipe", &["preset"]);
pub const ENGINE: Setting = setting("engine", "engine", "Engine", &[]);
pub const BACKEND: Setting = setting("backend", "backend", "Backend", &[]);

/// Every setting.
pub const ALL: [Setting; 22] = [
    RECIPE,
    DATASET,
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
    SEED,
    TRAIN_LIMIT,
    TEST_LIMIT,
    SHUFFLE_BUFFER,
    DROPOUT,
    READ_EVERY,
    EMBED_EVERY,
    ENGINE,
    BACKEND,
];

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
}
