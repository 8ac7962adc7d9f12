//! The files a run leaves in its output folder, shared by `train` and `embed`: vecs.tsv and
//! meta.tsv (the Embedding Projector's), weights.safetensors, and metrics.json (its common
//! fields here; each command adds its own).

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use tripletlab_core::backend::BackendKind;
use tripletlab_core::baseline::raw_pixel_metrics;
use tripletlab_core::export::{write_meta_tsv, write_vecs_tsv};
use tripletlab_core::metrics::Metrics;
use tripletlab_engine::model::EMBEDDING_DIM;
use tripletlab_engine::train::{Trainer, held_out_loss};

/// Writes `name` in `out` through `f`, naming the file in an error.
fn write_file(
    out: &Path,
    name: &str,
    f: &dyn Fn(&mut std::io::BufWriter<std::fs::File>) -> Result<(), String>,
) -> Result<(), String> {
    let path = out.join(name);
    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    f(&mut w)?;
    w.flush().map_err(|e| format!("{}: {e}", path.display()))
}

/// Embeds the trainer's test set with its current weights and writes vecs.tsv, meta.tsv and
/// weights.safetensors; returns the test vectors.
pub(super) fn write_embedding_files(out: &Path, trainer: &Trainer) -> Result<Vec<f32>, String> {
    let test_vectors =
        pollster::block_on(trainer.embed(trainer.test_set())).map_err(|e| e.to_string())?;
    write_file(out, "vecs.tsv", &|w| {
        write_vecs_tsv(w, &test_vectors, EMBEDDING_DIM).map_err(|e| e.to_string())
    })?;
    write_file(out, "meta.tsv", &|w| {
        write_meta_tsv(w, &trainer.test_set().labels).map_err(|e| e.to_string())
    })?;
    let weights =
        pollster::block_on(trainer.model().to_safetensors()).map_err(|e| e.to_string())?;
    let weights_path = out.join("weights.safetensors");
    std::fs::write(&weights_path, weights)
        .map_err(|e| format!("{}: {e}", weights_path.display()))?;
    Ok(test_vectors)
}

/// metrics.json's common fields: where the data came from, the sizes, and the run's own loss on
/// the test embeddings (`test_loss`, see [`held_out_loss`]; `null` when no batch has one).
pub(super) fn report_of(
    dataset: &str,
    backend: BackendKind,
    trainer: &Trainer,
    test_vectors: &[f32],
) -> Value {
    json!({
        "dataset": dataset,
        "backend": backend.as_str(),
        "engine": trainer.engine().as_str(),
        "n_train": trainer.train_set().len(),
        "n_test": trainer.test_set().len(),
        "test_loss": held_out_loss(
            trainer.config(),
            test_vectors,
            &trainer.test_set().labels,
            EMBEDDING_DIM,
        ),
    })
}

/// The scores of a set of embeddings into metrics.json: kNN-1/kNN-5 against the training
/// embeddings (when computed), with kNN-1's confusion matrix (`confusion`: `labels`, and
/// `counts[true][predicted]`) and accuracy per class (`per_class_knn1`, by label), and the
/// leave-one-out precision@1 and MAP@R.
pub(super) fn add_scores(report: &mut Value, m: &Metrics) {
    report["knn1_acc"] = json!(m.knn1_acc);
    report["knn5_acc"] = json!(m.knn5_acc);
    report["precision_at_1"] = json!(m.precision_at_1);
    report["map_at_r"] = json!(m.map_at_r);
    report["confusion"] = json!(m.knn1_confusion);
    report["per_class_knn1"] = match &m.knn1_confusion {
        Some(c) => c
            .labels
            .iter()
            .zip(c.per_class_accuracy())
            .filter_map(|(l, acc)| acc.map(|a| (l.to_string(), json!(a))))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        None => Value::Null,
    };
}

/// What the raw pixels score: kNN-1 of the test images against the training images by cosine
/// on pixels / 255 (see [`tripletlab_core::baseline`]).
pub(super) fn raw_pixel_knn1(trainer: &Trainer) -> Result<Option<f64>, String> {
    let m =
        raw_pixel_metrics(trainer.train_set(), trainer.test_set()).map_err(|e| e.to_string())?;
    Ok(m.knn1_acc)
}

/// Writes metrics.json.
pub(super) fn write_report(out: &Path, report: &Value) -> Result<(), String> {
    let path = out.join("metrics.json");
    std::fs::write(&path, serde_json::to_string_pretty(report).expect("json"))
        .map_err(|e| format!("{}: {e}", path.display()))
}
