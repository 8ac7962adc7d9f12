//! Both losses against a direct float64 port of TFA's algorithm (written independently here,
//! loop by loop, from the semantics in tests/golden/README.md) on many seeded random batches:
//! random sizes, dims, label layouts (singletons, pairs, one class), margins and metrics. Also
//! checks that the device and host negative selections agree.

use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tripletlab_core::run::Metric;
use tripletlab_engine::device::cpu_device;
use tripletlab_engine::loss::{Selection, hard_triplet_loss, semi_hard_triplet_loss_with};

fn distances(x: &[f64], b: usize, d: usize, metric: Metric) -> Vec<Vec<f64>> {
    let row = |i: usize| &x[i * d..(i + 1) * d];
    let dot = |i: usize, j: usize| row(i).iter().zip(row(j)).map(|(a, b)| a * b).sum::<f64>();
    let entry = |i: usize, j: usize| match metric {
        Metric::L2 | Metric::SquaredL2 => {
            if i == j {
                0.0
            } else {
                let d2 = (dot(i, i) + dot(j, j) - 2.0 * dot(i, j)).max(0.0);
                if metric == Metric::L2 { d2.sqrt() } else { d2 }
            }
        }
        Metric::Angular => {
            let ni = dot(i, i).max(1e-12).sqrt();
            let nj = dot(j, j).max(1e-12).sqrt();
            (1.0 - dot(i, j) / (ni * nj)).max(0.0)
        }
    };
    (0..b)
        .map(|i| (0..b).map(|j| entry(i, j)).collect())
        .collect()
}

fn semi_hard_f64(x: &[f64], labels: &[u8], d: usize, margin: f64, metric: Metric) -> f64 {
    let b = labels.len();
    let m = distances(x, b, d, metric);
    let (mut sum, mut pairs) = (0.0, 0usize);
    for a in 0..b {
        let negs: Vec<usize> = (0..b).filter(|&n| labels[n] != labels[a]).collect();
        for p in (0..b).filter(|&p| p != a && labels[p] == labels[a]) {
            let farther = negs.iter().map(|&n| m[a][n]).filter(|&v| v > m[a][p]);
            let neg = match farther.fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.min(v)))
            }) {
                Some(v) => v,
                None if !negs.is_empty() => negs.iter().map(|&n| m[a][n]).fold(f64::MIN, f64::max),
                None => m[a].iter().copied().fold(f64::MAX, f64::min),
            };
            sum += (margin + m[a][p] - neg).max(0.0);
            pairs += 1;
        }
    }
    sum / pairs as f64
}

fn hard_f64(x: &[f64], labels: &[u8], d: usize, margin: f64, metric: Metric, soft: bool) -> f64 {
    let b = labels.len();
    let m = distances(x, b, d, metric);
    let mut total = 0.0;
    for a in 0..b {
        let rowmin = m[a].iter().copied().fold(f64::MAX, f64::min);
        let rowmax = m[a].iter().copied().fold(f64::MIN, f64::max);
        let pos: Vec<f64> = (0..b)
            .filter(|&p| p != a && labels[p] == labels[a])
            .map(|p| m[a][p])
            .collect();
        let neg: Vec<f64> = (0..b)
            .filter(|&n| labels[n] != labels[a])
            .map(|n| m[a][n])
            .collect();
        let hp = if pos.is_empty() {
            rowmin
        } else {
            pos.iter().copied().fold(f64::MIN, f64::max)
        };
        let hn = if neg.is_empty() {
            rowmax
        } else {
            neg.iter().copied().fold(f64::MAX, f64::min)
        };
        total += if soft {
            (hp - hn).exp().ln_1p()
        } else {
            (hp - hn + margin).max(0.0)
        };
    }
    total / b as f64
}

struct Batch {
    x: Vec<f32>,
    labels: Vec<u8>,
    b: usize,
    d: usize,
    margin: f32,
    metric: Metric,
}

