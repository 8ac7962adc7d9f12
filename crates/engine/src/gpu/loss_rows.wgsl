// Triplet loss, 3 of 4: one thread per anchor a writes row a of G = dLoss/dD (0 but at the
// chosen distances) and the row's sums for the loss and the mining statistics: the terms, how
// many took a semi-hard negative (batch-hard: a negative farther than the positive), how many
// are active (> 0), and the positive and negative distances. Semi-hard: every ordered positive
// pair's max((D[a,p] - D[a,n]) + margin, 0), its gradient passing where the argument is >= 0
// (TF's convention), 1 / (positive pairs) each; the semi-hard negative's distance rounded as
// TFA's masked minimum rounds it, (D[a,n] - rowmax) + rowmax, and where the pair has none the
// fallback, TFA's masked maximum max((D[a,·] - rowmin) · negative) + rowmin: the farthest
// negative (first column), or the row minimum when a has no negative, whose column gets the
// gradient. Batch-hard: the anchor's hardest positive, TFA's
// masked maximum over its positives (the row minimum when it has none), and hardest negative, the
// masked minimum over its negatives (the row maximum when it has none); the term is
// max(gap + margin, 0), or softplus(gap) with the soft margin, 1 / B each. A NaN anywhere in
// the row makes the row's sum NaN, as in burn's and TF's masked sums (NaN · 0), whichever
// distances the mining chose: the loss says the net diverged and Adam skips the step.
@group(0) @binding(0) var<storage, read_write> dist: array<f32>;
@group(0) @binding(1) var<storage, read_write> neg: array<u32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> rowsum: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

fn log1p(x: f32) -> f32 {
    let u = 1.0 + x;
    if (u == 1.0 || !is_finite(u)) {
        return select(log(u), x, u == 1.0);
    }
    return log(u) * (x / (u - 1.0));
}

fn run(id: u32) {
    let a = id;
    let b = info[L_B];
    if (a >= b) {
        return;
    }
    let row = a * b;
    var nan_seen = false;
    for (var j = 0u; j < b; j++) {
        g[row + j] = 0.0;
        nan_seen = nan_seen || is_nan(dist[row + j]);
    }
    let la = label(a);
    let margin = bitcast<f32>(info[L_MARGIN]);
    let scale = 1.0 / bitcast<f32>(info[L_DENOMINATOR]);
    var s_term = 0.0;
    var s_far = 0.0;
    var s_active = 0.0;
    var s_ap = 0.0;
    var s_an = 0.0;
    // The row's extremes (first columns) and TFA's masked maximum over the negatives.
    var rmax = dist[row];
    var imax = 0u;
    var rmin = dist[row];
    var imin = 0u;
    for (var j = 1u; j < b; j++) {
        let v = dist[row + j];
        if (v > rmax) {
            rmax = v;
            imax = j;
        }
        if (v < rmin) {
            rmin = v;
            imin = j;
        }
    }
    if (info[L_MINING] == MINING_SEMI_HARD) {
        var far = -1.0;
        var far_n = 0u;
        for (var n = 0u; n < b; n++) {
            let m = select(0.0, dist[row + n] - rmin, label(n) != la);
            if (m > far) {
                far = m;
                far_n = n;
            }
        }
        let fallback_n = select(imin, far_n, label(far_n) != la);
        let fallback_d = far + rmin;
        for (var p = 0u; p < b; p++) {
            if (p == a || label(p) != la) {
                continue;
            }
            let chosen = neg[row + p];
            let semi = chosen != NONE;
            let n = select(fallback_n, chosen, semi);
            let dap = dist[row + p];
            let dn = select(fallback_d, (dist[row + n] - rmax) + rmax, semi);
            let x = (dap - dn) + margin;
            let t = relu_tf(x);
            if (x >= 0.0) {
                g[row + p] += scale;
                g[row + n] -= scale;
            }
            s_term += t;
            s_far += select(0.0, 1.0, semi);
            s_active += select(0.0, 1.0, t > 0.0);
            s_ap += dap;
            s_an += dn;
        }
    } else {
        var pv = -1.0;
        var pi = 0u;
        var nv = 1.0;
        var ni = 0u;
        var has_pos = false;
        for (var j = 0u; j < b; j++) {
            let v = dist[row + j];
            let pos = j != a && label(j) == la;
            has_pos = has_pos || pos;
            let mp = select(0.0, v - rmin, pos);
            if (mp > pv) {
                pv = mp;
                pi = j;
            }
            let mn = select(0.0, v - rmax, label(j) != la);
            if (mn < nv) {
                nv = mn;
                ni = j;
            }
        }
        let hp = pv + rmin;
        let hn = nv + rmax;
        let at_p = select(imin, pi, pi != a && label(pi) == la);
        let at_n = select(imax, ni, label(ni) != la);
        let gap = hp - hn;
        var t = 0.0;
        var dt = 0.0;
        if (info[L_SOFT] != 0u) {
            let e = exp(gap);
            t = log1p(e);
            dt = e / (1.0 + e);
        } else {
            let x = gap + margin;
            t = relu_tf(x);
            dt = select(0.0, 1.0, x >= 0.0);
        }
        g[row + at_p] += dt * scale;
        g[row + at_n] -= dt * scale;
        s_term = t;
        if (has_pos) {
            s_far = select(0.0, 1.0, hn > hp);
            s_active = select(0.0, 1.0, t > 0.0);
            s_ap = hp;
            s_an = hn;
        }
    }
    if (nan_seen) {
        s_term = nan_from(b);
    }
    rowsum[a * 5u] = s_term;
    rowsum[a * 5u + 1u] = s_far;
    rowsum[a * 5u + 2u] = s_active;
    rowsum[a * 5u + 3u] = s_ap;
    rowsum[a * 5u + 4u] = s_an;
}
