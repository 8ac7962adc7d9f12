//! Hostile input, tried by machines: property tests (proptest, fixed seed, 10,000 cases each)
//! over everything a user can hand the app as bytes or text:
//!
//! * IDX files (`data::parse_images` / `parse_labels`): valid files with byte flips,
//!   truncations, header words replaced, bytes inserted or appended, gzip wrapping and
//!   re-wrapping, in any order;
//! * safetensors weights (`EmbedNetConfig::load_safetensors`): a tensor in F64, NaN / inf / 1e30
//!   values, a missing or an extra tensor, truncation, a header that lies about offsets, shapes
//!   or its own length;
//! * vecs.tsv / meta.tsv text (`export::text_of`, `parse_vecs_tsv`, `parse_meta_tsv`, then
//!   `metrics::evaluate`): NaN, inf, ragged rows, blank lines, non-UTF-8 bytes, labels past u32.
//!
//! None may panic: each input gives a value or a typed error whose message is one line. A panic
//! inside a case is caught by proptest and fails the test with the (shrunk) input.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::Value;

use tripletlab_core::data::{FileRole, parse_images, parse_labels};
use tripletlab_core::export::{parse_meta_tsv, parse_vecs_tsv, text_of};
use tripletlab_core::metrics::evaluate;
use tripletlab_engine::device::cpu_device;
use tripletlab_engine::model::{EmbedNetConfig, WEIGHT_TENSORS};

/// Cases per property.
const CASES: u32 = 10_000;

/// A runner with a fixed seed (the same inputs on every run) and no failure files.
fn runner(seed: u8) -> TestRunner {
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

/// An error message is one line (the CLI prints it as is).
fn one_line(e: &dyn std::fmt::Display) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(
        !text.is_empty() && !text.contains('\n'),
        "message: {text:?}"
    );
    Ok(())
}

/// How many cases ended each way: proof that the generators reach both sides.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    err: AtomicUsize,
}

impl Tally {
    fn count<T, E>(&self, result: &Result<T, E>) {
        let side = if result.is_ok() { &self.ok } else { &self.err };
        side.fetch_add(1, Relaxed);
    }

