//! The `tripletlab` CLI end to end: a short training run (quality floor, outputs, determinism),
//! `eval`, `loss`, and bad input (one-line errors, non-zero exit, no panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tripletlab"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A one-line error, no panic, non-zero exit.
fn assert_clean_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "panic: {err}"
    );
    assert!(
        err.contains(needle),
        "error should mention '{needle}': {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
}

fn train(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--quiet", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn short_training_run_learns_and_writes_projector_files() {
    let dir = tempfile::tempdir().unwrap();
    let o = train(
        dir.path(),
        &[
            "--epochs",
            "1",
            "--train-limit",
            "2048",
            "--test-limit",
            "500",
            "--seed",
            "3",
        ],
    );
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    // --quiet logs each epoch on stdout; stderr stays free for an error's one line.
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("epoch 1: loss"),
        "no epoch line"
    );
    assert_eq!(stderr(&o), "");

    let vecs = read(dir.path().join("vecs.tsv"));
    let meta = read(dir.path().join("meta.tsv"));
    let rows: Vec<&str> = vecs.lines().collect();
    assert_eq!(rows.len(), 500);
    for row in &rows {
        let v: Vec<f64> = row.split('\t').map(|x| x.parse().unwrap()).collect();
        assert_eq!(v.len(), 256);
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "row norm {norm}");
    }
    assert_eq!(meta.lines().count(), 500);
    assert!(dir.path().join("weights.safetensors").is_file());

    let metrics: serde_json::Value =
        serde_json::from_str(&read(dir.path().join("metrics.json"))).unwrap();
    let knn1 = metrics["knn1_acc"].as_f64().unwrap();
    let losses = metrics["epoch_losses"].as_array().unwrap();
    assert_eq!(losses.len(), 1);
    assert!(
        losses[0].as_f64().unwrap() < 1.0,
        "loss did not drop below the margin"
    );
    // Chance is 0.10; 64 steps on 2k digits reach well above 0.8.
    assert!(knn1 > 0.8, "kNN-1 after a short run: {knn1}");
    for key in [
        "knn5_acc",
        "precision_at_1",
        "map_at_r",
        "examples_per_s",
        "skipped_batches",
    ] {
        assert!(metrics.get(key).is_some(), "metrics.json lacks {key}");
    }

    // `eval` scores the files it wrote the same way.
    let o = run(&[
        "eval",
        "--vecs",
        dir.path().join("vecs.tsv").to_str().unwrap(),
        "--meta",
        dir.path().join("meta.tsv").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let scored: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p1 = scored["precision_at_1"].as_f64().unwrap();
    assert!((p1 - metrics["precision_at_1"].as_f64().unwrap()).abs() < 1e-9);
}

#[test]
fn same_seed_gives_identical_vecs_and_another_seed_does_not() {
    let args = [
        "--epochs",
        "1",
        "--train-limit",
        "256",
        "--test-limit",
        "64",
        "--no-knn",
    ];
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for (d, seed) in dirs.iter().zip(["5", "5", "6"]) {
        let mut a = args.to_vec();
        a.extend(["--seed", seed]);
        let o = train(d.path(), &a);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let v: Vec<Vec<u8>> = dirs
        .iter()
        .map(|d| std::fs::read(d.path().join("vecs.tsv")).unwrap())
        .collect();
    assert_eq!(v[0], v[1], "same seed, different vecs.tsv");
    assert_ne!(v[0], v[2], "different seeds, same vecs.tsv");
}

#[test]
fn loss_command_prints_golden_schema_json() {
    let cases = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/triplet_semihard.json"
    );
    let o = run(&["loss", "--cases", cases]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arr = out.as_array().unwrap();
    assert_eq!(arr.len(), 49);
    let doc = &arr[0];
    assert_eq!(doc["name"], "doc_example_L2");
    assert!(doc["grad"].is_array());
    let nan = arr
        .iter()
        .find(|c| c["name"] == "b2_distinct_labels_nan")
        .unwrap();
    assert_eq!(nan["loss"], "NaN");
}

#[test]
fn bad_input_gives_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    // Absurd settings.
    assert_clean_error(&run(&["train", "--out", out, "--batch-size", "1"]), "batch");
    assert_clean_error(&run(&["train", "--out", out, "--lr=-1"]), "lr");
    assert_clean_error(&run(&["train", "--out", out, "--epochs", "0"]), "epochs");
    assert_clean_error(&run(&["train", "--out", out, "--lr", "NaN"]), "lr");
    assert_clean_error(
        &run(&["train", "--out", out, "--metric", "manhattan"]),
        "manhattan",
    );
    assert_clean_error(
        &run(&["train", "--out", out, "--dataset", "/nonexistent"]),
        "nonexistent",
    );
    // A dataset folder with a corrupt file.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/www/data/mnist");
    for f in [
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(Path::new(src).join(f), data.join(f)).unwrap();
    }
    std::fs::write(
        data.join("train-images-idx3-ubyte.gz"),
        b"\x1f\x8bthis is not gzip",
    )
    .unwrap();
    assert_clean_error(
        &run(&["train", "--out", out, "--dataset", data.to_str().unwrap()]),
        "train images",
    );
    // eval with mismatched files, loss with a broken case file.
    let vecs = dir.path().join("v.tsv");
    let meta = dir.path().join("m.tsv");
    std::fs::write(&vecs, "1\t0\n0\t1\n").unwrap();
    std::fs::write(&meta, "1\n2\n3\n").unwrap();
    assert_clean_error(
        &run(&[
            "eval",
            "--vecs",
            vecs.to_str().unwrap(),
            "--meta",
            meta.to_str().unwrap(),
        ]),
        "labels",
    );
    std::fs::write(&vecs, "1\t0\n0\n").unwrap();
    assert_clean_error(
        &run(&[
            "eval",
            "--vecs",
            vecs.to_str().unwrap(),
            "--meta",
            meta.to_str().unwrap(),
        ]),
        "line 2",
    );
    let cases = dir.path().join("c.json");
    std::fs::write(&cases, r#"[{"labels":[1,2],"embeddings":[[1.0]]}]"#).unwrap();
    assert_clean_error(&run(&["loss", "--cases", cases.to_str().unwrap()]), "rows");
}

/// The train-labels and both test files of the bundled MNIST, copied into `dir` (the train
/// images are left to the test).
fn dataset_without_train_images(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/www/data/mnist");
    for f in [
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(Path::new(src).join(f), dir.join(f)).unwrap();
    }
}

#[test]
fn a_diverged_run_keeps_the_last_finite_state_and_says_so_in_one_line() {
    use tripletlab::backend::cpu_device;
    use tripletlab::model::EmbedNetConfig;
    // Weights whose activations overflow: the first step's loss is NaN. No engine may apply
    // that step, and the run must still write its outputs for the weights it kept.
    let device = cpu_device();
    let start = EmbedNetConfig::new().init(7, &device).to_parts().unwrap();
    let huge = start
        .clone()
        .map(|t| t.into_iter().map(|v| v * 1e30).collect::<Vec<f32>>());
    let bytes = pollster::block_on(
        EmbedNetConfig::new()
            .from_parts(huge.clone(), &device)
            .to_safetensors(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("start.safetensors");
    std::fs::write(&weights, bytes).unwrap();
    for engine in ["auto", "autodiff"] {
        let out = dir.path().join(engine);
        let o = train(
            &out,
            &[
                "--weights",
                weights.to_str().unwrap(),
                "--engine",
                engine,
                "--epochs",
                "1",
                "--limit-train",
                "96",
                "--limit-test",
                "40",
                "--no-knn",
            ],
        );
        assert_clean_error(&o, "the loss became NaN");
        assert!(
            stderr(&o).contains("last finite state was written"),
            "{}",
            stderr(&o)
        );
        let kept = std::fs::read(out.join("weights.safetensors")).unwrap();
        let kept = EmbedNetConfig::new()
            .load_safetensors(&kept, &device)
            .unwrap_or_else(|e| panic!("{engine}: the kept weights do not load: {e}"));
        assert_eq!(
            kept.to_parts().unwrap(),
            huge,
            "{engine}: a non-finite step was applied"
        );
        assert_eq!(read(out.join("vecs.tsv")).lines().count(), 40);
        assert_eq!(read(out.join("meta.tsv")).lines().count(), 40);
        let metrics: serde_json::Value =
            serde_json::from_str(&read(out.join("metrics.json"))).unwrap();
        assert!(
            metrics["error"].as_str().unwrap().contains("NaN"),
            "{metrics}"
        );
        assert_eq!(metrics["n_test"], 40);
    }
}

#[test]
fn absurd_sizes_are_refused_at_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let o = run(&[
        "train",
        "--out",
        out,
        "--batch",
        "100000",
        "--limit-train",
        "300",
    ]);
    assert_clean_error(&o, "batch");
    assert!(
        stderr(&o).contains("4096"),
        "the limit is named: {}",
        stderr(&o)
    );
    let o = run(&["train", "--out", out, "--lr", "1e6"]);
    assert_clean_error(&o, "lr");
    assert!(!Path::new(out).join("weights.safetensors").exists());
}

#[test]
fn a_case_of_20000_rows_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let labels: Vec<String> = (0..n).map(|i| (i % 10).to_string()).collect();
    let rows: Vec<String> = (0..n).map(|i| format!("[{}.5]", i % 7)).collect();
    let json = format!(
        r#"[{{"name":"big","labels":[{}],"embeddings":[{}]}}]"#,
        labels.join(","),
        rows.join(",")
    );
    let cases = dir.path().join("big.json");
    std::fs::write(&cases, json).unwrap();
    let t = std::time::Instant::now();
    let o = run(&["loss", "--cases", cases.to_str().unwrap()]);
    assert_clean_error(&o, "20000 rows");
    assert!(stderr(&o).contains("limit of 4096 rows"), "{}", stderr(&o));
    assert!(t.elapsed().as_secs() < 10, "took {:?}", t.elapsed());
}

#[test]
fn a_gzip_bomb_in_the_dataset_fails_fast() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    dataset_without_train_images(&data);
    // A full-MNIST header and images, then 16 GiB of zeros as 1024 concatenated gzip members of
    // 16 MiB each (a 17 MB file). Inflating it all would take minutes and 16 GiB of memory.
    let gzip = |bytes: &[u8]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    };
    let mut head = vec![0, 0, 8, 3];
    for d in [60_000u32, 28, 28] {
        head.extend_from_slice(&d.to_be_bytes());
    }
    head.resize(16 + 60_000 * 784, 0);
    let mut bomb = gzip(&head);
    let member = gzip(&vec![0u8; 16 << 20]);
    for _ in 0..1024 {
        bomb.extend_from_slice(&member);
    }
    std::fs::write(data.join("train-images-idx3-ubyte.gz"), &bomb).unwrap();
    let out = dir.path().join("out");
    let t = std::time::Instant::now();
    let o = run(&[
        "train",
        "--out",
        out.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
    ]);
    assert_clean_error(&o, "train images: the file holds more than its header says");
    assert!(t.elapsed().as_secs() < 10, "took {:?}", t.elapsed());
}
