//! Tests of the reducer: every reply of the worker, stale replies, controls, refusals.

use std::sync::Arc;

use super::*;
use tripletlab_core::run::{EpochFigures, Mining, MiningStats, Summary};
use tripletlab_core::run::{Event, TrainError};
use tripletlab_protocol::TestImages;

fn fresh() -> State {
    State::from_url(&[])
}

fn reply(s: State, r: Reply) -> State {
    s.reduce(Action::Worker(r))
}

fn loaded(id: Id, name: &str, n_train: usize) -> Reply {
    Reply::DatasetLoaded {
        id,
        name: name.into(),
        custom: false,
        n_train,
        n_test: 1,
        class_names: vec!["zero".into()],
        test: TestImages {
            images: vec![0; 4],
            labels: vec![0],
            rows: 2,
            cols: 2,
        },
        train_labels: (0..n_train).map(|i| (i % 10) as u8).collect(),
    }
}

fn device() -> Reply {
    Reply::DeviceReady {
        webgpu: true,
        adapter: "WebGPU test".into(),
        fallback: None,
        batch_limit: BatchLimit {
            max: 2330,
            why: "on WebGPU".into(),
        },
    }
}

/// Device up and MNIST (load 1) loaded.
fn ready() -> State {
    let s = fresh().reduce(Action::LoadRequested(1));
    let s = reply(reply(s, device()), loaded(1, "MNIST", 8000));
    assert_eq!(s.phase, Phase::Ready);
    s
}

fn step(global_step: usize, loss: f32) -> Event {
    Event::Step {
        epoch: 1,
        step: global_step,
        steps_per_epoch: 10,
        global_step,
        loss,
        mining: MiningStats::default(),
        examples_per_s: 100.0,
        elapsed_s: 1.0,
    }
}

fn summary(stopped: bool) -> Summary {
    Summary {
        stopped,
        epochs_completed: 1,
        steps: 10,
        skipped_batches: 0,
        epoch_losses: vec![0.5],
        epoch_figures: Arc::new(vec![EpochFigures::default()]),
        metrics: Metrics::default(),
        examples_per_s: 100.0,
        train_seconds: 1.0,
        total_seconds: 2.0,
    }
}

/// Ready, then run `id` started.
fn training(id: Id) -> State {
    let s = ready().reduce(Action::TrainRequested(id));
    let s = reply(
        s,
        Reply::TrainStarted {
            id,
            epochs: 1,
            from_weights: None,
        },
    );
    assert_eq!(s.phase, Phase::Training);
    s
}

fn has_notice(s: &State, level: Level, text: &str) -> bool {
    s.notices
        .iter()
        .any(|n| n.level == level && n.text.contains(text))
}

#[test]
fn start_up_waits_for_both_device_and_data() {
    let s = fresh().reduce(Action::LoadRequested(1));
    assert_eq!(s.phase, Phase::Loading);
    let s = reply(
        s,
        Reply::DatasetLoading {
            id: 1,
            name: "MNIST".into(),
        },
    );
    assert_eq!(s.dataset_label(), "data: loading MNIST…");
    let s = reply(s, loaded(1, "MNIST", 8000));
    assert_eq!(s.phase, Phase::Loading, "no device yet");
    let s = reply(
        s,
        Reply::DeviceReady {
            webgpu: false,
            adapter: "CPU".into(),
            fallback: Some("No WebGPU".into()),
            batch_limit: BatchLimit {
                max: 4096,
                why: "the settings' limit".into(),
            },
        },
    );
    assert_eq!(s.phase, Phase::Ready);
    assert!(has_notice(&s, Level::Warning, "No WebGPU."));
    assert_eq!(s.adapter.as_deref(), Some("CPU"));
    assert_eq!(s.dataset_label(), "data: MNIST (8000 train / 1 test)");
    assert_eq!(s.class_names[0], "zero");
}

