//! A training run's description, without the trainer: the validated [`TrainConfig`] and its
//! named settings ([`settings`]), recipes, the learning-rate schedule, the [`Event`]s a run
//! emits and the [`Control`]s it obeys, a step's [`MiningStats`], the test embedding's
//! [`Collapse`] indicator, and the triplets panel's selection ([`TripletSample`]).
//!
//! Plain data: the engine's trainer produces these values, the page and the CLI show them.

mod collapse;
mod config;
mod events;
mod mining;
mod recipe;
mod schedule;
pub mod settings;
mod triplets;

pub use collapse::{COLLAPSE_COSINE, Collapse};
pub use config::{
    ConfigError, LrSchedule, MAX_BATCH, MAX_EPOCHS, Metric, Mining, Sampler, StepEngine,
    TrainConfig,
};
pub use events::{Control, EpochFigures, Event, Summary, TrainError, first_line};
pub use mining::{DEVICE_STATS, MiningStats, kind_names};
pub use recipe::{RECIPE_SETTINGS, Recipe};
pub use schedule::{describe_schedule, lr_at};
pub use triplets::{
    SHOWN_TRIPLETS, ShownTriplet, TRIPLET_ROWS, Term, TripletExample, TripletKind, TripletSample,
    pick, select_semi_hard, terms,
};