fn random_batch(rng: &mut Pcg64Mcg) -> Batch {
    let b = rng.random_range(2..=40);
    let d = rng.random_range(2..=12);
    let classes = rng.random_range(1..=6);
    let labels = (0..b).map(|_| rng.random_range(0..classes)).collect();
    let x = (0..b * d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let margin = [0.0f32, 0.2, 1.0][rng.random_range(0..3)];
    let metric = Metric::ALL[rng.random_range(0..3)];
    Batch {
        x,
        labels,
        b,
        d,
        margin,
        metric,
    }
}

fn close(got: f32, want: f64) -> bool {
    (f64::from(got) - want).abs() <= 1e-4 * want.abs().max(1.0)
}

#[test]
fn semi_hard_matches_a_float64_port_on_random_batches() {
    let device = cpu_device();
    let mut rng = Pcg64Mcg::seed_from_u64(20261128);
    let mut defined = 0;
    for case in 0..300 {
        let t = random_batch(&mut rng);
        let x64: Vec<f64> = t.x.iter().map(|&v| f64::from(v)).collect();
        let want = semi_hard_f64(&x64, &t.labels, t.d, f64::from(t.margin), t.metric);
        for selection in [Selection::Device, Selection::ReadBack] {
            let x = Tensor::<2>::from_data(TensorData::new(t.x.clone(), [t.b, t.d]), &device);
            let got = semi_hard_triplet_loss_with(x, &t.labels, t.margin, t.metric, selection)
                .into_scalar::<f32>();
            if want.is_nan() {
                assert!(got.is_nan(), "case {case} {selection:?}: {got} vs NaN");
            } else {
                assert!(
                    close(got, want),
                    "case {case} {selection:?} {:?}: {got} vs {want}",
                    t.metric
                );
            }
        }
        defined += usize::from(!want.is_nan());
    }
    assert!(defined > 200, "too few defined cases: {defined}");
}

#[test]
fn hard_matches_a_float64_port_on_random_batches() {
    let device = cpu_device();
    let mut rng = Pcg64Mcg::seed_from_u64(7);
    for case in 0..200 {
        let t = random_batch(&mut rng);
        let soft = case % 3 == 0;
        let x64: Vec<f64> = t.x.iter().map(|&v| f64::from(v)).collect();
        let want = hard_f64(&x64, &t.labels, t.d, f64::from(t.margin), t.metric, soft);
        let x = Tensor::<2>::from_data(TensorData::new(t.x.clone(), [t.b, t.d]), &device);
        let got = hard_triplet_loss(x, &t.labels, t.margin, t.metric, soft).into_scalar::<f32>();
        assert!(
            close(got, want),
            "case {case} {:?} soft={soft}: {got} vs {want}",
            t.metric
        );
    }
}

#[test]
fn device_and_host_selection_agree_on_gradients_at_large_batch() {
    // B = 200 crosses the Auto threshold; both paths must give the same loss and gradient.
    let device = cpu_device().autodiff();
    let mut rng = Pcg64Mcg::seed_from_u64(3);
    let b = 200;
    let d = 16;
    let labels: Vec<u8> = (0..b).map(|_| rng.random_range(0..10)).collect();
    let x: Vec<f32> = (0..b * d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let run = |selection| {
        let t = Tensor::<2>::from_data(TensorData::new(x.clone(), [b, d]), &device).require_grad();
        let loss = semi_hard_triplet_loss_with(t.clone(), &labels, 1.0, Metric::L2, selection);
        let grads = loss.backward();
        let g: Vec<f32> = t.grad(&grads).unwrap().into_data().try_into_vec().unwrap();
        (loss.into_scalar::<f32>(), g)
    };
    let (l_dev, g_dev) = run(Selection::Device);
    let (l_host, g_host) = run(Selection::ReadBack);
    assert!((l_dev - l_host).abs() < 1e-6, "{l_dev} vs {l_host}");
    let max = g_dev
        .iter()
        .zip(&g_host)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(max < 1e-6, "gradients differ by {max}");
}