#[test]
fn the_latest_dataset_request_wins_whatever_order_the_replies_come_in() {
    // Fashion (2) then MNIST (3) picked at once; Fashion's slower load lands last.
    let s = ready()
        .reduce(Action::LoadRequested(2))
        .reduce(Action::LoadRequested(3));
    let s = reply(
        s,
        Reply::DatasetLoading {
            id: 2,
            name: "Fashion-MNIST".into(),
        },
    );
    let s = reply(s, loaded(3, "MNIST", 8000));
    let s = reply(s, loaded(2, "Fashion-MNIST", 60000));
    let s = reply(
        s,
        Reply::DatasetFailed {
            id: 2,
            message: "late failure".into(),
        },
    );
    assert_eq!(s.dataset_name, "MNIST");
    assert_eq!(s.dataset_sizes, (8000, 1));
    assert_eq!(s.phase, Phase::Ready);
    assert!(s.notices.iter().all(|n| n.level != Level::Error));
    // The current request's failure does count.
    let s = reply(
        s.reduce(Action::LoadRequested(4)),
        Reply::DatasetFailed {
            id: 4,
            message: "HTTP 404".into(),
        },
    );
    assert_eq!(s.phase, Phase::Error);
    assert!(has_notice(&s, Level::Error, "HTTP 404"));
}

#[test]
fn user_files_become_current_or_say_why_not() {
    let s = ready().reduce(Action::LoadRequested(2));
    let s = reply(
        s,
        Reply::FilesRejected {
            id: 2,
            message: "the file holds more than its header says".into(),
        },
    );
    assert_eq!(
        s.file_error.as_deref(),
        Some("the file holds more than its header says")
    );
    assert_eq!(s.dataset_name, "MNIST", "the current dataset stays");
    let s = s.reduce(Action::LoadRequested(3));
    let mut custom = loaded(3, "your files (60000 train / 1 test)", 60000);
    if let Reply::DatasetLoaded { custom: c, .. } = &mut custom {
        *c = true;
    }
    let s = reply(s, custom);
    assert!(s.custom_loaded && s.file_error.is_none());
    assert_eq!(s.form.get("dataset"), "custom");
    assert!(s.checked().config.is_some());
    // A size refused on the page.
    let s = s.reduce(Action::FileError("big.gz is 900 MB".into()));
    assert!(has_notice(&s, Level::Error, "900 MB"));
}

#[test]
fn a_run_goes_from_started_to_done_through_its_events() {
    let s = training(7);
    let s = reply(
        s,
        Reply::Train {
            id: 7,
            event: Event::Started {
                epochs: 1,
                steps_per_epoch: 10,
                train_examples: 320,
                test_examples: 1,
                pk_epoch: None,
            },
        },
    );
    let s = reply(
        s,
        Reply::Train {
            id: 7,
            event: step(1, 0.9),
        },
    );
    let s = reply(
        s,
        Reply::Train {
            id: 7,
            event: step(2, 0.8),
        },
    );
    // An event of an older run is not this run's.
    let s = reply(
        s,
        Reply::Train {
            id: 6,
            event: step(3, 99.0),
        },
    );
    assert_eq!(*s.losses, vec![(1, 0.9), (2, 0.8)]);
    assert_eq!(s.progress.global_step, 2);
    let s = reply(
        s,
        Reply::Train {
            id: 7,
            event: Event::Skipped {
                epoch: 1,
                step: 3,
                reason: "no pair".into(),
            },
        },
    );
    assert_eq!(s.skipped, 1);
    let vectors = Arc::new(vec![0.1; 256]);
    let s = reply(
        s,
        Reply::Train {
            id: 7,
            event: Event::Embeddings {
                epoch: 1,
                global_step: 10,
                vectors,
                labels: Arc::new(vec![0]),
            },
        },
    );
    let s = reply(
        s,
        Reply::Projection {
            points: vec![[1.0, 2.0]],
            kind: "PCA, epoch 1, step 10".into(),
        },
    );
    assert_eq!(s.projection.as_ref().unwrap().kind, "PCA, epoch 1, step 10");
    assert_eq!(
        s.embeddings.as_ref().unwrap().note(),
        "1 test embeddings from epoch 1, step 10"
    );
    let s = reply(
        s,
        Reply::Train {
            id: 7,
            event: Event::EpochEnd {
                epoch: 1,
                mean_loss: 0.85,
                figures: Box::default(),
                metrics: Metrics::default(),
                elapsed_s: 3.0,
            },
        },
    );
    assert_eq!(*s.epoch_losses, vec![0.85]);
    assert_eq!(s.metrics.len(), 1);
    let s = reply(
        s,
        Reply::Train {
            id: 7,
            event: Event::Done(summary(false)),
        },
    );
    assert_eq!(s.phase, Phase::Done);
    assert!(s.progress.complete);
    assert_eq!(s.progress.global_step, 10);
    assert!(s.final_metrics.is_some());
    assert!(!s.weights_available, "weights come with RunEnded");
    let s = reply(
        s,
        Reply::RunEnded {
            id: 7,
            weights: true,
        },
    );
    assert!(s.weights_available);
    assert_eq!(s.run_id, None);
}