    /// Both outcomes occurred in at least 5 % of `total` cases.
    fn check(&self, what: &str, total: usize) {
        let (ok, err) = (self.ok.load(Relaxed), self.err.load(Relaxed));
        eprintln!("{what}: {ok} accepted, {err} rejected with a typed error");
        assert!(
            ok * 20 >= total && err * 20 >= total,
            "{what}: a degenerate generator ({ok} / {err})"
        );
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

// ---------------------------------------------------------------------------------------------
// IDX
// ---------------------------------------------------------------------------------------------

/// One edit of a file's bytes; positions are taken modulo the current length.
#[derive(Clone, Debug)]
enum Edit {
    Flip {
        at: usize,
        xor: u8,
    },
    Truncate {
        keep: usize,
    },
    /// Replace the big-endian word at `4 * word` (0: magic, 1..: dimensions).
    Word {
        word: usize,
        value: u32,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Append(Vec<u8>),
    Gzip,
}

fn edit() -> impl Strategy<Value = Edit> {
    let word_value = prop_oneof![
        Just(0u32),
        Just(1),
        Just(28),
        Just(0x0803),
        Just(0x0801),
        Just(0x0D03),
        Just(60_000),
        Just(240_000),
        Just(u32::MAX),
        any::<u32>(),
    ];
    prop_oneof![
        3 => (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Edit::Flip { at, xor }),
        2 => any::<usize>().prop_map(|keep| Edit::Truncate { keep }),
        3 => (0..4usize, word_value).prop_map(|(word, value)| Edit::Word { word, value }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        1 => prop::collection::vec(any::<u8>(), 1..16).prop_map(Edit::Append),
        2 => Just(Edit::Gzip),
    ]
}

fn apply(mut bytes: Vec<u8>, edit: &Edit) -> Vec<u8> {
    let len = bytes.len();
    match edit {
        Edit::Flip { at, xor } if len > 0 => bytes[at % len] ^= xor,
        Edit::Flip { .. } => {}
        Edit::Truncate { keep } => bytes.truncate(keep % (len + 1)),
        Edit::Word { word, value } => {
            let at = 4 * word;
            if at + 4 <= len {
                bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
            }
        }
        Edit::Insert { at, bytes: more } => {
            let at = at % (len + 1);
            bytes.splice(at..at, more.iter().copied());
        }
        Edit::Append(more) => bytes.extend_from_slice(more),
        Edit::Gzip => bytes = gzip(&bytes),
    }
    bytes
}

/// A valid images file of `n` 28×28 images or a labels file of `n` labels.
fn valid_idx(images: bool, n: usize, gz: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    if images {
        bytes.extend_from_slice(&0x0803u32.to_be_bytes());
        for d in [n as u32, 28, 28] {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend((0..n * 784).map(|i| (i * 7 % 256) as u8));
    } else {
        bytes.extend_from_slice(&0x0801u32.to_be_bytes());
        bytes.extend_from_slice(&(n as u32).to_be_bytes());
        bytes.extend((0..n).map(|i| (i % 10) as u8));
    }
    if gz { gzip(&bytes) } else { bytes }
}

#[test]
fn idx_bytes_never_panic() {
    let strategy = (
        any::<bool>(),
        1..4usize,
        any::<bool>(),
        prop::collection::vec(edit(), 0..5),
    );
    let tally = Tally::default();
    runner(1)
        .run(&strategy, |(images, n, gz, edits)| {
            let original = valid_idx(images, n, gz);
            let bytes = edits.iter().fold(original.clone(), apply);
            for role in [FileRole::TrainImages, FileRole::TestLabels] {
                let result = if role.is_images() {
                    parse_images(&bytes, role).map(|i| i.count)
                } else {
                    parse_labels(&bytes, role).map(|l| l.len())
                };
                tally.count(&result);
                match result {
                    Ok(count) => prop_assert!(count >= 1),
                    Err(e) => {
                        one_line(&e)?;
                        prop_assert_eq!(e.role(), Some(role));
                    }
                }
            }
            if edits.is_empty() {
                // The unedited file parses as what it is.
                let ok = if images {
                    parse_images(&bytes, FileRole::TrainImages).is_ok()
                } else {
                    parse_labels(&bytes, FileRole::TrainLabels).is_ok()
                };
                prop_assert!(ok);
            }
            Ok(())
        })
        .unwrap();
    // Each case parses the bytes as images and as labels: at most half can be accepted.
    tally.check("IDX", 2 * CASES as usize / 4);
}

// ---------------------------------------------------------------------------------------------
// safetensors
// ---------------------------------------------------------------------------------------------

/// A valid weights file, split into its JSON header and its data.
fn weights_file() -> (serde_json::Map<String, Value>, Vec<u8>) {
    let model = EmbedNetConfig::new().init(3, &cpu_device());
    let bytes = pollster::block_on(model.to_safetensors()).expect("weights serialise");
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).expect("header is JSON");
    let Value::Object(header) = header else {
        panic!("header is an object")
    };
    (header, bytes[8 + n..].to_vec())
}

/// One edit of a weights file.
#[derive(Clone, Debug)]
enum WeightsEdit {
    /// Write `value` (as f32) at element `at` of tensor `tensor`.
    Value {
        tensor: usize,
        at: usize,
        value: f32,
    },
    /// Store tensor `tensor` as F64 (data re-encoded, offsets shifted: a well-formed file).
    F64 {
        tensor: usize,
    },
    /// Relabel tensor `tensor` as another dtype without changing its data.
    Dtype {
        tensor: usize,
        dtype: &'static str,
    },
    Remove {
        tensor: usize,
    },
    Extra {
        name: String,
        len: usize,
    },
    /// Replace one of tensor `tensor`'s data offsets.
    Offset {
        tensor: usize,
        end: bool,
        value: u64,
    },
    Shape {
        tensor: usize,
        shape: Vec<u64>,
    },
    /// Replace the 8-byte header length.
    HeaderLen(u64),
    Truncate {
        keep: usize,
    },
    Flip {
        at: usize,
        xor: u8,
    },
}

fn weights_edit() -> impl Strategy<Value = WeightsEdit> {
    let value = prop_oneof![
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        Just(1e30f32),
        Just(-1e30f32),
        Just(f32::MAX),
        Just(f32::from_bits(1)),
        any::<f32>(),
    ];
    let offset = prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        Just(1u64 << 32),
        0..2_000_000u64
    ];
    let dtype = prop_oneof![
        Just("F64"),
        Just("F16"),
        Just("I32"),
        Just("U8"),
        Just("BOOL"),
        Just("X9")
    ];
    let shape = prop::collection::vec(prop_oneof![Just(0u64), Just(u64::MAX), 0..1000u64], 0..5);
    let name = prop_oneof![
        Just("conv1.bias".to_string()),
        Just("extra".to_string()),
        Just("__metadata__".to_string()),
        "[a-z.]{1,12}",
    ];
    prop_oneof![
        3 => (0..6usize, any::<usize>(), value).prop_map(|(tensor, at, value)| WeightsEdit::Value { tensor, at, value }),
        1 => (0..6usize).prop_map(|tensor| WeightsEdit::F64 { tensor }),
        1 => (0..6usize, dtype).prop_map(|(tensor, dtype)| WeightsEdit::Dtype { tensor, dtype }),
        1 => (0..6usize).prop_map(|tensor| WeightsEdit::Remove { tensor }),
        1 => (name, 0..64usize).prop_map(|(name, len)| WeightsEdit::Extra { name, len }),
        2 => (0..6usize, any::<bool>(), offset).prop_map(|(tensor, end, value)| WeightsEdit::Offset { tensor, end, value }),
        1 => (0..6usize, shape).prop_map(|(tensor, shape)| WeightsEdit::Shape { tensor, shape }),
        1 => prop_oneof![Just(0u64), Just(u64::MAX), Just(1u64 << 40), 0..4096u64].prop_map(WeightsEdit::HeaderLen),
        1 => any::<usize>().prop_map(|keep| WeightsEdit::Truncate { keep }),
        1 => (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| WeightsEdit::Flip { at, xor }),
    ]
}

/// `[begin, end)` of a tensor's data in the header, when it is well formed.
fn offsets(entry: &Value) -> Option<(usize, usize)> {
    let o = entry.get("data_offsets")?.as_array()?;
    Some((o.first()?.as_u64()? as usize, o.get(1)?.as_u64()? as usize))
}

/// Replaces the data of tensor `name` by `new` (or removes the tensor when `None`) and moves the
/// offsets of the tensors stored after it, so the file stays well formed. Does nothing when the
/// tensor's offsets are already broken.
fn replace_data(
    header: &mut serde_json::Map<String, Value>,
    data: &mut Vec<u8>,
    name: &str,
    new: Option<Vec<u8>>,
) {
    let Some((b, e)) = header.get(name).and_then(offsets) else {
        return;
    };
    if b > e || e > data.len() {
        return;
    }
    let remove = new.is_none();
    let new_len = new.as_ref().map_or(0, Vec::len);
    data.splice(b..e, new.unwrap_or_default());
    let shift = |x: usize| {
        if x >= e {
            (x - (e - b)).saturating_add(new_len)
        } else {
            x
        }
    };
    for (key, entry) in header.iter_mut() {
        let Some((eb, ee)) = offsets(entry) else {
            continue;
        };
        let moved = if key == name {
            (eb, eb + new_len)
        } else {
            (shift(eb), shift(ee))
        };
        entry["data_offsets"] = serde_json::json!([moved.0, moved.1]);
    }
    if remove {
        header.remove(name);
    }
}

/// The file for `header` and `data`, after the edits that work on bytes.
fn assemble(
    header: &serde_json::Map<String, Value>,
    data: &[u8],
    header_len: Option<u64>,
) -> Vec<u8> {
    let json = serde_json::to_vec(header).unwrap();
    let mut bytes = header_len
        .unwrap_or(json.len() as u64)
        .to_le_bytes()
        .to_vec();
    bytes.extend_from_slice(&json);
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn safetensors_bytes_never_panic() {
    let device = cpu_device();
    let (base_header, base_data) = weights_file();
    let config = EmbedNetConfig::new();
    assert!(
        config
            .load_safetensors(&assemble(&base_header, &base_data, None), &device)
            .is_ok()
    );
    let strategy = prop::collection::vec(weights_edit(), 1..4);
    let tally = Tally::default();
    runner(2)
        .run(&strategy, |edits| {
            let mut header = base_header.clone();
            let mut data = base_data.clone();
            let mut header_len = None;
            let mut byte_edits = Vec::new();
            for edit in &edits {
                let name = |t: usize| WEIGHT_TENSORS[t].0.to_string();
                match edit {
                    WeightsEdit::Value { tensor, at, value } => {
                        if let Some((b, e)) = header.get(&name(*tensor)).and_then(offsets) {
                            let n = e.saturating_sub(b) / 4;
                            let at = b + 4 * (at % n.max(1));
                            if n > 0 && at + 4 <= data.len() {
                                data[at..at + 4].copy_from_slice(&value.to_le_bytes());
                            }
                        }
                    }
                    WeightsEdit::F64 { tensor } => {
                        let Some((b, e)) = header.get(&name(*tensor)).and_then(offsets) else { continue };
                        if b > e || e > data.len() || (e - b) % 4 != 0 {
                            continue;
                        }
                        let wide: Vec<u8> = data[b..e]
                            .chunks_exact(4)
                            .flat_map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes())
                            .collect();
                        replace_data(&mut header, &mut data, &name(*tensor), Some(wide));
                        header[&name(*tensor)]["dtype"] = Value::from("F64");
                    }
                    WeightsEdit::Dtype { tensor, dtype } => {
                        if let Some(entry) = header.get_mut(&name(*tensor)) {
                            entry["dtype"] = Value::from(*dtype);
                        }
                    }
                    WeightsEdit::Remove { tensor } => replace_data(&mut header, &mut data, &name(*tensor), None),
                    WeightsEdit::Extra { name, len } => {
                        let b = data.len();
                        data.extend(std::iter::repeat_n(0u8, 4 * len));
                        header.insert(
                            name.clone(),
                            serde_json::json!({"dtype": "F32", "shape": [len], "data_offsets": [b, b + 4 * len]}),
                        );
                    }
                    WeightsEdit::Offset { tensor, end, value } => {
                        if let Some(entry) = header.get_mut(&name(*tensor)) {
                            entry["data_offsets"][usize::from(*end)] = Value::from(*value);
                        }
                    }
                    WeightsEdit::Shape { tensor, shape } => {
                        if let Some(entry) = header.get_mut(&name(*tensor)) {
                            entry["shape"] = serde_json::json!(shape);
                        }
                    }
                    WeightsEdit::HeaderLen(n) => header_len = Some(*n),
                    other => byte_edits.push(other.clone()),
                }
            }
            let mut bytes = assemble(&header, &data, header_len);
            for edit in byte_edits {
                let len = bytes.len();
                match edit {
                    WeightsEdit::Truncate { keep } => bytes.truncate(keep % (len + 1)),
                    WeightsEdit::Flip { at, xor } if len > 0 => bytes[at % len] ^= xor,
                    WeightsEdit::Flip { .. } => {}
                    _ => unreachable!("header edits are applied above"),
                }
            }
            let loaded = config.load_safetensors(&bytes, &device);
            tally.count(&loaded);
            match loaded {
                Ok(model) => {
                    let parts = model.to_parts().map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert!(parts.iter().flatten().all(|v| v.is_finite()), "non-finite weights loaded");
                }
                Err(e) => one_line(&e)?,
            }
            Ok(())
        })
        .unwrap();
    tally.check("safetensors", CASES as usize);
}

// ---------------------------------------------------------------------------------------------
// vecs.tsv / meta.tsv
// ---------------------------------------------------------------------------------------------

/// A field: mostly numbers (`labels`: mostly small integers), sometimes a hostile one.
fn token(labels: bool) -> impl Strategy<Value = String> {
    let (floats, ints) = if labels { (1, 8) } else { (4, 2) };
    prop_oneof![
        floats => any::<f32>().prop_map(|v| format!("{v:e}")),
        ints => (-1i32..10).prop_map(|v| v.to_string()),
        1 => prop_oneof![
            Just("nan"), Just("NaN"), Just("inf"), Just("-inf"), Just("infinity"), Just("1e39"),
            Just("-0"), Just("4294967295"), Just("4294967296"), Just("-1"), Just("99999999999999999999"),
            Just("1.5"), Just("0x10"), Just("+7"), Just(""), Just("\u{feff}"), Just("é"), Just("1,5"),
        ]
        .prop_map(str::to_string),
    ]
}

/// TSV-like text: rows of `columns` tokens joined by tabs or spaces, `\n` or `\r\n` endings
/// (an empty row is a blank line), then raw bytes inserted (non-UTF-8 among them).
fn tsv_bytes(labels: bool, columns: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    let row = prop::collection::vec(token(labels), columns);
    (
        prop::collection::vec(row, 0..8),
        prop_oneof![Just("\t"), Just(" "), Just(" \t ")],
        prop_oneof![Just("\n"), Just("\r\n")],
        any::<bool>(),
        prop::collection::vec(
            (
                any::<usize>(),
                prop_oneof![Just(0xffu8), Just(0xc3), Just(0x80), Just(0), any::<u8>()],
            ),
            0..2,
        ),
    )
        .prop_map(|(rows, sep, end, trailing, raw)| {
            let mut text: String = rows
                .iter()
                .map(|r| r.join(sep))
                .collect::<Vec<_>>()
                .join(end);
            if trailing {
                text.push_str(end);
            }
            let mut bytes = text.into_bytes();
            for (at, b) in raw {
                let at = at % (bytes.len() + 1);
                bytes.insert(at, b);
            }
            bytes
        })
}

#[test]
fn tsv_text_never_panics() {
    let strategy = (tsv_bytes(false, 0..5), tsv_bytes(true, 0..3));
    let (vecs_tally, meta_tally, scored) = (Tally::default(), Tally::default(), Tally::default());
    runner(3)
        .run(&strategy, |(vecs, meta)| {
            let vecs = text_of(&vecs).and_then(parse_vecs_tsv);
            let meta = text_of(&meta).and_then(parse_meta_tsv);
            vecs_tally.count(&vecs);
            meta_tally.count(&meta);
            if let Err(e) = &vecs {
                one_line(e)?;
            }
            if let Err(e) = &meta {
                one_line(e)?;
            }
            if let (Ok((x, dim)), Ok(labels)) = (&vecs, &meta) {
                let metrics = evaluate(x, labels, Some((x.as_slice(), labels.as_slice())), *dim);
                scored.count(&metrics);
                match metrics {
                    Ok(m) => prop_assert!((0.0..=1.0).contains(&m.precision_at_1)),
                    Err(e) => one_line(&e)?,
                }
            }
            Ok(())
        })
        .unwrap();
    vecs_tally.check("vecs.tsv", CASES as usize);
    meta_tally.check("meta.tsv", CASES as usize / 4);
    scored.check("metrics of parsed pairs", 20);
}
