//! The settings form as the user (or the URL) wrote it, and its validation into a
//! [`TrainConfig`]. Kept as strings so an invalid value stays visible at its field. A recipe
//! ([`Recipe`]) fills its settings' fields when chosen and, unless it is the notebook's, locks
//! them (they leave the URL: `recipe=tuned` stands for them).

use std::collections::BTreeMap;

use tripletlab_core::data::BundledDataset;
use tripletlab_core::run::settings::{self, Setting};
use tripletlab_core::run::{Mining, Recipe, Sampler, TrainConfig};
use tripletlab_protocol::BatchLimit;

/// The form's settings, in form order; their keys are also the URL query keys.
pub const FORM_SETTINGS: [Setting; 18] =
    settings::concat([settings::RECIPE, settings::DATASET], settings::RUN);

/// Field keys, in form order.
pub const FIELDS: [&str; 18] = {
    let mut keys = [""; 18];
    let mut i = 0;
    while i < keys.len() {
        keys[i] = FORM_SETTINGS[i].key;
        i += 1;
    }
    keys
};

/// Extra URL keys understood by the page (not form fields): `backend=cpu|webgpu` picks the
/// device (by default WebGPU on a hardware adapter, else the CPU), `embed_every=N` refreshes
/// the projection every N steps.
pub const EXTRA_KEYS: [&str; 2] = [settings::BACKEND.key, settings::EMBED_EVERY.key];

/// The form's raw values.
#[derive(Clone, Debug, PartialEq)]
pub struct Form {
    /// Raw value per key of [`FIELDS`].
    pub values: BTreeMap<&'static str, String>,
}

impl Default for Form {
    fn default() -> Self {
        let d = TrainConfig::default();
        let mut values = BTreeMap::new();
        for s in FORM_SETTINGS {
            values.insert(s.key, s.get(&d).unwrap_or_default());
        }
        values.insert(settings::RECIPE.key, Recipe::default().as_str().to_string());
        values.insert(settings::DATASET.key, "mnist".to_string());
        Self { values }
    }
}

/// The result of checking a [`Form`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checked {
    /// The configuration, when every field is valid.
    pub config: Option<TrainConfig>,
    /// Messages per field key (a key outside [`FIELDS`] is shown above the buttons).
    pub errors: BTreeMap<String, String>,
}

/// The labels a run with training limit `limit` trains on (the first ones, as
/// [`tripletlab_core::data::Dataset::truncated`] keeps).
fn used_labels(labels: &[u8], limit: Option<usize>) -> &[u8] {
    &labels[..limit.map_or(labels.len(), |n| n.min(labels.len()))]
}

/// A URL value as the CLI would read it: the choice fields in any case and spelling their
/// parsers accept (`dataset=MNIST`, `metric=L2`) become their canonical names; anything that
/// still does not parse is kept as written, to be flagged at its field.
fn lenient(setting: Setting, value: &str) -> String {
    let canonical = match setting.key {
        k if k == settings::DATASET.key && value.trim().eq_ignore_ascii_case("custom") => {
            Some("custom".into())
        }
        k if k == settings::DATASET.key => value
            .parse::<BundledDataset>()
            .ok()
            .map(|d| d.as_str().into()),
        k if k == settings::RECIPE.key => value.parse::<Recipe>().ok().map(|r| r.as_str().into()),
        _ => setting.canonical(value),
    };
    canonical.unwrap_or_else(|| value.to_string())
}

