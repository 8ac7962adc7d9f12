// Triplet loss, 2 of 4 (semi-hard mining only): one thread per ordered positive pair (a, p)
// chooses its negative with TFA's rules. Semi-hard: the smallest D[a, n] strictly above D[a, p]
// among a's negatives (the lowest column among exact ties), its distance rounded as TFA's
// masked minimum rounds it, (D[a, n] - rowmax) + rowmax. Otherwise the fallback, TFA's masked
// maximum max((D[a, ·] - rowmin) · negative) + rowmin: the farthest negative (first column), or
// the row's minimum when a has no negative; its column gets the gradient (`neg`'s top bit marks
// a fallback). Other pairs are left unwritten: the next kernel reads positive pairs only.
@group(0) @binding(0) var<storage, read_write> dist: array<f32>;
@group(0) @binding(1) var<storage, read_write> neg: array<u32>;
@group(0) @binding(2) var<storage, read_write> dan: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    let b = info[L_B];
    if (id >= b * b) {
        return;
    }
    let a = id / b;
    let p = id % b;
    let la = label(a);
    if (a == p || label(p) != la) {
        return;
    }
    let row = a * b;
    var rmax = dist[row];
    var rmin = dist[row];
    var imin = 0u;
    for (var n = 1u; n < b; n++) {
        let v = dist[row + n];
        rmax = max(rmax, v);
        if (v < rmin) {
            rmin = v;
            imin = n;
        }
    }
    let dap = dist[row + p];
    var found = false;
    var best = 0.0;
    var best_n = 0u;
    var far = -1.0;
    var far_n = 0u;
    for (var n = 0u; n < b; n++) {
        let v = dist[row + n];
        let is_neg = label(n) != la;
        let m = select(0.0, v - rmin, is_neg);
        if (m > far) {
            far = m;
            far_n = n;
        }
        if (is_neg && v > dap && (!found || v < best)) {
            best = v;
            best_n = n;
            found = true;
        }
    }
    if (found) {
        dan[id] = (best - rmax) + rmax;
        neg[id] = best_n;
    } else {
        dan[id] = far + rmin;
        neg[id] = select(imin, far_n, label(far_n) != la) | FALLBACK;
    }
}
