// Dense layer weight gradients: dW3 = a2^T . dz and db3 = column sums of dz, written into the
// gradient buffer at their offsets. One thread per gradient element, summing over the batch.
@group(0) @binding(0) var<storage, read_write> a2: array<f32>;
@group(0) @binding(1) var<storage, read_write> dz: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let id = thread_id(gid, groups);
    let n = info[0];
    if (id < FLAT * EMB) {
        let k = id / EMB;
        let e = id % EMB;
        var acc = 0.0;
        for (var b = 0u; b < n; b++) {
            acc += a2[b * FLAT + k] * dz[b * EMB + e];
        }
        grads[W3 + id] = acc;
    } else if (id < FLAT * EMB + EMB) {
        let e = id - FLAT * EMB;
        var acc = 0.0;
        for (var b = 0u; b < n; b++) {
            acc += dz[b * EMB + e];
        }
        grads[B3 + e] = acc;
    }
}
