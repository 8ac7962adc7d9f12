// Normalisation backward: d(x/|x|) = d/|x| - x (d.x)/|x|^3 (only the first term where the
// squared norm is under the 1e-12 floor). One thread per element.
@group(0) @binding(0) var<storage, read_write> z: array<f32>;
@group(0) @binding(1) var<storage, read_write> d: array<f32>;
@group(0) @binding(2) var<storage, read_write> dz: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    if (id >= info[0] * EMB) {
        return;
    }
    let row = (id / EMB) * EMB;
    var sum = 0.0;
    var dot = 0.0;
    for (var e = 0u; e < EMB; e++) {
        sum += z[row + e] * z[row + e];
        dot += z[row + e] * d[row + e];
    }
    let norm = sqrt(max(sum, 1e-12));
    let k = select(0.0, dot / (norm * norm * norm), sum >= 1e-12);
    dz[id] = d[id] / norm - z[id] * k;
}
