//! The golden cases (made with TF Addons itself, see `tests/golden/README.md`) checked on one
//! device and path: every case's loss (NaN exactly where TFA's is NaN), and its gradient:
//!
//! * per element wherever TF's gradient is the unique derivative;
//! * at the cases flagged `nondifferentiable_point` (duplicate rows, exactly tied distances, a
//!   hinge exactly at 0, a zero row under angular) TF splits the gradient equally among tied
//!   minima/maxima while we route it to one of them: both are subgradients, and two subgradients
//!   agree along every direction that keeps the ties. So there the check is the directional
//!   derivatives along those directions: moving each group of identical rows together (the sum
//!   of the group's gradient rows); for L2 distances moving and scaling all rows; for angular
//!   ones scaling each row.
//!
//! The one `ill_conditioned` case is pinned on its own (see `golden_loss.rs`).

// Shared by test crates that each use a part (the wasm tests: no `check`, no CPU tolerance).
#![allow(dead_code)]

use burn::tensor::{Device, Tensor, TensorData};

use tripletlab_core::run::{Metric, Mining};
use tripletlab_engine::cases::{CaseResult, LossCase, evaluate_case, parse_cases};
use tripletlab_engine::loss::Selection;

/// The semi-hard golden file.
pub const SEMI_HARD: &str = include_str!("../golden/triplet_semihard.json");

/// The batch-hard golden file (`TripletHardLoss`, hard and soft margin).
pub const HARD: &str = include_str!("../golden/triplet_hard.json");

/// `case` through the WGSL engine's loss kernels (`gpu::triplet_loss`) on `device` (a wgpu /
/// WebGPU one): the readout (the loss first) and the gradient, still on the device.
pub fn wgsl_loss(case: &LossCase, device: &Device) -> (Tensor<1>, Tensor<2>) {
    use tripletlab_engine::gpu::{LossSettings, triplet_loss};
    let b = case.labels.len();
    let x = Tensor::<2>::from_data(
        TensorData::new(case.embeddings.clone(), [b, case.dim]),
        device,
    );
    let settings = LossSettings {
        margin: case.margin,
        metric: case.metric,
        mining: case.mining,
        soft: case.soft,
    };
    triplet_loss(x, &case.labels, settings).unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

/// How close a path must come to TF: relative and absolute, for the loss and per gradient entry.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub loss_rtol: f32,
    pub loss_atol: f32,
    pub grad_rtol: f32,
    pub grad_atol: f32,
}

/// burn's CPU backend: the README's tolerances.
pub const CPU: Tolerance = Tolerance {
    loss_rtol: 1e-5,
    loss_atol: 1e-6,
    grad_rtol: 1e-4,
    grad_atol: 1e-6,
};

/// wgpu: its matmuls sum in another order than TF's Eigen, so ten times the CPU's slack.
pub const WGPU: Tolerance = Tolerance {
    loss_rtol: 1e-4,
    loss_atol: 1e-5,
    grad_rtol: 1e-3,
    grad_atol: 1e-5,
};

/// The cases of a golden file (all of them, flagged ones included), each with the loss the
/// file's `api` names (its cases carry `soft` but no `mining`).
pub fn cases(json: &str) -> Vec<LossCase> {
    let api: serde_json::Value = serde_json::from_str(json).expect("golden file is JSON");
    let hard = api["api"]
        .as_str()
        .is_some_and(|a| a.starts_with("tfa.losses.TripletHardLoss"));
    let mut cases = parse_cases(json).expect("golden file parses");
    if hard {
        for case in &mut cases {
            case.mining = Mining::Hard;
        }
    }
    cases
}

fn close(got: f32, want: f32, rtol: f32, atol: f32) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    if want.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= atol + rtol * want.abs()
}