#[test]
fn pause_and_resume_change_state_when_the_worker_says_so() {
    let s = training(1).reduce(Action::ControlRequested(Control::Pause));
    assert_eq!(s.phase, Phase::Training, "the click alone does not pause");
    let s = reply(s, Reply::Paused);
    assert_eq!(s.phase, Phase::Paused);
    let s = reply(
        s.reduce(Action::ControlRequested(Control::Run)),
        Reply::Resumed,
    );
    assert_eq!(s.phase, Phase::Training);
}

#[test]
fn stop_says_what_the_downloads_hold() {
    let s = training(1).reduce(Action::ControlRequested(Control::Stop));
    assert_eq!(
        s.progress.stop,
        StopState::Requested,
        "the click shows at once"
    );
    let s = reply(s, Reply::Stopping);
    assert_eq!(s.progress.stop, StopState::Seen, "and the worker's answer");
    let s = reply(s, Reply::Stopping);
    assert_eq!(s.progress.stop, StopState::Seen);
    let s = reply(
        s,
        Reply::Train {
            id: 1,
            event: Event::Done(summary(true)),
        },
    );
    assert_eq!(s.phase, Phase::Done);
    assert!(!s.progress.complete && s.progress.stop == StopState::None);
    assert!(has_notice(
        &s,
        Level::Info,
        "Stopped after 10 steps (1 epochs complete)"
    ));
    assert!(s.final_metrics.is_some());
    // The worker embeds the stopped weights after Done, before RunEnded: still this run's.
    let s = reply(
        s,
        Reply::Train {
            id: 1,
            event: Event::Embeddings {
                epoch: 1,
                global_step: 4,
                vectors: Arc::new(vec![0.0; 256]),
                labels: Arc::new(vec![1]),
            },
        },
    );
    assert_eq!(
        s.embeddings.as_ref().unwrap().note(),
        "1 test embeddings from epoch 1, step 4"
    );
    // Stopped before any epoch ended: no final metrics row.
    let mut early = summary(true);
    early.epochs_completed = 0;
    let s = reply(
        training(2),
        Reply::Train {
            id: 2,
            event: Event::Done(early),
        },
    );
    assert!(s.final_metrics.is_none());
}

