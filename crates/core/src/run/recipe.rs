//! Named recipes, as one setting: [`Recipe::Notebook`] (the notebook's settings, the defaults)
//! and [`Recipe::Tuned`] (the settings that beat it within its budget: the same net, epochs and
//! training set). A recipe fills [`RECIPE_SETTINGS`] of a [`TrainConfig`]; the CLI refuses
//! their flags beside `--recipe tuned` and the page locks their fields. Plain data: knows no
//! parser or screen.

use serde::{Deserialize, Serialize};

use super::schedule::describe_schedule;
use super::settings::{self, Setting};
use super::{LrSchedule, Metric, Mining, Sampler, TrainConfig};

/// A named set of settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recipe {
    /// The notebook's settings (every field free).
    #[default]
    Notebook,
    /// P×K batches of every class (10 × 4), a warm-up and cosine decay, the angular distance
    /// with a margin of 0.05 (see [`Recipe::config`]).
    Tuned,
}

names!(Recipe, "recipe", {
    Notebook => "notebook" | "default",
    Tuned => "tuned",
});

/// The settings a recipe sets: exactly the fields [`Recipe::apply`] copies.
pub const RECIPE_SETTINGS: [Setting; 9] = [
    settings::BATCH,
    settings::SAMPLER,
    settings::PER_CLASS,
    settings::LR,
    settings::LR_SCHEDULE,
    settings::WARMUP_STEPS,
    settings::MARGIN,
    settings::METRIC,
    settings::MINING,
];

impl Recipe {
    /// The notebook's defaults with the recipe's settings.
    pub fn config(self) -> TrainConfig {
        match self {
            Recipe::Notebook => TrainConfig::default(),
            Recipe::Tuned => TrainConfig {
                sampler: Sampler::Pk,
                per_class: 4,
                batch_size: 40,
                lr: 0.002,
                lr_schedule: LrSchedule::Cosine,
                warmup_steps: 100,
                margin: 0.05,
                metric: Metric::Angular,
                mining: Mining::SemiHard,
                ..TrainConfig::default()
            },
        }
    }

    /// Sets the recipe's [`RECIPE_SETTINGS`] in `config`, leaving every other field as it is.
    pub fn apply(self, config: &mut TrainConfig) {
        let from = self.config();
        config.batch_size = from.batch_size;
        config.sampler = from.sampler;
        config.per_class = from.per_class;
        config.lr = from.lr;
        config.lr_schedule = from.lr_schedule;
        config.warmup_steps = from.warmup_steps;
        config.margin = from.margin;
        config.metric = from.metric;
        config.mining = from.mining;
    }

    /// The settings the recipe fixes (none for the notebook's, whose fields stay free).
    pub fn locks(self) -> &'static [Setting] {
        match self {
            Recipe::Notebook => &[],
            Recipe::Tuned => &RECIPE_SETTINGS,
        }
    }

    /// The recipe's settings in one line, for a person.
    pub fn describe(self) -> String {
        let c = self.config();
        let batches = match c.sampler {
            Sampler::Shuffle => format!(
                "batches of {} from a shuffle buffer of {}",
                c.batch_size, c.shuffle_buffer
            ),
            Sampler::Pk => format!(
                "P×K batches of {} classes × {} examples ({})",
                c.classes_per_batch(),
                c.per_class,
                c.batch_size
            ),
        };
        format!(
            "{batches}; Adam, learning rate {}; {} distance, margin {}; {} mining",
            describe_schedule(&c),
            c.metric,
            c.margin,
            c.mining
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipe_sets_its_settings_and_nothing_else() {
        let notebook = TrainConfig::default();
        assert_eq!(Recipe::Notebook.config(), notebook);
        assert!(Recipe::Notebook.locks().is_empty());
        let tuned = Recipe::Tuned.config();
        tuned.validate().expect("the tuned recipe is valid");
        // Every other field keeps what it had (here: odd values), and the notebook's recipe
        // puts its own values back.
        let mut config = TrainConfig {
            epochs: 3,
            seed: 9,
            train_limit: Some(500),
            ..TrainConfig::default()
        };
        Recipe::Tuned.apply(&mut config);
        assert_eq!(
            config,
            TrainConfig {
                epochs: 3,
                seed: 9,
                train_limit: Some(500),
                ..tuned.clone()
            }
        );
        Recipe::Notebook.apply(&mut config);
        assert_eq!(
            config,
            TrainConfig {
                epochs: 3,
                seed: 9,
                train_limit: Some(500),
                ..notebook
            }
        );
        assert_eq!(Recipe::Tuned.locks(), RECIPE_SETTINGS);
        assert_eq!("Tuned".parse::<Recipe>(), Ok(Recipe::Tuned));
    }

    #[test]
    fn the_recipes_say_their_settings() {
        assert_eq!(
            Recipe::Notebook.describe(),
            "batches of 32 from a shuffle buffer of 1024; Adam, learning rate 0.001; l2 distance, \
             margin 1; semi-hard mining"
        );
        assert_eq!(
            Recipe::Tuned.describe(),
            "P×K batches of 10 classes × 4 examples (40); Adam, learning rate 0.002 after 100 \
             linear warm-up steps, cosine decay to 0 at the last step; angular distance, margin \
             0.05; semi-hard mining"
        );
    }
}
