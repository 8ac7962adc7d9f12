// Triplet loss, 2 of 4 (semi-hard mining only): one thread per ordered positive pair (a, p)
// looks for its semi-hard negative with TFA's rule: the smallest D[a, n] strictly above D[a, p]
// among a's negatives, the lowest column among exact ties; `neg` gets its column, or NONE when
// there is none (the next kernel then takes the fallback, which depends on the row alone). One
// pass over the row: B³ comparisons in all, as TFA's, in O(B²) memory. Other pairs are left
// unwritten: the next kernel reads positive pairs only.
@group(0) @binding(0) var<storage, read_write> dist: array<f32>;
@group(0) @binding(1) var<storage, read_write> neg: array<u32>;
@group(0) @binding(2) var<storage, read_write> info: array<u32>;

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
    let dap = dist[row + p];
    var best = 0.0;
    var best_n = NONE;
    for (var n = 0u; n < b; n++) {
        let v = dist[row + n];
        if (label(n) != la && v > dap && (best_n == NONE || v < best)) {
            best = v;
            best_n = n;
        }
    }
    neg[id] = best_n;
}