#[test]
fn a_refused_or_failed_run_says_why() {
    // Training from the click on; back to ready when the worker refuses.
    let s = ready().reduce(Action::TrainRequested(3));
    assert_eq!(s.phase, Phase::Training);
    let s = reply(
        s,
        Reply::TrainRefused {
            id: 3,
            reason: "the device is still starting".into(),
        },
    );
    assert_eq!(s.phase, Phase::Ready);
    assert!(has_notice(
        &s,
        Level::Error,
        "Train was refused: the device is still starting."
    ));
    // A second request sent before the first was answered: the first starts, the second
    // is refused, and the first run's events are shown.
    let s = ready()
        .reduce(Action::TrainRequested(4))
        .reduce(Action::TrainRequested(5));
    let s = reply(
        s,
        Reply::TrainStarted {
            id: 4,
            epochs: 1,
            from_weights: None,
        },
    );
    let s = reply(
        s,
        Reply::TrainRefused {
            id: 5,
            reason: "run 4 is still in progress".into(),
        },
    );
    let s = reply(
        s,
        Reply::Train {
            id: 4,
            event: step(1, 0.7),
        },
    );
    assert_eq!((s.phase, s.run_id), (Phase::Training, Some(4)));
    assert_eq!(*s.losses, vec![(1, 0.7)]);
    let s = training(1).reduce(Action::TrainRequested(2));
    let s = reply(
        s,
        Reply::TrainRefused {
            id: 2,
            reason: "run 1 is still in progress: stop it first".into(),
        },
    );
    assert_eq!(s.phase, Phase::Training, "the active run goes on");
    assert!(has_notice(&s, Level::Error, "still in progress"));
    // ... and its events are still shown.
    let s = reply(
        s,
        Reply::Train {
            id: 1,
            event: step(5, 0.4),
        },
    );
    assert_eq!(*s.losses, vec![(5, 0.4)]);
    let s = reply(
        s,
        Reply::Train {
            id: 1,
            event: Event::Failed(TrainError::NonFinite {
                epoch: 1,
                step: 3,
                value: f32::NAN,
            }),
        },
    );
    assert_eq!(s.phase, Phase::Error);
    assert!(has_notice(
        &s,
        Level::Error,
        "Training failed: the loss became NaN"
    ));
    let s = reply(
        training(3),
        Reply::Train {
            id: 3,
            event: Event::Failed(TrainError::Device("lost".into())),
        },
    );
    assert!(has_notice(
        &s,
        Level::Error,
        "Training stopped: the GPU device failed: lost"
    ));
    assert!(!s.device_ready, "Train waits for the new device");
    let s = reply(
        s,
        Reply::DeviceReady {
            webgpu: true,
            adapter: "WebGPU".into(),
            fallback: None,
            batch_limit: BatchLimit {
                max: 2330,
                why: "on WebGPU".into(),
            },
        },
    );
    assert!(s.device_ready);
}

fn progress(id: Id, done: usize, kind: &str, points: Vec<[f32; 2]>) -> Reply {
    Reply::LayoutProgress {
        id,
        done,
        total: 100,
        kind: kind.into(),
        points,
    }
}

const UMAP: LayoutRequest = LayoutRequest::Umap {
    n_neighbors: 15,
    min_dist: 0.1,
};

#[test]
fn only_the_latest_layout_draws() {
    let s = ready()
        .reduce(Action::LayoutRequested(4, LayoutRequest::Tsne))
        .reduce(Action::LayoutRequested(5, UMAP));
    let job = |s: &State| s.layout.as_ref().map(|j| (j.name, j.done, j.total));
    assert_eq!(job(&s), Some(("UMAP", 0, 1)));
    let s = reply(
        s,
        progress(4, 10, "t-SNE, iteration 10 of 100", vec![[9.0, 9.0]]),
    );
    assert!(s.projection.is_none());
    let s = reply(s, Reply::LayoutEnded { id: 4, error: None });
    assert_eq!(
        job(&s),
        Some(("UMAP", 0, 1)),
        "an older layout's end is not this one's"
    );
    assert!(s.notices.is_empty());
    // While UMAP searches its neighbours there is nothing new to draw.
    let s = reply(
        s,
        progress(5, 0, "UMAP, finding each point's neighbours", vec![]),
    );
    assert!(s.projection.is_none());
    let s = reply(
        s,
        progress(5, 20, "UMAP, epoch 20 of 100", vec![[1.0, 1.0]]),
    );
    assert_eq!(job(&s), Some(("UMAP", 20, 100)));
    assert_eq!(s.projection.as_ref().unwrap().kind, "UMAP, epoch 20 of 100");
    let s = reply(
        s,
        Reply::LayoutDone {
            id: 5,
            kind: "UMAP, n_neighbors 15, min_dist 0.1, 100 epochs".into(),
        },
    );
    assert_eq!(s.layout, None);
    assert_eq!(
        s.projection.as_ref().unwrap().kind,
        "UMAP, n_neighbors 15, min_dist 0.1, 100 epochs"
    );
    let s = reply(
        s.reduce(Action::LayoutRequested(6, LayoutRequest::Tsne)),
        Reply::LayoutEnded {
            id: 6,
            error: Some("no embeddings".into()),
        },
    );
    assert!(s.layout.is_none() && has_notice(&s, Level::Error, "t-SNE failed: no embeddings"));
    // The latest one cancelled by a new run: said so.
    let s = reply(
        s.reduce(Action::LayoutRequested(7, LayoutRequest::Tsne)),
        Reply::LayoutEnded { id: 7, error: None },
    );
    assert!(
        s.layout.is_none() && has_notice(&s, Level::Info, "t-SNE was cancelled by the new run")
    );
}

