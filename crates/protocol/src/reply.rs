//! What the worker tells the page: [`Reply`], one enum, each variant tagged with the request
//! it answers where it answers one.

use serde::{Deserialize, Serialize};

use super::{BatchLimit, Id, TestImages};
use tripletlab_core::metrics::Metrics;
use tripletlab_core::run::Event;

/// What the worker tells the page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
pub enum Reply {
    /// The worker is listening (the page holds its commands until this arrives).
    Listening,
    /// The device is up.
    DeviceReady {
        /// On WebGPU (else the CPU).
        webgpu: bool,
        /// Header text.
        adapter: String,
        /// Why the CPU is used instead of WebGPU, when it is.
        fallback: Option<String>,
        /// The largest batch this device trains.
        batch_limit: BatchLimit,
    },
    /// A bundled dataset is being fetched.
    DatasetLoading {
        /// The load's id.
        id: Id,
        /// Its name.
        name: String,
    },
    /// A dataset is loaded and current.
    DatasetLoaded {
        /// The load's id.
        id: Id,
        /// Description.
        name: String,
        /// The user's own files (else a bundled set).
        custom: bool,
        /// Training examples.
        n_train: usize,
        /// Test examples.
        n_test: usize,
        /// Legend names for labels 0..=9.
        class_names: Vec<String>,
        /// The test set, for the hover.
        test: TestImages,
        /// The training set's labels (what the form checks P×K batches against).
        train_labels: Vec<u8>,
    },
    /// A bundled dataset could not be loaded.
    DatasetFailed {
        /// The load's id.
        id: Id,
        /// Why.
        message: String,
    },
    /// The user's files could not be used (the current dataset stays).
    FilesRejected {
        /// The load's id.
        id: Id,
        /// Why.
        message: String,
    },
    /// A weights file was accepted for the next run.
    WeightsLoaded {
        /// Its name.
        name: String,
    },
    /// A weights file was rejected.
    WeightsRejected {
        /// Why.
        message: String,
    },
    /// A run started.
    TrainStarted {
        /// Its id.
        id: Id,
        /// Epochs.
        epochs: usize,
        /// The weights file it starts from.
        from_weights: Option<String>,
    },
    /// A run could not start, or was refused (another one is active).
    TrainRefused {
        /// The refused run's id.
        id: Id,
        /// Why.
        reason: String,
    },
    /// The active run is paused (its loop waits).
    Paused,
    /// The active run goes on.
    Resumed,
    /// The worker has seen a Stop: the active run starts no new step or slice and ends once
    /// the device has finished the work already submitted (≤ `train::QUEUED_WORK_MS` or one step).
    Stopping,
    /// An event of run `id`.
    Train {
        /// The run.
        id: Id,
        /// The event, as the CLI sees it too.
        event: Event,
    },
    /// A 2-D layout of the latest embeddings (PCA after each embedding, computed in the worker).
    Projection {
        /// One point per test embedding.
        points: Vec<[f32; 2]>,
        /// What it is, e.g. "PCA, epoch 1, step 8".
        kind: String,
    },
    /// Run `id` ended (after its `Done` or `Failed` event); `weights` says whether its
    /// weights can be downloaded.
    RunEnded {
        /// The run.
        id: Id,
        /// A weights download is possible.
        weights: bool,
    },
    /// Layout `id` has advanced.
    LayoutProgress {
        /// The request.
        id: Id,
        /// Steps done (t-SNE iterations, UMAP epochs); 0 while its neighbours are searched.
        done: usize,
        /// Steps in all.
        total: usize,
        /// What it is so far, e.g. "UMAP, epoch 40 of 500".
        kind: String,
        /// The current layout (empty while its neighbours are searched).
        points: Vec<[f32; 2]>,
    },
    /// Layout `id` finished.
    LayoutDone {
        /// The request.
        id: Id,
        /// What it is, with its parameters, e.g. "UMAP, n_neighbors 15, min_dist 0.1, 500 epochs".
        kind: String,
    },
    /// Layout `id` ended early: cancelled (a Cancel, a new run or request), or failed (`error`).
    LayoutEnded {
        /// The request.
        id: Id,
        /// Why it failed, when it did.
        error: Option<String>,
    },
    /// The raw-pixel baseline of run `id`'s sets (after its final kNN), or why there is none.
    RawPixels {
        /// The run.
        id: Id,
        /// kNN-1/kNN-5 against the training images, P@1 and MAP@R within the test images.
        scores: Result<Metrics, String>,
    },
    /// The answer to query `id`.
    QueryAnswer {
        /// The query.
        id: Id,
        /// The image that was embedded (28 × 28 bytes).
        #[serde(with = "serde_bytes")]
        image: Vec<u8>,
        /// Its true label, for a test image.
        label: Option<u8>,
        /// The images of its nearest training examples, 28 × 28 bytes each, in their order.
        #[serde(with = "serde_bytes")]
        neighbour_images: Vec<u8>,
        /// Neighbours, vote and places.
        answer: tripletlab_core::query::Answer,
    },
    /// Query `id` could not be answered.
    QueryFailed {
        /// The query.
        id: Id,
        /// Why.
        message: String,
    },
    /// A download's bytes.
    Download {
        /// File name.
        name: String,
        /// MIME type.
        mime: String,
        /// Contents.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Something failed outside any run (shown in a banner).
    Problem {
        /// What, for a person.
        message: String,
    },
}

impl Reply {
    /// The variant's name (the event's, for a training event), for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Train { event, .. } => event.into(),
            other => other.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tripletlab_core::run::TrainError;

    #[test]
    fn a_reply_is_named_by_its_variant_and_a_training_reply_by_its_event() {
        assert_eq!(Reply::Paused.kind(), "Paused");
        assert_eq!(
            Reply::Problem {
                message: String::new()
            }
            .kind(),
            "Problem"
        );
        let train = |event| Reply::Train { id: 1, event };
        assert_eq!(
            train(Event::Failed(TrainError::Device("x".into()))).kind(),
            "Failed"
        );
        assert_eq!(
            train(Event::Skipped {
                epoch: 1,
                step: 3,
                reason: String::new()
            })
            .kind(),
            "Skipped"
        );
    }
}
