//! Batches whose mining statistics were worked out by hand (below, distance by distance), for
//! `tests/mining_stats.rs` (the CPU device, both selection paths, with and without autodiff)
//! and `tests/wgpu_backend.rs` (wgpu). One-dimensional embeddings under the squared L2 metric:
//! every distance is a small integer, exact in f32 on any device (no square root), so exact ties
//! (which the strict "farther" must refuse) stay ties.

use burn::tensor::{Device, Tensor, TensorData};
use tripletlab_core::run::{Metric, Mining, MiningStats};
use tripletlab_engine::loss::{Mined, Selection, mined_loss};

/// One hand-computed batch.
pub struct Case {
    pub name: &'static str,
    pub mining: Mining,
    pub margin: f32,
    /// One value per example.
    pub x: &'static [f32],
    pub labels: &'static [u8],
    pub want: MiningStats,
    /// The loss (TFA's), as a check that the figures describe the loss that was computed.
    pub loss: f32,
}

const fn stats(
    (terms, semi_hard, fallback, no_negative, active): (u64, u64, u64, u64, u64),
    sum_d_ap: f64,
    sum_d_an: f64,
) -> MiningStats {
    MiningStats {
        terms,
        semi_hard,
        fallback,
        no_negative,
        active,
        sum_d_ap,
        sum_d_an,
    }
}

pub const CASES: &[Case] = &[
    // x = [0, 1, 4, 2, 6], labels [0, 0, 0, 1, 1], margin 9. Squared distances:
    //   d01 = 1, d02 = 16, d03 = 4, d04 = 36, d12 = 9, d13 = 1, d14 = 25, d23 = 4, d24 = 4,
    //   d34 = 16.
    // The 8 ordered positive pairs (a, p): d_ap; negatives of a; chosen d_an; term 9 + ap - an.
    //   (0,1):  1; {4, 36};    semi-hard 4 (closest strictly farther);     6 active
    //   (0,2): 16; {4, 36};    semi-hard 36;                             -11
    //   (1,0):  1; {1, 25};    semi-hard 25 (d13 = 1 ties, not farther); -15
    //   (1,2):  9; {1, 25};    semi-hard 25;                              -7
    //   (2,0): 16; {4, 4};     none farther: fallback, farthest 4;        21 active
    //   (2,1):  9; {4, 4};     fallback 4;                                14 active
    //   (3,4): 16; {4, 1, 4};  fallback 4;                                21 active
    //   (4,3): 16; {36, 25, 4}; semi-hard 25;                              0 (not > 0)
    // 5 semi-hard, 3 fallback, 4 active; Σd_ap = 84, Σd_an = 127; loss (6+21+14+21)/8 = 7.75.
    Case {
        name: "semi-hard with fallbacks",
        mining: Mining::SemiHard,
        margin: 9.0,
        x: &[0.0, 1.0, 4.0, 2.0, 6.0],
        labels: &[0, 0, 0, 1, 1],
        want: stats((8, 5, 3, 0, 4), 84.0, 127.0),
        loss: 7.75,
    },
    // One class, x = [0, 1, 3]: no anchor has a negative. d01 = 1, d02 = 9, d12 = 4; the 6
    // ordered pairs all take the row minimum (0, the diagonal) in place of a negative: terms
    // 9 + d_ap, all active. Σd_ap = 2·(1+9+4) = 28, no d_an; loss (6·9 + 28)/6.
    Case {
        name: "semi-hard without negatives",
        mining: Mining::SemiHard,
        margin: 9.0,
        x: &[0.0, 1.0, 3.0],
        labels: &[7, 7, 7],
        want: stats((6, 0, 0, 6, 6), 28.0, 0.0),
        loss: 82.0 / 6.0,
    },
    // Batch-hard, x = [0, 1, 5, 9, 20], labels [0, 0, 1, 1, 2], margin 15. Squared distances:
    //   d01 = 1, d02 = 25, d03 = 81, d04 = 400, d12 = 16, d13 = 64, d14 = 361, d23 = 16,
    //   d24 = 225, d34 = 121.
    // Anchor: hardest positive; hardest negative; strictly farther?; term 15 + ap - an.
    //   0:  1; min(25, 81, 400) = 25;  yes;             -9
    //   1:  1; min(16, 64, 361) = 16;  yes;              0 (not > 0)
    //   2: 16; min(25, 16, 225) = 16;  no (a tie);      15 active
    //   3: 16; min(81, 64, 121) = 64;  yes;            -33
    //   4: no positive: not a term (the loss still counts it: 15 + 0 - 121 < 0).
    // 4 terms, 3 farther, 1 not, 1 active; Σd_ap = 34, Σd_an = 121; loss 15/5 = 3.
    Case {
        name: "batch-hard",
        mining: Mining::Hard,
        margin: 15.0,
        x: &[0.0, 1.0, 5.0, 9.0, 20.0],
        labels: &[0, 0, 1, 1, 2],
        want: stats((4, 3, 1, 0, 1), 34.0, 121.0),
        loss: 3.0,
    },
    // Batch-hard on one class, x = [0, 1, 3]: hardest positives 9, 4, 9 (Σ 22); no negatives
    // (the loss uses the row maximum, the same values): every term is 15, all active; loss 15.
    Case {
        name: "batch-hard without negatives",
        mining: Mining::Hard,
        margin: 15.0,
        x: &[0.0, 1.0, 3.0],
        labels: &[7, 7, 7],
        want: stats((3, 0, 0, 3, 3), 22.0, 0.0),
        loss: 15.0,
    },
];

/// `case`'s loss and statistics on `device` (an autodiff one when `autodiff`, the embeddings
/// then requiring a gradient as in a training step), read in one go as a trainer does.
pub fn evaluate(
    case: &Case,
    device: &Device,
    selection: Selection,
    autodiff: bool,
) -> (f32, MiningStats) {
    let b = case.x.len();
    let device = if autodiff {
        device.clone().autodiff()
    } else {
        device.clone()
    };
    let mut x = Tensor::<2>::from_data(TensorData::new(case.x.to_vec(), [b, 1]), &device);
    if autodiff {
        x = x.require_grad();
    }
    let Mined { loss, stats } = mined_loss(
        x,
        case.labels,
        case.margin,
        Metric::SquaredL2,
        (case.mining, false),
        selection,
    );
    let values: Vec<f32> = Tensor::cat(vec![loss.detach(), stats], 0)
        .into_data()
        .try_into_vec()
        .expect("f32");
    (values[0], MiningStats::from_device(&values[1..]))
}

/// Every case on `device` with `selection`, with and without autodiff: the hand-computed
/// figures exactly (integer distances) and the hand-computed loss.
pub fn check(device: &Device, selection: Selection, what: &str) {
    for case in CASES {
        for autodiff in [false, true] {
            let (loss, got) = evaluate(case, device, selection, autodiff);
            let at = format!("{what}, {}, autodiff {autodiff}", case.name);
            assert_eq!(got, case.want, "{at}");
            assert!(
                (loss - case.loss).abs() <= 1e-5 * case.loss,
                "{at}: loss {loss}, by hand {}",
                case.loss
            );
        }
    }
}
