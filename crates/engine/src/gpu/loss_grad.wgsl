// Triplet loss, 4 of 4: the gradient w.r.t. the embeddings, one thread per value (i, k), from
// G = dLoss/dD: sum over j of (G[i,j] + G[j,i]) · dD[i,j]/de_i. L2: (e_i - e_j) / D[i,j] where
// D > 0; squared-L2: 2 (e_i - e_j) there; angular: through the cosine of the normalised rows
// (where 1 - cos >= 0) and the normalisation (its Jacobian (I - f fᵀ) / |e|, or 1 / 1e-6 for a
// row clamped at 1e-12). Semi-hard mining without any positive pair: NaN (0 / 0, as TF).
// Thread 0 also writes the readout: the loss, then the mining statistics (the host's counts,
// then the sums of the rows; without negatives nothing was chosen, so their sums are 0).
@group(0) @binding(0) var<storage, read_write> emb: array<f32>;
@group(0) @binding(1) var<storage, read_write> dist: array<f32>;
@group(0) @binding(2) var<storage, read_write> cosv: array<f32>;
@group(0) @binding(3) var<storage, read_write> sq: array<f32>;
@group(0) @binding(4) var<storage, read_write> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> rowsum: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad: array<f32>;
@group(0) @binding(7) var<storage, read_write> readout: array<f32>;
@group(0) @binding(8) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    let b = info[L_B];
    let d = info[L_D];
    let denominator = bitcast<f32>(info[L_DENOMINATOR]);
    let nan = nan_from(b);
    if (id == 0u) {
        var s = array<f32, 5>(0.0, 0.0, 0.0, 0.0, 0.0);
        for (var a = 0u; a < b; a++) {
            for (var q = 0u; q < 5u; q++) {
                s[q] += rowsum[a * 5u + q];
            }
        }
        let one_class = info[L_ONE_CLASS] != 0u;
        readout[0] = select(s[0] / denominator, nan, denominator == 0.0);
        readout[1] = f32(info[L_TERMS]);
        readout[2] = f32(info[L_NO_NEGATIVE]);
        readout[3] = select(s[1], s[1] * 0.0, one_class);
        readout[4] = s[2];
        readout[5] = s[3];
        readout[6] = select(s[4], s[4] * 0.0, one_class);
    }
    if (id >= b * d) {
        return;
    }
    if (denominator == 0.0) {
        grad[id] = nan;
        return;
    }
    let i = id / d;
    let k = id % d;
    var acc = 0.0;
    if (info[L_METRIC] == METRIC_ANGULAR) {
        let ni = sqrt(max(sq[i], 1e-12));
        var df = 0.0;
        var s = 0.0;
        for (var j = 0u; j < b; j++) {
            let gs = g[i * b + j] + g[j * b + i];
            let c = cosv[i * b + j];
            if (gs == 0.0 || !(1.0 - c >= 0.0)) {
                continue;
            }
            df -= gs * (emb[j * d + k] / sqrt(max(sq[j], 1e-12)));
            s += gs * c;
        }
        let fi = emb[i * d + k] / ni;
        acc = select(df / ni, (df + fi * s) / ni, sq[i] >= 1e-12);
    } else {
        let squared = info[L_METRIC] == METRIC_SQUARED;
        let ei = emb[i * d + k];
        for (var j = 0u; j < b; j++) {
            let gs = g[i * b + j] + g[j * b + i];
            let dij = dist[i * b + j];
            if (gs == 0.0 || !(dij > 0.0)) {
                continue;
            }
            let diff = ei - emb[j * d + k];
            acc += select(gs * diff / dij, 2.0 * gs * diff, squared);
        }
    }
    grad[id] = acc;
}
