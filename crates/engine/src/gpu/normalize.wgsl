// tf.math.l2_normalize along rows: x / sqrt(max(sum x^2, 1e-12)). One thread per element.
@group(0) @binding(0) var<storage, read_write> z: array<f32>;
@group(0) @binding(1) var<storage, read_write> emb: array<f32>;
@group(0) @binding(2) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    if (id >= info[0] * EMB) {
        return;
    }
    let row = (id / EMB) * EMB;
    var sum = 0.0;
    for (var e = 0u; e < EMB; e++) {
        sum += z[row + e] * z[row + e];
    }
    emb[id] = z[id] / sqrt(max(sum, 1e-12));
}
