//! Loss cases in the schema of TFA's golden vectors (`tests/golden/triplet_semihard.json`, and
//! `triplet_hard.json` for the batch-hard loss): parse them, evaluate loss and gradient with burn autodiff, and write the results as JSON.
//! This is how `tripletlab loss --cases FILE` lets anyone check parity from outside. A case
//! may hold at most [`MAX_CASE_ROWS`] rows (the loss and its gradient need O(B²) memory).

use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;
use serde_json::Value;

use crate::loss::{Selection, hard_triplet_loss, semi_hard_triplet_loss_with};
use tripletlab_core::run::{Metric, Mining};

/// Most rows (labels) one case may have: the largest training batch. The loss and its gradient
/// hold a few `B x B` matrices (B = 4096: a few hundred MiB); 20,000 rows would need tens of GB.
pub const MAX_CASE_ROWS: usize = tripletlab_core::run::MAX_BATCH;

/// One case: labels, embeddings and the loss settings.
#[derive(Clone, Debug, PartialEq)]
pub struct LossCase {
    /// Unique name.
    pub name: String,
    /// One label per row.
    pub labels: Vec<i64>,
    /// Row-major `[labels.len(), dim]`.
    pub embeddings: Vec<f32>,
    /// Columns of `embeddings`.
    pub dim: usize,
    /// Triplet margin.
    pub margin: f32,
    /// Distance.
    pub metric: Metric,
    /// Which loss: a case's `"mining"` (`semi-hard`, the default, or `hard`).
    pub mining: Mining,
    /// Soft-margin batch-hard loss (a case's `"soft"`; only with [`Mining::Hard`]).
    pub soft: bool,
    /// Expected loss, when the file has one.
    pub expected_loss: Option<f32>,
    /// Expected gradient, when the file has one.
    pub expected_grad: Option<Vec<f32>>,
    /// Flags from the golden file.
    pub nondifferentiable_point: bool,
    /// Flags from the golden file.
    pub ill_conditioned: bool,
}

/// A malformed case file.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// Not JSON.
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON of the wrong shape.
    #[error("case {case}: {message}")]
    Schema {
        /// Case index or name.
        case: String,
        /// What is wrong.
        message: String,
    },
}

fn float(v: &Value) -> Option<f32> {
    match v {
        Value::Number(n) => n.as_f64().map(|x| x as f32),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f32::NAN),
            "Infinity" => Some(f32::INFINITY),
            "-Infinity" => Some(f32::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Parses a case file: either `{"cases": [...]}` or a bare array of cases.
pub fn parse_cases(json: &str) -> Result<Vec<LossCase>, CaseError> {
    let root: Value = serde_json::from_str(json)?;
    let list = match &root {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("cases") {
            Some(Value::Array(a)) => a,
            _ => {
                return Err(CaseError::Schema {
                    case: "-".into(),
                    message: "expected an array of cases or an object with a \"cases\" array"
                        .into(),
                });
            }
        },
        _ => {
            return Err(CaseError::Schema {
                case: "-".into(),
                message: "expected an array of cases".into(),
            });
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, c)| parse_case(i, c))
        .collect()
}

fn parse_case(index: usize, c: &Value) -> Result<LossCase, CaseError> {
    let name = c
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("case{index}"));
    let err = |message: String| CaseError::Schema {
        case: name.clone(),
        message,
    };
    let labels = parse_labels(c, &err)?;
    let rows = c
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| err("missing \"embeddings\" array".into()))?;
    if rows.len() != labels.len() {
        return Err(err(format!(
            "{} embedding rows for {} labels",
            rows.len(),
            labels.len()
        )));
    }
    if labels.is_empty() {
        return Err(err("empty batch".into()));
    }
    let (embeddings, dim) = parse_matrix(rows, "embedding", &err)?;
    if dim == 0 {
        return Err(err("embeddings have no columns".into()));
    }
    let margin = match c.get("margin") {
        None => 1.0,
        Some(v) => float(v).ok_or_else(|| err("margin is not a number".into()))?,
    };
    let metric = match c.get("distance_metric").and_then(Value::as_str) {
        None => Metric::L2,
        Some(s) => s.parse().map_err(err)?,
    };
    let mining = match c.get("mining").and_then(Value::as_str) {
        None => Mining::SemiHard,
        Some(s) => s.parse().map_err(err)?,
    };
    let expected_loss = c.get("loss").and_then(float);
    let expected_grad = match c.get("grad").and_then(Value::as_array) {
        Some(g) => Some(parse_matrix(g, "grad", &err)?.0),
        None => None,
    };
    let flag = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
    Ok(LossCase {
        name: name.clone(),
        labels,
        embeddings,
        dim,
        margin,
        metric,
        mining,
        soft: flag("soft"),
        expected_loss,
        expected_grad,
        nondifferentiable_point: flag("nondifferentiable_point"),
        ill_conditioned: flag("ill_conditioned"),
    })
}

