//! Parity with TensorFlow Addons 0.23 `TripletSemiHardLoss` on the 49 golden cases
//! (`tests/golden/triplet_semihard.json`): loss within 1e-5 relative / 1e-6 absolute, gradient
//! (burn autodiff) within 1e-4 relative / 1e-6 absolute per element, NaN exactly where TFA has
//! NaN. Both negative-selection paths are checked. The one `ill_conditioned` case (float32
//! cancellation in TF's distance formula) is excluded, as the golden README says.
//!
//! At `nondifferentiable_point` cases (duplicate rows, exact ties, a zero row under angular) TF
//! splits a gradient equally among tied minima/maxima while we route it to one tied entry (see
//! `src/loss.rs`); there the loss must still match, and the gradient is compared only where
//! it is unique — the check is reported, not skipped silently.

use tripletlab::backend::cpu_device;
use tripletlab::cases::{LossCase, evaluate_case, parse_cases};
use tripletlab::loss::Selection;

fn cases() -> Vec<LossCase> {
    let json = include_str!("golden/triplet_semihard.json");
    let cases = parse_cases(json).expect("golden file parses");
    assert_eq!(cases.len(), 49);
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

fn check(selection: Selection) {
    let device = cpu_device();
    let mut failures = Vec::new();
    let mut grad_checked = 0;
    let mut nondiff_grad_mismatch = Vec::new();
    for case in cases() {
        if case.ill_conditioned {
            continue;
        }
        let got = evaluate_case(&case, &device, selection);
        let want = case.expected_loss.expect("golden loss");
        if !close(got.loss, want, 1e-5, 1e-6) {
            failures.push(format!("{}: loss {} vs TFA {}", case.name, got.loss, want));
            continue;
        }
        let want_grad = case.expected_grad.as_ref().expect("golden grad");
        assert_eq!(got.grad.len(), want_grad.len(), "{}", case.name);
        let bad: Vec<usize> = (0..want_grad.len())
            .filter(|&i| !close(got.grad[i], want_grad[i], 1e-4, 1e-6))
            .collect();
        if bad.is_empty() {
            grad_checked += 1;
        } else if case.nondifferentiable_point {
            nondiff_grad_mismatch.push(case.name.clone());
        } else {
            let i = bad[0];
            failures.push(format!(
                "{}: {} gradient entries differ, first [{}] {} vs TFA {}",
                case.name,
                bad.len(),
                i,
                got.grad[i],
                want_grad[i]
            ));
        }
    }
    eprintln!(
        "{selection:?}: gradients identical on {grad_checked} cases; other subgradient at non-differentiable points: {nondiff_grad_mismatch:?}"
    );
    assert!(
        failures.is_empty(),
        "{selection:?} mismatches:\n{}",
        failures.join("\n")
    );
    // Every smooth case has been compared; only flagged cases may differ in the gradient.
    assert!(
        grad_checked >= 48 - 7,
        "too few gradient checks: {grad_checked}"
    );
}

#[test]
fn device_selection_matches_tfa() {
    check(Selection::Device);
}

#[test]
fn host_selection_matches_tfa() {
    check(Selection::Host);
}

#[test]
fn ill_conditioned_case_is_documented_not_matched() {
    // TF's |a|²+|b|²-2a·b cancels catastrophically at 1e4 offsets; we use the same formula in
    // float32, so we land near TF's value, not the exact 0.1259. Pin that it stays finite.
    let case = cases().into_iter().find(|c| c.ill_conditioned).unwrap();
    let got = evaluate_case(&case, &cpu_device(), Selection::Auto);
    assert!(got.loss.is_finite());
}
