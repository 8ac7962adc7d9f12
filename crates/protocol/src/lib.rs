//! The one protocol between the page and its Web Worker: [`Command`]s in, [`Reply`]s out, each
//! one enum with serde, on the wire as bincode bytes (posted as a transferred `ArrayBuffer`,
//! never as JSON text). The training events are [`tripletlab_core::run::Event`] itself, wrapped, not
//! copied.
//!
//! Owns the message types and their encoding only. It knows no browser (the page's
//! `web::bridge` and the worker's `worker` module post these bytes) and no screen.
//!
//! Every command that starts work carries an [`Id`], increasing on the page; the worker acts on
//! the latest only (a dataset picked after another wins even when the first one's fetch ends
//! later), refuses a second run while one is active, and tags its replies with the id they
//! answer, so the page can drop what belongs to a superseded request.

#[cfg(target_arch = "wasm32")]
pub mod js;
mod reply;

pub use reply::Reply;

use serde::{Deserialize, Serialize};

use tripletlab_core::backend::BackendChoice;
use tripletlab_core::data::{BundledDataset, Dataset};
use tripletlab_core::run::{Control, TrainConfig};

/// Identifies a request that starts work (a dataset load, a run, a layout).
pub type Id = u64;

/// What the page asks of the worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Start the burn device (the first command; answered by [`Reply::DeviceReady`]).
    Start {
        /// The URL's `backend=` choice.
        backend: BackendChoice,
    },
    /// Fetch and parse a bundled dataset and make it current.
    LoadBundled {
        /// Request id; a later load wins.
        id: Id,
        /// Which one.
        dataset: BundledDataset,
    },
    /// Read the user's files, attached to the message as `File` objects in the order of
    /// `names` (the worker reads them; the page never copies their bytes).
    LoadFiles {
        /// Request id; a later load wins.
        id: Id,
        /// The files' names (they say which file is which).
        names: Vec<String>,
        /// The files' sizes in bytes (from `File.size`, checked on the page before sending).
        sizes: Vec<u64>,
    },
    /// Make the user's files, loaded before, current again.
    UseCustom {
        /// Request id; a later load wins.
        id: Id,
    },
    /// A weights file, attached as a `File`: checked, then the next run starts from it.
    LoadWeights {
        /// Its name.
        name: String,
    },
    /// Train with these settings on the current dataset (refused while a run is active).
    Train {
        /// Run id.
        id: Id,
        /// Validated on the page and again in the worker.
        config: TrainConfig,
    },
    /// Pause, resume or stop the active run (ignored when none is active).
    Control(Control),
    /// Lay out the latest test embeddings with t-SNE or UMAP (a later request, a Cancel or a
    /// new run cancels it).
    Layout {
        /// Request id.
        id: Id,
        /// Which layout.
        request: LayoutRequest,
    },
    /// Cancel the running layout, if any.
    CancelLayout,
    /// Ask the embedding about one image, with the current weights (during a run or after it).
    Query {
        /// Request id (only the latest is answered).
        id: Id,
        /// Which image.
        image: QueryImage,
    },
    /// Make the bytes of a download.
    Export(Export),
}

/// A layout the page asks for (the worker fits the rest of the parameters to the points).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum LayoutRequest {
    /// t-SNE, perplexity 30 (lowered for small sets).
    Tsne,
    /// UMAP with these parameters.
    Umap {
        /// Neighbourhood size, the point itself included.
        n_neighbors: usize,
        /// How tightly points may pack.
        min_dist: f32,
    },
}

/// The image of a [`Command::Query`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum QueryImage {
    /// Drawn on the pad, already MNIST-style (28 × 28 bytes, see [`tripletlab_core::query::digitize`]).
    Drawn(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Test image number `n` of the run's test set.
    Test(u32),
}

/// The downloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Export {
    /// `vecs.tsv` of the latest test embeddings.
    Vecs,
    /// `meta.tsv` of the same.
    Meta,
    /// The weights as safetensors.
    Weights,
    /// `projector.zip`: vecs.tsv, meta.tsv, sprite.png, projector_config.json and a README
    /// (see [`tripletlab_core::embedding_projector`]).
    Projector,
}

/// A test set as the page shows it (images for the hover), bytes kept as bytes on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestImages {
    /// `len × rows × cols` pixels.
    #[serde(with = "serde_bytes")]
    pub images: Vec<u8>,
    /// One label per image.
    #[serde(with = "serde_bytes")]
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl From<&Dataset> for TestImages {
    fn from(d: &Dataset) -> Self {
        Self {
            images: d.images.clone(),
            labels: d.labels.clone(),
            rows: d.rows,
            cols: d.cols,
        }
    }
}