#[test]
fn cancel_keeps_the_layout_so_far_and_says_so() {
    let s = reply(
        ready().reduce(Action::LayoutRequested(3, UMAP)),
        progress(3, 40, "UMAP, epoch 40 of 100", vec![[2.0, 3.0]]),
    )
    .reduce(Action::LayoutCancelled);
    assert!(
        s.layout.as_ref().unwrap().cancelling,
        "shown as cancelling until the worker says"
    );
    let s = reply(s, Reply::LayoutEnded { id: 3, error: None });
    assert!(s.layout.is_none());
    assert!(has_notice(
        &s,
        Level::Info,
        "UMAP was cancelled; the projection shows where it got to"
    ));
    assert_eq!(s.projection.as_ref().unwrap().points.0[..], [[2.0, 3.0]]);
    assert_eq!(s.projection.as_ref().unwrap().kind, "UMAP, epoch 40 of 100");
}

#[test]
fn the_umap_fields_come_from_the_url_and_the_form() {
    let s = State::from_url(&[("n_neighbors".into(), "5".into())])
        .reduce(Action::LayoutField("min_dist".into(), "0.3".into()));
    assert_eq!(
        s.layout_form.umap(100),
        Ok(LayoutRequest::Umap {
            n_neighbors: 5,
            min_dist: 0.3
        })
    );
}

#[test]
fn a_lost_worker_is_an_error_with_advice_until_a_fresh_one_is_ready() {
    let s = training(1).reduce(Action::WorkerLost("RuntimeError: unreachable".into()));
    assert_eq!(s.phase, Phase::Error);
    assert!(!s.device_ready && !s.dataset_ready && s.run_id.is_none());
    assert!(has_notice(
        &s,
        Level::Error,
        "ran out of memory: try a smaller batch"
    ));
    let s = reply(
        reply(s.reduce(Action::LoadRequested(9)), device()),
        loaded(9, "MNIST", 8000),
    );
    assert_eq!(s.phase, Phase::Ready);
    assert!(!s.worker_lost);
}

#[test]
fn banners_do_not_repeat_and_can_be_dismissed() {
    let s = reply(
        reply(
            fresh(),
            Reply::Problem {
                message: "x".into(),
            },
        ),
        Reply::Problem {
            message: "x".into(),
        },
    );
    assert_eq!(s.notices.len(), 1);
    let s = reply(
        s,
        Reply::WeightsRejected {
            message: "w: not safetensors".into(),
        },
    );
    let s = s.reduce(Action::Dismiss(0)).reduce(Action::Dismiss(7));
    assert_eq!(s.notices.len(), 1);
    assert!(has_notice(&s, Level::Error, "not safetensors"));
    let s = reply(
        s,
        Reply::WeightsLoaded {
            name: "w.safetensors".into(),
        },
    );
    assert_eq!(s.weights_label.as_deref(), Some("w.safetensors"));
}

#[test]
fn the_form_is_checked_against_the_device_s_batch_limit() {
    let s = ready().reduce(Action::Field("batch".into(), "4096".into()));
    assert_eq!(
        s.checked().errors["batch"],
        "this device trains batches of up to 2330 (on WebGPU)"
    );
    let s = s.reduce(Action::Field("batch".into(), "2330".into()));
    assert!(s.checked().config.is_some());
}

#[test]
fn the_raw_pixel_baseline_belongs_to_the_run_shown() {
    let raw = Metrics {
        knn1_acc: Some(0.951),
        ..Metrics::default()
    };
    let s = training(2);
    let s = reply(
        s,
        Reply::RawPixels {
            id: 1,
            scores: Ok(raw.clone()),
        },
    );
    assert!(
        s.raw_pixels.is_none(),
        "an older run's baseline is not this one's"
    );
    let s = reply(
        s,
        Reply::RawPixels {
            id: 2,
            scores: Ok(raw.clone()),
        },
    );
    assert_eq!(s.raw_pixels.as_ref().unwrap().as_deref(), Ok(&raw));
    let s = reply(
        s.reduce(Action::TrainRequested(3)),
        Reply::TrainStarted {
            id: 3,
            epochs: 1,
            from_weights: None,
        },
    );
    assert!(s.raw_pixels.is_none(), "a new run clears it");
    let s = reply(
        s,
        Reply::RawPixels {
            id: 3,
            scores: Err("too large".into()),
        },
    );
    assert_eq!(s.raw_pixels, Some(Err("too large".into())));
}

