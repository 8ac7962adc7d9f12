// Dense layer weight gradients: dW3 = a2^T . dz and db3 = column sums of dz, written into the
// gradient buffer at their offsets. One thread per four gradient elements, summing over the
// batch.
@group(0) @binding(0) var<storage, read_write> a2: array<f32>;
@group(0) @binding(1) var<storage, read_write> dz: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> grads: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    let n = info[0];
    let width = EMB / 4u;
    if (id < FLAT * width) {
        let k = id / width;
        let e4 = id % width;
        var acc = vec4<f32>(0.0);
        for (var b = 0u; b < n; b++) {
            acc += a2[b * FLAT + k] * dz[b * width + e4];
        }
        grads[W3 / 4u + id] = acc;
    } else if (id < FLAT * width + width) {
        let e4 = id - FLAT * width;
        var acc = vec4<f32>(0.0);
        for (var b = 0u; b < n; b++) {
            acc += dz[b * width + e4];
        }
        grads[B3 / 4u + e4] = acc;
    }
}