impl From<TestImages> for Dataset {
    fn from(t: TestImages) -> Self {
        Dataset {
            images: t.images,
            labels: t.labels,
            rows: t.rows,
            cols: t.cols,
        }
    }
}

/// The largest batch a device trains, and why (shown at the batch field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchLimit {
    /// Largest batch size.
    pub max: usize,
    /// Why, as a phrase ("WebGPU: …").
    pub why: String,
}

/// A message that could not be decoded (a bug or a version mismatch between page and worker).
#[derive(Debug, thiserror::Error)]
#[error("malformed message between the page and its worker: {0}")]
pub struct WireError(String);

/// The bytes of a message.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, WireError> {
    bincode::serialize(message).map_err(|e| WireError(e.to_string()))
}

/// A message from its bytes.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, WireError> {
    bincode::deserialize(bytes).map_err(|e| WireError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use tripletlab_core::metrics::{Confusion, Metrics, Predictions};
    use tripletlab_core::run::{
        Collapse, EpochFigures, Event, MiningStats, ShownTriplet, Summary, TrainError,
        TripletExample, TripletKind, TripletSample,
    };

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(m: T) {
        let bytes = encode(&m).unwrap();
        assert_eq!(decode::<T>(&bytes).unwrap(), m);
    }

    #[test]
    fn every_command_round_trips() {
        let commands = vec![
            Command::Start {
                backend: BackendChoice::Gpu,
            },
            Command::LoadBundled {
                id: 3,
                dataset: BundledDataset::Fashion,
            },
            Command::LoadFiles {
                id: 4,
                names: vec!["a".into(), "b".into()],
                sizes: vec![1, 2],
            },
            Command::UseCustom { id: 5 },
            Command::LoadWeights {
                name: "w.safetensors".into(),
            },
            Command::Train {
                id: 6,
                config: TrainConfig {
                    epochs: 3,
                    batch_size: 64,
                    lr: 5e-4,
                    ..TrainConfig::default()
                },
            },
            Command::Control(Control::Pause),
            Command::Control(Control::Run),
            Command::Control(Control::Stop),
            Command::Layout {
                id: 7,
                request: LayoutRequest::Umap {
                    n_neighbors: 15,
                    min_dist: 0.1,
                },
            },
            Command::CancelLayout,
            Command::Query {
                id: 8,
                image: QueryImage::Drawn(vec![0, 255, 7]),
            },
            Command::Query {
                id: 9,
                image: QueryImage::Test(41),
            },
            Command::Export(Export::Vecs),
            Command::Export(Export::Meta),
            Command::Export(Export::Weights),
            Command::Export(Export::Projector),
        ];
        for c in commands {
            round_trip(c);
        }
    }

    #[test]
    fn every_reply_and_every_event_round_trips() {
        let metrics = Metrics {
            knn1_acc: Some(0.9),
            knn5_acc: None,
            precision_at_1: 0.8,
            map_at_r: 0.5,
            knn1_confusion: Some(Confusion::from_pairs([(1, 1), (1, 7), (7, 7)])),
            predictions: Predictions {
                knn1: Some(vec![1, 7, 7]),
                nearest_other: vec![Some(1), None, Some(7)],
            },
        };
        let events = vec![
            Event::Started {
                epochs: 2,
                steps_per_epoch: 10,
                train_examples: 320,
                test_examples: 50,
                pk_epoch: None,
            },
            Event::Step {
                epoch: 1,
                step: 2,
                steps_per_epoch: 10,
                global_step: 2,
                loss: 0.75,
                mining: MiningStats {
                    terms: 60,
                    semi_hard: 40,
                    fallback: 18,
                    no_negative: 2,
                    active: 30,
                    sum_d_ap: 40.5,
                    sum_d_an: 70.25,
                },
                examples_per_s: 400.0,
                elapsed_s: 1.5,
            },
            Event::Skipped {
                epoch: 1,
                step: 3,
                reason: "no positive pair".into(),
            },
            Event::Embeddings {
                epoch: 1,
                global_step: 10,
                vectors: Arc::new(vec![0.5; 512]),
                labels: Arc::new(vec![1, 2]),
            },
            Event::Triplets(Box::new(TripletSample {
                epoch: 1,
                step: 10,
                mining: tripletlab_core::run::Mining::SemiHard,
                batch: 32,
                mined_among: 32,
                terms: 96,
                semi_hard: 60,
                fallback: 36,
                active: 40,
                shown: vec![ShownTriplet {
                    anchor: TripletExample {
                        index: 7,
                        label: 3,
                        image: vec![9; 784],
                    },
                    positive: TripletExample {
                        index: 8,
                        label: 3,
                        image: vec![1; 784],
                    },
                    negative: None,
                    kind: TripletKind::NoNegative,
                    d_ap: 0.5,
                    d_an: 0.0,
                    loss: 0.7,
                }],
            })),
            Event::EpochEnd {
                epoch: 1,
                mean_loss: 0.7,
                figures: Box::new(EpochFigures {
                    mining: MiningStats::default(),
                    collapse: Collapse {
                        mean_cosine: 0.25,
                        spread: 0.8,
                        collapsing: false,
                    },
                }),
                metrics: metrics.clone(),
                elapsed_s: 3.0,
            },
            Event::Done(Summary {
                stopped: true,
                epochs_completed: 1,
                steps: 12,
                skipped_batches: 1,
                epoch_losses: vec![0.7],
                epoch_figures: Arc::new(vec![EpochFigures::default()]),
                metrics,
                examples_per_s: 410.0,
                train_seconds: 2.0,
                total_seconds: 3.5,
            }),
            Event::Failed(TrainError::NonFinite {
                epoch: 1,
                step: 4,
                value: f32::INFINITY,
            }),
            Event::Failed(TrainError::Device("lost".into())),
            Event::Failed(TrainError::Config(tripletlab_core::run::ConfigError {
                field: "batch".into(),
                message: "too big".into(),
            })),
        ];
        let mut replies: Vec<Reply> = events
            .into_iter()
            .map(|event| Reply::Train { id: 9, event })
            .collect();
        let test = TestImages {
            images: vec![0, 255, 7, 8],
            labels: vec![3],
            rows: 2,
            cols: 2,
        };
        replies.extend([
            Reply::Listening,
            Reply::DeviceReady {
                webgpu: false,
                adapter: "CPU".into(),
                fallback: Some("why".into()),
                batch_limit: BatchLimit {
                    max: 4096,
                    why: "the settings' limit".into(),
                },
            },
            Reply::DatasetLoading {
                id: 1,
                name: "MNIST".into(),
            },
            Reply::DatasetLoaded {
                id: 1,
                name: "MNIST".into(),
                custom: false,
                n_train: 8,
                n_test: 1,
                class_names: vec!["0".into()],
                test,
                train_labels: vec![0, 1, 0, 1, 2, 2, 1, 0],
            },
            Reply::DatasetFailed {
                id: 1,
                message: "404".into(),
            },
            Reply::FilesRejected {
                id: 2,
                message: "bad".into(),
            },
            Reply::WeightsLoaded { name: "w".into() },
            Reply::WeightsRejected {
                message: "bad".into(),
            },
            Reply::TrainStarted {
                id: 9,
                epochs: 2,
                from_weights: None,
            },
            Reply::TrainRefused {
                id: 10,
                reason: "busy".into(),
            },
            Reply::Paused,
            Reply::Resumed,
            Reply::Stopping,
            Reply::Projection {
                points: vec![[1.0, -2.0]],
                kind: "PCA".into(),
            },
            Reply::RunEnded {
                id: 9,
                weights: true,
            },
            Reply::LayoutProgress {
                id: 4,
                done: 10,
                total: 1000,
                kind: "t-SNE, iteration 10 of 1000".into(),
                points: vec![[0.0, 1.0]],
            },
            Reply::LayoutDone {
                id: 4,
                kind: "t-SNE, perplexity 30, 1000 iterations".into(),
            },
            Reply::LayoutEnded {
                id: 4,
                error: Some("no".into()),
            },
            Reply::QueryAnswer {
                id: 3,
                image: vec![1, 2],
                label: Some(4),
                neighbour_images: vec![3; 4],
                answer: tripletlab_core::query::Answer {
                    neighbours: vec![tripletlab_core::query::Match {
                        index: 5,
                        label: 4,
                        cosine: 0.5,
                    }],
                    votes: vec![(4, 1)],
                    test_neighbours: vec![],
                    pca: Some([1.0, 2.0]),
                    weights_at: (1, 2),
                },
            },
            Reply::QueryFailed {
                id: 3,
                message: "no".into(),
            },
            Reply::RawPixels {
                id: 9,
                scores: Err("too large".into()),
            },
            Reply::Download {
                name: "vecs.tsv".into(),
                mime: "text/plain".into(),
                bytes: b"1\t2\n".to_vec(),
            },
            Reply::Problem {
                message: "oops".into(),
            },
        ]);
        for r in replies {
            round_trip(r);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<Command>(&[]).is_err());
        assert!(decode::<Reply>(&[200, 1, 2]).is_err());
        // A length prefix far past the bytes present.
        let mut bytes = encode(&Reply::Problem {
            message: "x".into(),
        })
        .unwrap();
        bytes.truncate(6);
        assert!(decode::<Reply>(&bytes).is_err());
    }
}
