// Triplet loss, 1 of 4: the distance matrix D [B, B] exactly as TFA computes it, one thread per
// (i, j). L2: d2 = (|e_i|² + |e_j|²) - 2 e_i·e_j, 0 where d2 <= 0 and on the diagonal, else
// sqrt(d2) (squared-L2: d2). Angular: D = max(1 - f_i·f_j, 0) with f = e / sqrt(max(|e|², 1e-12)),
// its cosine kept in `cosv` for the gradient, diagonal not forced to 0. A NaN stays NaN, as in
// burn's masks (NaN · 0). The diagonal's thread keeps |e_i|² in `sq`.
@group(0) @binding(0) var<storage, read_write> emb: array<f32>;
@group(0) @binding(1) var<storage, read_write> dist: array<f32>;
@group(0) @binding(2) var<storage, read_write> cosv: array<f32>;
@group(0) @binding(3) var<storage, read_write> sq: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    let b = info[L_B];
    let d = info[L_D];
    if (id >= b * b) {
        return;
    }
    let i = id / b;
    let j = id % b;
    var si = 0.0;
    var sj = 0.0;
    var dot = 0.0;
    for (var k = 0u; k < d; k++) {
        let x = emb[i * d + k];
        let y = emb[j * d + k];
        si += x * x;
        sj += y * y;
        dot += x * y;
    }
    if (i == j) {
        sq[i] = si;
    }
    let metric = info[L_METRIC];
    if (metric == METRIC_ANGULAR) {
        let ni = sqrt(max(si, 1e-12));
        let nj = sqrt(max(sj, 1e-12));
        var c = 0.0;
        for (var k = 0u; k < d; k++) {
            c += (emb[i * d + k] / ni) * (emb[j * d + k] / nj);
        }
        cosv[id] = c;
        dist[id] = relu_tf(1.0 - c);
        return;
    }
    let d2 = (si + sj) - dot * 2.0;
    var out = 0.0;
    if (is_nan(d2)) {
        out = d2;
    } else if (i != j && d2 > 0.0) {
        out = select(sqrt(d2), d2, metric == METRIC_SQUARED);
    }
    dist[id] = out;
}
