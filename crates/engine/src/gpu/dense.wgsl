// Dense layer: z = a2 . W3 + b3 ([n, 256]). One thread per row and four outputs.
@group(0) @binding(0) var<storage, read_write> a2: array<f32>;
@group(0) @binding(1) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> z: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    if (id >= info[0] * EMB / 4u) {
        return;
    }
    let e4 = id % (EMB / 4u);
    let row = (id / (EMB / 4u)) * FLAT;
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < FLAT; k++) {
        acc += a2[row + k] * params[W3 / 4u + k * (EMB / 4u) + e4];
    }
    z[id] = params[B3 / 4u + e4] + acc;
}
