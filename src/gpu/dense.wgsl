// Dense layer: z = a2 . W3 + b3 ([n, 256]). One thread per output.
@group(0) @binding(0) var<storage, read_write> a2: array<f32>;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let id = thread_id(gid, groups);
    if (id >= info[0] * EMB) {
        return;
    }
    let e = id % EMB;
    let row = (id / EMB) * FLAT;
    var acc = 0.0;
    for (var k = 0u; k < FLAT; k++) {
        acc += a2[row + k] * params[W3 + k * EMB + e];
    }
    z[id] = params[B3 + e] + acc;
}