/// A case's `labels`: integers, at most [`MAX_CASE_ROWS`] of them.
fn parse_labels(c: &Value, err: &dyn Fn(String) -> CaseError) -> Result<Vec<i64>, CaseError> {
    let labels = c
        .get("labels")
        .and_then(Value::as_array)
        .ok_or_else(|| err("missing \"labels\" array".into()))?;
    if labels.len() > MAX_CASE_ROWS {
        return Err(err(format!(
            "{} rows, more than the limit of {MAX_CASE_ROWS} rows per case (the loss needs B² \
             memory)",
            labels.len()
        )));
    }
    labels
        .iter()
        .map(|l| {
            l.as_i64()
                .ok_or_else(|| err(format!("label {l} is not an integer")))
        })
        .collect()
}

/// A matrix of numbers given as rows of equal length: the values, row-major, and the row length.
fn parse_matrix(
    rows: &[Value],
    what: &str,
    err: &dyn Fn(String) -> CaseError,
) -> Result<(Vec<f32>, usize), CaseError> {
    let mut dim = None;
    let mut out = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let row = row
            .as_array()
            .ok_or_else(|| err(format!("{what} row {r} is not an array")))?;
        if *dim.get_or_insert(row.len()) != row.len() {
            return Err(err(format!("{what} row {r} has {} values", row.len())));
        }
        for v in row {
            out.push(float(v).ok_or_else(|| err(format!("{what} value {v} is not a number")))?);
        }
    }
    Ok((out, dim.unwrap_or(0)))
}

/// Loss and gradient of one case.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// The loss.
    pub loss: f32,
    /// d loss / d embeddings, row-major like the input.
    pub grad: Vec<f32>,
    /// Columns of `grad`.
    pub dim: usize,
}

/// Evaluates the case's loss and its gradient on `device` (autodiff is enabled here).
/// Uses synchronous reads: native only, or the wasm tests' own async variant.
pub fn evaluate_case(case: &LossCase, device: &Device, selection: Selection) -> CaseResult {
    let (loss, grad) = case_tensors(case, device, selection);
    CaseResult {
        name: case.name.clone(),
        loss: loss.into_scalar::<f32>(),
        grad: grad.into_data().try_into_vec().expect("f32 gradient"),
        dim: case.dim,
    }
}

/// Same as [`evaluate_case`] with asynchronous reads (for the browser).
pub async fn evaluate_case_async(
    case: &LossCase,
    device: &Device,
    selection: Selection,
) -> Result<CaseResult, String> {
    let (loss, grad) = case_tensors(case, device, selection);
    let loss = loss
        .into_data_async()
        .await
        .map_err(|e| format!("{e:?}"))?
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?[0];
    let grad = grad
        .into_data_async()
        .await
        .map_err(|e| format!("{e:?}"))?
        .try_into_vec()
        .map_err(|e| format!("{e:?}"))?;
    Ok(CaseResult {
        name: case.name.clone(),
        loss,
        grad,
        dim: case.dim,
    })
}

fn case_tensors(case: &LossCase, device: &Device, selection: Selection) -> (Tensor<1>, Tensor<2>) {
    let device = device.clone().autodiff();
    let x = Tensor::<2>::from_data(
        TensorData::new(case.embeddings.clone(), [case.labels.len(), case.dim]),
        &device,
    )
    .require_grad();
    let loss = match case.mining {
        Mining::SemiHard => semi_hard_triplet_loss_with(
            x.clone(),
            &case.labels,
            case.margin,
            case.metric,
            selection,
        ),
        // Batch-hard has no negative selection to place: `selection` does not apply.
        Mining::Hard => {
            hard_triplet_loss(x.clone(), &case.labels, case.margin, case.metric, case.soft)
        }
    };
    let grads = loss.backward();
    let grad = x.grad(&grads).expect("embeddings require grad");
    (loss.detach(), grad.detach())
}

#[derive(Serialize)]
struct Out<'a> {
    name: &'a str,
    loss: Value,
    grad: Vec<Vec<Value>>,
}

fn json_float(x: f32) -> Value {
    if x.is_nan() {
        Value::String("NaN".into())
    } else if x.is_infinite() {
        Value::String(if x > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        // The shortest decimal that round-trips the f32 (as in the golden file).
        serde_json::from_str(&format!("{x:?}")).unwrap_or(Value::Null)
    }
}

/// `[{"name", "loss", "grad"}, ...]` with NaN / ±inf as strings, like the golden file.
pub fn results_json(results: &[CaseResult]) -> String {
    let out: Vec<Out<'_>> = results
        .iter()
        .map(|r| Out {
            name: &r.name,
            loss: json_float(r.loss),
            grad: r
                .grad
                .chunks(r.dim.max(1))
                .map(|row| row.iter().map(|&v| json_float(v)).collect())
                .collect(),
        })
        .collect();
    serde_json::to_string_pretty(&out).expect("serialisable")
}