impl Form {
    /// Defaults overridden by the URL's pairs (a setting's key, flag or alias, as the CLI
    /// takes them: `batch-size=64` is `batch=64`); unknown keys are ignored.
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut form = Form::default();
        for (k, v) in pairs {
            if let Some(s) = settings::find(k).filter(|s| FORM_SETTINGS.contains(s)) {
                form.values.insert(s.key, lenient(s, v));
            }
        }
        // The recipe's settings win over the URL's own values for them.
        if let Some(recipe) = form.recipe() {
            form.fill(recipe, recipe.locks());
        }
        form
    }

    /// The chosen recipe, when the field holds one.
    pub fn recipe(&self) -> Option<Recipe> {
        self.get(settings::RECIPE.key).parse().ok()
    }

    /// Whether the chosen recipe fixes the field `key`.
    pub fn locked(&self, key: &str) -> bool {
        self.recipe()
            .is_some_and(|r| r.locks().iter().any(|s| s.key == key))
    }

    /// Whether the field `key` takes no input now: the recipe fixes it, it is K without P×K
    /// batches, or the soft margin without batch-hard mining.
    pub fn disabled(&self, key: &str) -> bool {
        self.locked(key)
            || (key == settings::PER_CLASS.key
                && self.get(settings::SAMPLER.key).parse() != Ok(Sampler::Pk))
            || (key == settings::SOFT.key
                && self.get(settings::MINING.key).parse() != Ok(Mining::Hard))
    }

    /// What a P×K batch of these fields is, when they make one: over the loaded training set's
    /// labels (`train_labels`, cut to the training limit) the epoch it makes
    /// ([`tripletlab_core::data::PkEpoch::describe`]), before one is loaded "P = 8 classes × K = 4 …".
    pub fn pk_note(&self, train_labels: Option<&[u8]>) -> Option<String> {
        if self.get(settings::SAMPLER.key).parse() != Ok(Sampler::Pk) {
            return None;
        }
        let config = TrainConfig {
            sampler: Sampler::Pk,
            batch_size: self.get(settings::BATCH.key).trim().parse().ok()?,
            per_class: self.get(settings::PER_CLASS.key).trim().parse().ok()?,
            ..TrainConfig::default()
        };
        let (p, k) = (config.classes_per_batch(), config.per_class);
        if !config.problems().is_empty() {
            return None;
        }
        match train_labels {
            Some(labels) => {
                let limit = settings::limit(self.get(settings::TRAIN_LIMIT.key)).ok()?;
                let pk = config.pk_epoch(used_labels(labels, limit)).ok()??;
                Some(pk.describe())
            }
            None => Some(format!(
                "P = {p} classes × K = {k} examples a batch; an epoch ends when fewer than {p} \
                 classes have {k} unused examples"
            )),
        }
    }

    /// Writes `recipe`'s values into the fields of `which`.
    fn fill(&mut self, recipe: Recipe, which: &[Setting]) {
        let config = recipe.config();
        for s in which {
            if let Some(v) = s.get(&config) {
                self.values.insert(s.key, v);
            }
        }
    }

    /// The value of `key` ("" when unknown).
    pub fn get(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or("")
    }

    /// Sets `key` (ignored when not a form field, or locked by the recipe). Choosing a recipe
    /// fills every setting a recipe sets with its values (the notebook's puts its own back).
    pub fn set(&mut self, key: &str, value: String) {
        if self.locked(key) {
            return;
        }
        if let Some(k) = FIELDS.iter().find(|f| **f == key) {
            self.values.insert(k, value);
        }
        if key == settings::RECIPE.key
            && let Some(recipe) = self.recipe()
        {
            self.fill(recipe, &tripletlab_core::run::RECIPE_SETTINGS);
        }
    }

    /// The pairs to put in the URL: only values that differ from the defaults.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let defaults = Form::default();
        FIELDS
            .iter()
            .filter(|k| self.get(k).trim() != defaults.get(k))
            .filter(|k| !(**k == settings::DATASET.key && self.get(k) == "custom"))
            .filter(|k| !self.locked(k))
            .map(|k| (*k, self.get(k).trim().to_string()))
            .collect()
    }

    /// What is wrong with the dataset field, if anything.
    fn dataset_problem(&self, custom_loaded: bool) -> Option<String> {
        match self.get(settings::DATASET.key) {
            "mnist" | "fashion" => None,
            "custom" if custom_loaded => None,
            "custom" => Some("open your four IDX files first".into()),
            other => Some(format!(
                "unknown dataset '{other}' (expected mnist or fashion)"
            )),
        }
    }

    /// Parses every field, then applies the core's own range checks, the device's batch limit
    /// (once the device is known) and, with P×K batches, whether the loaded training set's
    /// labels (`train_labels`, cut to the training limit) make at least one batch.
    pub fn check(
        &self,
        custom_loaded: bool,
        batch_limit: Option<&BatchLimit>,
        train_labels: Option<&[u8]>,
    ) -> Checked {
        let mut errors: BTreeMap<String, String> = BTreeMap::new();
        let mut config = TrainConfig::default();
        let mut err = |k: &str, m: String| {
            errors.entry(k.to_string()).or_insert(m);
        };
        if let Some(problem) = self.dataset_problem(custom_loaded) {
            err(settings::DATASET.key, problem);
        }
        // Each field in form order (the sampler before K, the mining before the soft margin:
        // a field that does not apply to what is read so far keeps its default).
        for s in FORM_SETTINGS {
            if let Some(v) = s.value
                && (v.applies)(&config)
                && let Err(m) = (v.set)(&mut config, self.get(s.key))
            {
                err(s.key, m);
            }
        }
        // A recipe that fixes its settings has them, whatever the fields say.
        match self.get(settings::RECIPE.key).parse::<Recipe>() {
            Ok(recipe) if !recipe.locks().is_empty() => recipe.apply(&mut config),
            Ok(_) => {}
            Err(m) => err(settings::RECIPE.key, m),
        }
        for problem in config.problems() {
            err(&problem.field, problem.message);
        }
        if let Some(limit) = batch_limit
            && config.batch_size > limit.max
        {
            err(
                settings::BATCH.key,
                format!(
                    "this device trains batches of up to {} ({})",
                    limit.max, limit.why
                ),
            );
        }
        // Against the training set only where the settings themselves make P×K batches.
        if let Some(labels) = train_labels
            && config.problems().is_empty()
            && let Err(e) = config.pk_epoch(used_labels(labels, config.train_limit))
        {
            err(&e.field, e.message);
        }
        Checked {
            config: if errors.is_empty() {
                Some(config)
            } else {
                None
            },
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tripletlab_core::run::Metric;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_notebook_recipe() {
        let checked = Form::default().check(false, None, None);
        assert!(checked.errors.is_empty(), "{:?}", checked.errors);
        assert_eq!(checked.config, Some(TrainConfig::default()));
        assert!(Form::default().to_pairs().is_empty());
    }

    #[test]
    fn url_values_are_read_as_leniently_as_the_cli_reads_them() {
        let form = Form::from_pairs(&pairs(&[
            ("dataset", "MNIST"),
            ("metric", " L2 "),
            ("mining", "Semi-Hard"),
            ("epochs", "3"),
            ("unknown", "x"),
        ]));
        assert_eq!(form.get("dataset"), "mnist");
        assert_eq!(form.get("metric"), "l2");
        assert_eq!(form.get("mining"), "semi-hard");
        // The selects show the canonical spelling (an option's value), the switch too.
        let more = Form::from_pairs(&pairs(&[
            ("lr_schedule", "Cosine"),
            ("mining", "hard"),
            ("soft", "TRUE"),
        ]));
        assert_eq!(more.get("lr_schedule"), "cosine");
        assert_eq!(more.get("soft"), "on");
        let config = form.check(false, None, None).config.expect("valid");
        assert_eq!(config.epochs, 3);
        assert_eq!(config.metric, Metric::L2);
        assert_eq!(
            Form::from_pairs(&pairs(&[("dataset", "Fashion-MNIST")])).get("dataset"),
            "fashion"
        );
        assert_eq!(
            Form::from_pairs(&pairs(&[("dataset", "CUSTOM")])).get("dataset"),
            "custom"
        );
        // Still invalid after leniency: kept as written and flagged at its field.
        let bad = Form::from_pairs(&pairs(&[("dataset", "cifar"), ("metric", "manhattan")]));
        assert_eq!(bad.get("dataset"), "cifar");
        let checked = bad.check(false, None, None);
        assert!(checked.config.is_none());
        assert!(checked.errors["dataset"].contains("cifar"));
        assert!(checked.errors["metric"].contains("manhattan"));
    }

    #[test]
    fn the_url_keeps_a_bundled_dataset_and_a_recipe_holds_whatever_its_fields_say() {
        let mut form = Form::default();
        form.set("dataset", "fashion".into());
        form.set("epochs", "2".into());
        assert_eq!(
            form.to_pairs(),
            vec![
                ("dataset", "fashion".to_string()),
                ("epochs", "2".to_string())
            ]
        );
        // A form whose recipe fixes settings runs with them even where its fields say otherwise
        // (as written, not through `set`, which fills them).
        let mut raw = Form::default();
        raw.values.insert("recipe", "tuned".into());
        let config = raw.check(false, None, None).config.expect("valid");
        assert_eq!(config, Recipe::Tuned.config());
    }

    #[test]
    fn the_soft_margin_is_a_switch_of_batch_hard_mining() {
        let hard = |soft: &str| {
            Form::from_pairs(&pairs(&[("mining", "hard"), ("soft", soft)])).check(false, None, None)
        };
        for on in ["on", "TRUE", "1", "yes"] {
            assert_eq!(hard(on).config.map(|c| c.soft), Some(true), "{on}");
        }
        assert_eq!(hard("off").config.map(|c| c.soft), Some(false));
        assert!(hard("maybe").errors["soft"].contains("not on or off"));
        // Without batch-hard mining the field is disabled and the run keeps it off.
        let semi = Form::from_pairs(&pairs(&[("soft", "on")]));
        assert!(semi.disabled("soft"));
        assert_eq!(
            semi.check(false, None, None).config.map(|c| c.soft),
            Some(false)
        );
        assert!(!Form::from_pairs(&pairs(&[("mining", "hard")])).disabled("soft"));
    }

    #[test]
    fn every_invalid_field_is_flagged_at_its_field() {
        let cases: [(&str, &str, &str); 22] = [
            ("epochs", "x", "not a whole number"),
            ("epochs", "0", "between 1"),
            ("batch", "1", "between 2"),
            ("batch", "100000", "between 2"),
            ("batch", "-3", "not a whole number"),
            ("lr", "fast", "not a number"),
            ("lr", "0", "(0, 1]"),
            ("lr", "NaN", "(0, 1]"),
            ("margin", "-1", "between 0"),
            ("metric", "l1", "unknown distance metric"),
            ("mining", "easy", "unknown mining"),
            ("seed", "-1", "whole number"),
            ("train_limit", "1", "at least 2"),
            ("test_limit", "ten", "whole number"),
            (
                "recipe",
                "best",
                "unknown recipe 'best' (expected notebook or tuned)",
            ),
            ("sampler", "random", "unknown sampler"),
            ("lr_schedule", "linear", "unknown learning-rate schedule"),
            ("warmup_steps", "-5", "not a whole number"),
            ("warmup_steps", "ten", "not a whole number"),
            ("dropout", "1", "[0, 1)"),
            ("dropout", "half", "not a number"),
            ("shuffle_buffer", "-1", "not a whole number"),
        ];
        for (key, value, expected) in cases {
            let form = Form::from_pairs(&pairs(&[(key, value)]));
            let checked = form.check(false, None, None);
            assert!(checked.config.is_none(), "{key}={value} accepted");
            assert_eq!(
                checked.errors.len(),
                1,
                "{key}={value}: {:?}",
                checked.errors
            );
            let message = checked
                .errors
                .get(key)
                .unwrap_or_else(|| panic!("{key}={value}: {:?}", checked.errors));
            assert!(message.contains(expected), "{key}={value}: {message}");
        }
    }

    #[test]
    fn custom_data_needs_the_files_first_and_limits_accept_all() {
        let mut form = Form::default();
        form.set("dataset", "custom".into());
        assert!(
            form.check(false, None, None).errors["dataset"].contains("open your four IDX files")
        );
        assert!(form.check(true, None, None).config.is_some());
        // "custom" never goes into a shared link; "all" and "" mean no limit.
        assert!(form.to_pairs().is_empty());
        form.set("train_limit", "all".into());
        form.set("test_limit", "".into());
        let config = form.check(true, None, None).config.unwrap();
        assert_eq!((config.train_limit, config.test_limit), (None, None));
        form.set("train_limit", "640".into());
        assert_eq!(
            form.check(true, None, None).config.unwrap().train_limit,
            Some(640)
        );
        assert_eq!(form.to_pairs(), vec![("train_limit", "640".to_string())]);
        // Unknown keys are not fields.
        form.set("nonsense", "1".into());
        assert_eq!(form.get("nonsense"), "");
    }

    #[test]
    fn a_batch_above_the_device_s_limit_is_flagged_at_its_field() {
        let limit = BatchLimit {
            max: 2330,
            why: "on WebGPU".into(),
        };
        let form = Form::from_pairs(&pairs(&[("batch", "2331")]));
        assert!(
            form.check(false, None, None).config.is_some(),
            "no device known yet"
        );
        let checked = form.check(false, Some(&limit), None);
        assert_eq!(checked.config, None);
        assert_eq!(
            checked.errors["batch"],
            "this device trains batches of up to 2330 (on WebGPU)"
        );
        let form = Form::from_pairs(&pairs(&[("batch", "2330")]));
        assert!(form.check(false, Some(&limit), None).config.is_some());
        // The settings' own bound speaks first.
        let form = Form::from_pairs(&pairs(&[("batch", "5000")]));
        assert!(
            form.check(false, Some(&limit), None).errors["batch"].contains("between 2 and 4096")
        );
    }

    #[test]
    fn p_by_k_batches_come_from_the_url_and_bad_combinations_are_flagged_at_k() {
        let form = Form::from_pairs(&pairs(&[("sampler", "PK"), ("per_class", "4")]));
        assert_eq!(form.get("sampler"), "pk");
        let config = form.check(false, None, None).config.expect("valid");
        assert_eq!((config.sampler, config.per_class), (Sampler::Pk, 4));
        assert!(!form.disabled("per_class"));
        assert_eq!(
            form.pk_note(None).as_deref(),
            Some(
                "P = 8 classes × K = 4 examples a batch; an epoch ends when fewer than 8 classes \
                 have 4 unused examples"
            )
        );
        assert_eq!(
            form.to_pairs(),
            vec![("sampler", "pk".to_string())],
            "K = 4 is the default: only the sampler goes into the link"
        );
        // With the shuffle buffer, K takes no input and is not checked.
        let shuffle = Form::from_pairs(&pairs(&[("per_class", "1")]));
        assert!(shuffle.disabled("per_class"));
        assert_eq!(shuffle.pk_note(None), None);
        assert!(shuffle.check(false, None, None).config.is_some());
        let cases: [(&str, &str, &str); 5] = [
            ("32", "1", "at least 2"),
            ("32", "5", "not P classes × 5"),
            ("64", "4", "needs P = 16 classes; the data has at most 10"),
            ("4", "4", "a triplet needs a second class"),
            ("32", "x", "not a whole number"),
        ];
        for (batch, k, expected) in cases {
            let form = Form::from_pairs(&pairs(&[
                ("sampler", "pk"),
                ("batch", batch),
                ("per_class", k),
            ]));
            let checked = form.check(false, None, None);
            assert_eq!(checked.config, None, "batch {batch}, K {k} accepted");
            assert_eq!(checked.errors.len(), 1, "{:?}", checked.errors);
            let message = &checked.errors["per_class"];
            assert!(
                message.contains(expected),
                "batch {batch}, K {k}: {message}"
            );
            assert_eq!(message.lines().count(), 1);
            assert_eq!(form.pk_note(None), None, "no P×K batch to describe");
        }
    }

    #[test]
    fn p_by_k_batches_are_checked_against_the_loaded_training_labels() {
        // 10 classes of 10 examples, one after the other: the first 30 hold classes 0, 1, 2.
        let labels: Vec<u8> = (0..100).map(|i| (i / 10) as u8).collect();
        let form = |limit: &str| {
            Form::from_pairs(&pairs(&[
                ("sampler", "pk"),
                ("batch", "12"),
                ("per_class", "4"),
                ("train_limit", limit),
            ]))
        };
        // P = 3 classes × K = 4: 10 examples a class give 2 chunks each, 20 batches' worth
        // spread 3 at a time over 10 classes: 6 batches over 72 of the 100.
        let all = form("");
        assert!(all.check(false, None, Some(&labels)).config.is_some());
        assert_eq!(
            all.pk_note(Some(&labels)).as_deref(),
            Some(
                "P×K batches: 3 classes × 4 examples; an epoch is 6 batches over 72 of 100 \
                 examples (it ends when fewer than 3 classes have 4 unused examples: 28 left for \
                 the next epoch)"
            )
        );
        // The first 25 examples hold 2 classes with 4 examples and a third with 5: 3 classes.
        assert!(
            form("25")
                .check(false, None, Some(&labels))
                .config
                .is_some()
        );
        // The first 20 hold two classes: no batch of 3 classes fits, refused at K in one line.
        let two = form("20").check(false, None, Some(&labels));
        assert_eq!(two.config, None);
        let message = &two.errors["per_class"];
        assert_eq!(
            message,
            "2 classes of the training set have 4 examples; a batch of 3 classes × 4 needs 3"
        );
        assert_eq!(form("20").pk_note(Some(&labels)), None);
        // Before a dataset is loaded nothing is known to refuse.
        assert!(form("20").check(false, None, None).config.is_some());
    }

    #[test]
    fn a_recipe_fills_and_locks_its_fields_and_stands_for_them_in_the_url() {
        // From the URL: the recipe wins over values of its own settings; others stay.
        let form = Form::from_pairs(&pairs(&[
            ("recipe", "Tuned"),
            ("lr", "0.1"),
            ("epochs", "3"),
        ]));
        let tuned = Recipe::Tuned.config();
        assert_eq!(form.get("lr"), tuned.lr.to_string());
        assert_eq!(form.get("sampler"), "pk");
        let config = form.check(false, None, None).config.expect("valid");
        assert_eq!(
            config,
            TrainConfig {
                epochs: 3,
                ..tuned.clone()
            }
        );
        for key in FIELDS {
            let fixed = tripletlab_core::run::RECIPE_SETTINGS
                .iter()
                .any(|s| s.key == key);
            assert_eq!(form.locked(key), fixed, "{key}");
            // The soft margin is batch-hard's, and the recipe mines semi-hard.
            let soft_off = key == settings::SOFT.key && tuned.mining != Mining::Hard;
            assert_eq!(form.disabled(key), fixed || soft_off, "{key}");
        }
        assert_eq!(
            form.to_pairs(),
            vec![("recipe", "tuned".to_string()), ("epochs", "3".to_string())]
        );
        // Locked fields ignore input; the notebook's recipe puts its values back and frees them.
        let mut form = form;
        form.set("margin", "2".into());
        assert_eq!(form.get("margin"), format!("{:?}", tuned.margin));
        form.set("recipe", "notebook".into());
        assert_eq!(
            form.check(false, None, None).config,
            Some(TrainConfig {
                epochs: 3,
                ..TrainConfig::default()
            })
        );
        assert!(!form.locked("margin"));
        form.set("margin", "2".into());
        assert_eq!(form.get("margin"), "2");
        // Choosing the recipe on the form fills the fields as the URL does.
        let mut chosen = Form::default();
        chosen.set("recipe", "tuned".into());
        assert_eq!(chosen, Form::from_pairs(&pairs(&[("recipe", "tuned")])));
        assert_eq!(chosen.check(false, None, None).config, Some(tuned));
    }
}