#[test]
fn only_the_latest_query_is_shown_and_a_new_run_clears_it() {
    let answer = tripletlab_core::query::Answer {
        neighbours: vec![],
        votes: vec![(7, 8)],
        test_neighbours: vec![],
        pca: Some([0.5, 0.5]),
        weights_at: (1, 3),
    };
    let got = |id: Id| Reply::QueryAnswer {
        id,
        image: vec![0; 784],
        label: None,
        neighbour_images: vec![],
        answer: answer.clone(),
    };
    let s = training(1)
        .reduce(Action::QueryRequested(5))
        .reduce(Action::QueryRequested(6));
    let s = reply(s, got(5));
    assert!(
        s.query.is_none() && s.query_pending == Some(6),
        "an older question's answer"
    );
    let s = reply(s, got(6));
    assert_eq!(s.query.as_ref().unwrap().answer.votes, [(7, 8)]);
    assert_eq!(s.query_pending, None);
    let s = reply(
        s.reduce(Action::QueryRequested(7)),
        Reply::QueryFailed {
            id: 7,
            message: "train first".into(),
        },
    );
    assert!(has_notice(
        &s,
        Level::Error,
        "The query failed: train first"
    ));
    assert!(s.query.is_some(), "a failure keeps the last answer");
    let s = reply(
        s.reduce(Action::TrainRequested(2)),
        Reply::TrainStarted {
            id: 2,
            epochs: 1,
            from_weights: None,
        },
    );
    assert!(s.query.is_none());
}

#[test]
fn a_query_lands_exactly_on_a_pca_and_among_its_neighbours_elsewhere() {
    use tripletlab_core::query::{Answer, Match};
    let mut s = ready();
    s.query = Some(Rc::new(QueryView {
        image: vec![],
        label: None,
        neighbour_images: vec![],
        answer: Answer {
            neighbours: vec![],
            votes: vec![],
            test_neighbours: vec![
                Match {
                    index: 0,
                    label: 1,
                    cosine: 0.75,
                },
                Match {
                    index: 1,
                    label: 1,
                    cosine: 0.25,
                },
            ],
            pca: Some([7.0, 8.0]),
            weights_at: (1, 1),
        },
    }));
    assert_eq!(s.query_place(), None, "no projection yet");
    let view = |kind: &str| ProjectionView {
        points: Shared(Arc::new(vec![[0.0, 0.0], [4.0, 8.0]])),
        kind: kind.into(),
    };
    s.projection = Some(view("PCA, epoch 1, step 5"));
    let (xy, how) = s.query_place().unwrap();
    assert_eq!(xy, [7.0, 8.0]);
    assert!(how.contains("exact place"), "{how}");
    s.projection = Some(view("UMAP, n_neighbors 15, min_dist 0.1, 500 epochs"));
    let (xy, how) = s.query_place().unwrap();
    assert_eq!(xy, [1.0, 2.0]);
    assert!(
        how.starts_with("The ✚ on the UMAP is placed at the similarity-weighted mean of its 2"),
        "{how}"
    );
}

