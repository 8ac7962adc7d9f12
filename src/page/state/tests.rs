//! Tests of the reducer: every reply of the worker, stale replies, controls, refusals.

use std::sync::Arc;

use super::*;
use crate::protocol::TestImages;
use crate::train::Summary;
use crate::train::{Event, TrainError};

fn fresh() -> State {
    State::from_query(&[])
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

#[test]
fn only_the_latest_tsne_draws() {
    let s = ready()
        .reduce(Action::TsneRequested(4))
        .reduce(Action::TsneRequested(5));
    assert_eq!(s.tsne, Some((0, 1)));
    let s = reply(
        s,
        Reply::TsneProgress {
            id: 4,
            iter: 10,
            total: 100,
            points: vec![[9.0, 9.0]],
        },
    );
    assert!(s.projection.is_none());
    let s = reply(s, Reply::TsneEnded { id: 4, error: None });
    assert_eq!(
        s.tsne,
        Some((0, 1)),
        "an older t-SNE's end is not this one's"
    );
    assert!(s.notices.is_empty());
    let s = reply(
        s,
        Reply::TsneProgress {
            id: 5,
            iter: 20,
            total: 100,
            points: vec![[1.0, 1.0]],
        },
    );
    assert_eq!(s.tsne, Some((20, 100)));
    assert_eq!(
        s.projection.as_ref().unwrap().kind,
        "t-SNE, iteration 20 of 100"
    );
    let s = reply(
        s,
        Reply::TsneDone {
            id: 5,
            perplexity: 30.0,
            iterations: 100,
        },
    );
    assert_eq!(s.tsne, None);
    assert_eq!(
        s.projection.as_ref().unwrap().kind,
        "t-SNE, perplexity 30, 100 iterations"
    );
    let s = reply(
        s.reduce(Action::TsneRequested(6)),
        Reply::TsneEnded {
            id: 6,
            error: Some("no embeddings".into()),
        },
    );
    assert!(s.tsne.is_none() && has_notice(&s, Level::Error, "t-SNE failed: no embeddings"));
    // The latest one cancelled by a new run: said so.
    let s = reply(
        s.reduce(Action::TsneRequested(7)),
        Reply::TsneEnded { id: 7, error: None },
    );
    assert!(s.tsne.is_none() && has_notice(&s, Level::Info, "t-SNE was cancelled by the new run"));
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
