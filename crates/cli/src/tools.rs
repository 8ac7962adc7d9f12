//! `tripletlab eval` (score any vecs.tsv / meta.tsv pair) and `tripletlab loss` (the loss and
//! its gradient for cases in the golden-file schema).

use std::path::{Path, PathBuf};

use tripletlab_core::backend::BackendKind;
use tripletlab_core::export::{parse_meta_tsv, parse_vecs_tsv};
use tripletlab_core::metrics::evaluate;
use tripletlab_engine::cases::{evaluate_case, parse_cases, results_json};
use tripletlab_engine::device::native_device;
use tripletlab_engine::loss::Selection;

use super::*;

pub(super) fn eval(
    vecs: &Path,
    meta: &Path,
    train: Option<(PathBuf, PathBuf)>,
) -> Result<(), String> {
    let load = |v: &Path, m: &Path| -> Result<(Vec<f32>, usize, Vec<u32>), String> {
        let (x, dim) = parse_vecs_tsv(&read(v)?).map_err(|e| format!("{}: {e}", v.display()))?;
        let labels = parse_meta_tsv(&read(m)?).map_err(|e| format!("{}: {e}", m.display()))?;
        if labels.len() * dim != x.len() {
            return Err(format!(
                "{} has {} rows but {} has {} labels",
                v.display(),
                x.len() / dim.max(1),
                m.display(),
                labels.len()
            ));
        }
        Ok((x, dim, labels))
    };
    let (x, dim, labels) = load(vecs, meta)?;
    let train = match train {
        Some((v, m)) => {
            let (tx, tdim, tl) = load(&v, &m)?;
            if tdim != dim {
                return Err(format!(
                    "train vectors have {tdim} columns, test vectors {dim}"
                ));
            }
            Some((tx, tl))
        }
        None => None,
    };
    let metrics = evaluate(
        &x,
        &labels,
        train.as_ref().map(|(a, b)| (a.as_slice(), b.as_slice())),
        dim,
    )
    .map_err(|e| e.to_string())?;
    let mut report = serde_json::json!({});
    super::outputs::add_scores(&mut report, &metrics);
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    Ok(())
}

pub(super) fn loss(cases: &Path, selection: &str, backend: BackendKind) -> Result<(), String> {
    let cases = parse_cases(&read(cases)?).map_err(|e| format!("{}: {e}", cases.display()))?;
    let selection = match selection {
        "device" => Selection::Device,
        "read-back" => Selection::ReadBack,
        _ => Selection::Auto,
    };
    let device = native_device(backend)?;
    let results: Vec<_> = cases
        .iter()
        .map(|c| evaluate_case(c, &device, selection))
        .collect();
    println!("{}", results_json(&results));
    Ok(())
}
