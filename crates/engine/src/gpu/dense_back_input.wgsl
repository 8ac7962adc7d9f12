// Dense layer input gradient, gated by stage 2's relu-dropout: g2 = (dz . W3^T) * gate2
// ([n, 1568]): the gradient at conv2's pooled output. One thread per element.
@group(0) @binding(0) var<storage, read_write> dz: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> gate2: array<f32>;
@group(0) @binding(3) var<storage, read_write> g2: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    if (id >= info[0] * FLAT) {
        return;
    }
    let k = id % FLAT;
    let row = (id / FLAT) * (EMB / 4u);
    let w = W3 / 4u + k * (EMB / 4u);
    var acc = vec4<f32>(0.0);
    for (var e = 0u; e < EMB / 4u; e++) {
        acc += dz[row + e] * params[w + e];
    }
    g2[id] = (acc.x + acc.y + acc.z + acc.w) * gate2[id];
}
