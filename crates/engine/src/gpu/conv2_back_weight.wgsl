// Conv2 weight gradients: dW2[tap, c, o] = sum over pooled units of g2 times the grid value
// under that tap at the unit's winning position; db2[o] = sum of g2. One thread per tap, output
// channel and four input channels (adjacent threads share o, so their branches agree), summing
// over the batch's pooled units.
@group(0) @binding(0) var<storage, read_write> a1: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> g2: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg2: array<u32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    let n = info[0];
    let quads = CONV1 / 4u;
    let threads = 4u * quads * CONV2;
    if (id < threads) {
        let c4 = id % quads;
        let o = (id / quads) % CONV2;
        let tap = id / (quads * CONV2);
        let shift = (tap / 2u) * GRID + tap % 2u;
        var acc = vec4<f32>(0.0);
        for (var unit = 0u; unit < n * UNITS2; unit++) {
            let g = g2[unit * CONV2 + o];
            if (g != 0.0) {
                let b = unit / UNITS2;
                let i = (unit % UNITS2) / SIDE2;
                let j = (unit % UNITS2) % SIDE2;
                let q = arg2[unit * CONV2 + o];
                let cell = b * CELLS + (2u * i + q / 2u) * GRID + 2u * j + q % 2u + shift;
                acc += g * a1[cell * quads + c4];
            }
        }
        let at = W2 + (tap * CONV1 + c4 * 4u) * CONV2 + o;
        grads[at] = acc.x;
        grads[at + CONV2] = acc.y;
        grads[at + 2u * CONV2] = acc.z;
        grads[at + 3u * CONV2] = acc.w;
    } else if (id < threads + CONV2) {
        let o = id - threads;
        var acc = 0.0;
        for (var unit = 0u; unit < n * UNITS2; unit++) {
            acc += g2[unit * CONV2 + o];
        }
        grads[B2 + o] = acc;
    }
}