#[test]
fn the_mining_is_kept_per_step_and_a_collapsing_epoch_warns_for_its_run_only() {
    use tripletlab_core::run::Collapse;
    let mined = MiningStats {
        terms: 12,
        semi_hard: 9,
        fallback: 3,
        active: 6,
        ..MiningStats::default()
    };
    let mut s = training(7);
    for (i, mining) in [MiningStats::default(), mined].into_iter().enumerate() {
        let event = Event::Step {
            epoch: 1,
            step: i + 1,
            steps_per_epoch: 10,
            global_step: i + 1,
            loss: 0.9,
            mining,
            examples_per_s: 100.0,
            elapsed_s: 1.0,
        };
        s = reply(s, Reply::Train { id: 7, event });
    }
    assert_eq!(s.mining_steps.len(), 2);
    assert_eq!(s.mining_steps[1], (2, mined));
    let end = |collapsing: bool| Reply::Train {
        id: 7,
        event: Event::EpochEnd {
            epoch: 1,
            mean_loss: 0.85,
            figures: Box::new(EpochFigures {
                collapse: Collapse {
                    mean_cosine: if collapsing { 0.95 } else { 0.1 },
                    spread: 0.3,
                    collapsing,
                },
                ..EpochFigures::default()
            }),
            metrics: Metrics::default(),
            elapsed_s: 3.0,
        },
    };
    let calm = reply(s.clone(), end(false));
    assert_eq!(calm.epoch_figures.len(), 1);
    assert!(!calm.notices.iter().any(|n| n.text.contains("collapsing")));
    let s = reply(s, end(true));
    assert!(has_notice(
        &s,
        Level::Warning,
        "Epoch 1: the embedding is collapsing"
    ));
    // The next run starts without it (other warnings, e.g. the CPU fallback's, stay).
    let s = reply(
        s.reduce(Action::TrainRequested(8)),
        Reply::TrainStarted {
            id: 8,
            epochs: 1,
            from_weights: None,
        },
    );
    assert!(!s.notices.iter().any(|n| n.text.contains("collapsing")));
    assert!(s.mining_steps.is_empty() && s.epoch_figures.is_empty());
}

#[test]
fn the_latest_triplets_and_the_p_by_k_epoch_belong_to_their_run() {
    use tripletlab_core::data::PkEpoch;
    use tripletlab_core::run::TripletSample;
    let labels: Vec<u8> = (0..40).map(|i| (i % 10) as u8).collect();
    let pk = PkEpoch::of(&labels, 4, 2).unwrap();
    let mut s = training(7);
    let started = Event::Started {
        epochs: 1,
        steps_per_epoch: pk.batches,
        train_examples: 40,
        test_examples: 1,
        pk_epoch: Some(pk.clone()),
    };
    s = reply(
        s,
        Reply::Train {
            id: 7,
            event: started,
        },
    );
    assert_eq!(s.progress.pk_epoch, Some(pk.describe()));
    let sample = |step| TripletSample {
        epoch: 1,
        step,
        mining: Mining::SemiHard,
        batch: 8,
        mined_among: 8,
        terms: 8,
        semi_hard: 5,
        fallback: 3,
        active: 4,
        shown: Vec::new(),
    };
    for step in [3, 5] {
        let event = Event::Triplets(Box::new(sample(step)));
        s = reply(s, Reply::Train { id: 7, event });
    }
    // Only the latest is kept; an older run's is not this run's.
    let event = Event::Triplets(Box::new(sample(9)));
    s = reply(s, Reply::Train { id: 6, event });
    assert_eq!(s.triplets.as_deref(), Some(&sample(5)));
    let s = reply(
        s.reduce(Action::TrainRequested(8)),
        Reply::TrainStarted {
            id: 8,
            epochs: 1,
            from_weights: None,
        },
    );
    assert_eq!(s.triplets, None);
    assert_eq!(s.progress.pk_epoch, None);
}

#[test]
fn p_by_k_settings_are_checked_against_the_loaded_training_set() {
    // 40 training examples, labels 0..9 four times: K = 8 finds no class with 8 examples.
    let mut s = reply(
        fresh().reduce(Action::LoadRequested(1)),
        loaded(1, "MNIST", 40),
    );
    for (k, v) in [("sampler", "pk"), ("batch", "16"), ("per_class", "8")] {
        s = s.reduce(Action::Field(k.into(), v.into()));
    }
    let checked = s.checked();
    assert_eq!(checked.config, None);
    assert!(
        checked.errors["per_class"].starts_with("0 classes of the training set have 8 examples"),
        "{:?}",
        checked.errors
    );
    assert_eq!(s.pk_note(), None);
    let s = s.reduce(Action::Field("per_class".into(), "2".into()));
    assert!(s.checked().config.is_some());
    assert!(
        s.pk_note()
            .unwrap()
            .starts_with("P×K batches: 8 classes × 2 examples")
    );
}