/// The gradient's relative tolerance for `case`: `tol`'s, or more where TF's own float32 formula
/// cannot do better. For L2, d‖a−b‖/da = (a−b)/D with D = √(|a|²+|b|²−2a·b): that sum cancels
/// for close rows, so D carries a relative error up to ≈ 2ε·max|x|² / D² (ε = 2⁻²³), and each
/// implementation's summation order rounds it differently (b16_d2_noncontiguous_labels_L2_m1: rows
/// 0.0223 apart, 4.4e-4 between TF and us). Twice that bound, where it exceeds `tol`'s.
fn grad_rtol(case: &LossCase, tol: Tolerance) -> f32 {
    if case.metric != Metric::L2 {
        return tol.grad_rtol;
    }
    let (b, d) = (case.labels.len(), case.dim);
    let row = |i: usize| {
        case.embeddings[i * d..(i + 1) * d]
            .iter()
            .map(|&v| f64::from(v))
    };
    let max_sq = (0..b)
        .map(|i| row(i).map(|v| v * v).sum::<f64>())
        .fold(0.0, f64::max);
    let min_d2 = (0..b)
        .flat_map(|i| (i + 1..b).map(move |j| (i, j)))
        .map(|(i, j)| {
            row(i)
                .zip(row(j))
                .map(|(p, q)| (p - q) * (p - q))
                .sum::<f64>()
        })
        .filter(|&d2| d2 > 0.0)
        .fold(f64::INFINITY, f64::min);
    let bound = 2.0 * f64::from(f32::EPSILON) * max_sq / min_d2;
    tol.grad_rtol.max((2.0 * bound) as f32)
}

/// What one file gave on one path.
#[derive(Debug, Default)]
pub struct Report {
    /// Cases whose loss was compared (all but the ill-conditioned one).
    pub losses: usize,
    /// Cases whose gradient matched TF's element by element.
    pub grads_exact: usize,
    /// Flagged cases whose gradient is another subgradient, checked along the tie directions.
    pub grads_subgradient: Vec<String>,
    /// Everything that did not match.
    pub failures: Vec<String>,
}

/// Largest violation of `close` over paired values, as a fraction of the allowed error (≤ 1
/// passes), and where.
fn worst(got: &[f64], want: &[f64], rtol: f64, atol: f64) -> (f64, usize) {
    got.iter()
        .zip(want)
        .enumerate()
        .map(|(i, (g, w))| ((g - w).abs() / (atol + rtol * w.abs()), i))
        .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a })
}

/// The directional derivatives of a gradient along the tie-keeping directions of `case`: per
/// group of identical rows the group's summed gradient row (moving the group together); for
/// the L2 distances the summed gradient of all rows (moving every row) and `Σ g·x` (scaling
/// every row); for the angular one, which only sees directions, `g_i·x_i` per row (scaling each
/// row, which keeps even a zero row where it is).
fn tie_directions(case: &LossCase, grad: &[f32]) -> Vec<f64> {
    let (b, d) = (case.labels.len(), case.dim);
    let x = &case.embeddings;
    let row = |i: usize| &x[i * d..(i + 1) * d];
    let mut grouped = vec![false; b];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in 0..b {
        if !grouped[i] {
            let members: Vec<usize> = (i..b).filter(|&j| row(j) == row(i)).collect();
            for &j in &members {
                grouped[j] = true;
            }
            groups.push(members);
        }
    }
    let dot = |rows: &mut dyn Iterator<Item = usize>| -> f64 {
        rows.flat_map(|i| i * d..(i + 1) * d)
            .map(|k| f64::from(grad[k]) * f64::from(x[k]))
            .sum()
    };
    let mut out = Vec::new();
    let sum_rows = |members: &[usize], out: &mut Vec<f64>| {
        for k in 0..d {
            out.push(members.iter().map(|&i| f64::from(grad[i * d + k])).sum());
        }
    };
    for members in groups.iter().filter(|g| g.len() > 1) {
        sum_rows(members, &mut out);
    }
    if case.metric == Metric::Angular {
        for i in 0..b {
            out.push(dot(&mut std::iter::once(i)));
        }
    } else {
        sum_rows(&(0..b).collect::<Vec<_>>(), &mut out);
        out.push(dot(&mut (0..b)));
    }
    out
}

