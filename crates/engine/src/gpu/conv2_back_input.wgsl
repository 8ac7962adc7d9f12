// Conv2 input gradient at stage 1's pooled units, gated by stage 1's relu-dropout:
// g1[b, y, x, c] = gate1 * sum over taps and output channels of g2 (where the conv output under
// that tap won its pooling window) times the tap's kernel entry. One thread per unit and four
// channels (adjacent threads share the unit, so their branches agree).
@group(0) @binding(0) var<storage, read_write> g2: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg2: array<u32>;
@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> gate1: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> g1: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    let quads = CONV1 / 4u;
    if (id >= info[0] * UNITS1 * quads) {
        return;
    }
    let c = (id % quads) * 4u;
    let cell = (id / quads) % UNITS1;
    let b = id / (quads * UNITS1);
    let y = cell / SIDE1;
    let x = cell % SIDE1;
    var acc = vec4<f32>(0.0);
    for (var tap = 0u; tap < 4u; tap++) {
        let kh = tap / 2u;
        let kw = tap % 2u;
        if (y >= kh && x >= kw) {
            let py = y - kh;
            let px = x - kw;
            let q = (py % 2u) * 2u + px % 2u;
            let unit = (b * UNITS2 + (py / 2u) * SIDE2 + px / 2u) * CONV2;
            let w = W2 + (tap * CONV1 + c) * CONV2;
            for (var o = 0u; o < CONV2; o++) {
                if (arg2[unit + o] == q) {
                    let g = g2[unit + o];
                    acc += g * vec4<f32>(params[w + o], params[w + CONV2 + o],
                        params[w + 2u * CONV2 + o], params[w + 3u * CONV2 + o]);
                }
            }
        }
    }
    g1[id] = acc * gate1[id];
}