/// Checks every case of `json` on `device` with `selection` (which only the semi-hard loss
/// uses) at `tol`.
pub fn check(json: &str, device: &Device, selection: Selection, tol: Tolerance) -> Report {
    let mut report = Report::default();
    for case in cases(json).iter().filter(|c| !c.ill_conditioned) {
        judge(
            case,
            &evaluate_case(case, device, selection),
            tol,
            &mut report,
        );
    }
    report
}

/// Compares one case's result with TF's and records the verdict in `report` (the caller
/// leaves out the ill-conditioned case).
pub fn judge(case: &LossCase, got: &CaseResult, tol: Tolerance, report: &mut Report) {
    report.losses += 1;
    let want = case.expected_loss.expect("golden loss");
    if !close(got.loss, want, tol.loss_rtol, tol.loss_atol) {
        report
            .failures
            .push(format!("{}: loss {} vs TF {want}", case.name, got.loss));
        return;
    }
    let want_grad = case.expected_grad.as_ref().expect("golden gradient");
    assert_eq!(got.grad.len(), want_grad.len(), "{}", case.name);
    let rtol = grad_rtol(case, tol);
    let bad: Vec<usize> = (0..want_grad.len())
        .filter(|&i| !close(got.grad[i], want_grad[i], rtol, tol.grad_atol))
        .collect();
    if bad.is_empty() {
        report.grads_exact += 1;
        return;
    }
    if !case.nondifferentiable_point {
        let i = bad[0];
        report.failures.push(format!(
            "{}: {} gradient entries differ, first [{i}] {} vs TF {}",
            case.name,
            bad.len(),
            got.grad[i],
            want_grad[i]
        ));
        return;
    }
    // Another subgradient: it must agree with TF's along every tie-keeping direction. The
    // tolerance scales with the gradient's size (the zero-row case has entries ~5e5).
    let scale = want_grad
        .iter()
        .fold(1.0f64, |m, v| m.max(f64::from(v.abs())));
    let (ours, tf) = (
        tie_directions(case, &got.grad),
        tie_directions(case, want_grad),
    );
    let (excess, at) = worst(
        &ours,
        &tf,
        f64::from(tol.grad_rtol),
        f64::from(tol.grad_atol) * scale * case.labels.len() as f64,
    );
    if excess <= 1.0 {
        report.grads_subgradient.push(case.name.clone());
    } else {
        report.failures.push(format!(
            "{}: not a subgradient like TF's: tie direction {at} gives {} vs TF {}",
            case.name, ours[at], tf[at]
        ));
    }
}

/// Panics with every failure of `report`, and unless `want_cases` losses and all gradients
/// but the flagged ones' were compared element by element.
pub fn assert_report(what: &str, report: &Report, json: &str) {
    assert!(
        report.failures.is_empty(),
        "{what}: {} mismatches:\n{}",
        report.failures.len(),
        report.failures.join("\n")
    );
    let all = cases(json);
    let flagged = all
        .iter()
        .filter(|c| c.nondifferentiable_point && !c.ill_conditioned)
        .count();
    let compared = all.iter().filter(|c| !c.ill_conditioned).count();
    assert_eq!(report.losses, compared, "{what}: losses compared");
    assert_eq!(
        report.grads_exact + report.grads_subgradient.len(),
        compared,
        "{what}: gradients compared"
    );
    assert!(
        report.grads_subgradient.len() <= flagged,
        "{what}: more subgradient cases than flagged ones"
    );
    eprintln!(
        "{what}: {} losses; gradients element by element on {}, as another subgradient on {:?}",
        report.losses, report.grads_exact, report.grads_subgradient
    );
}
