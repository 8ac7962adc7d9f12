// Conv1 weight gradients from the winning patches: dW1[t, c] = sum over pooled units of g1
// times tap t of the patch at the unit's winning offset; db1[c] = sum of g1. One thread per
// gradient element, summing over the batch's pooled units.
// binding 0: pixels (pixels.wgsl)
@group(0) @binding(1) var<storage, read_write> g1: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg1: array<u32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    let n = info[0];
    if (id < 4u * CONV1) {
        let c = id % CONV1;
        let t = id / CONV1;
        var acc = 0.0;
        for (var unit = 0u; unit < n * UNITS1; unit++) {
            let g = g1[unit * CONV1 + c];
            if (g != 0.0) {
                let b = unit / UNITS1;
                let i = (unit % UNITS1) / SIDE1;
                let j = (unit % UNITS1) % SIDE1;
                let q = arg1[unit * CONV1 + c];
                let y = 2u * i + q / 2u + t / 2u;
                let x = 2u * j + q % 2u + t % 2u;
                acc += g * pixel(b * PIXELS, y, x);
            }
        }
        grads[W1 + id] = acc;
    } else if (id < 5u * CONV1) {
        let c = id - 4u * CONV1;
        var acc = 0.0;
        for (var unit = 0u; unit < n * UNITS1; unit++) {
            acc += g1[unit * CONV1 + c];
        }
        grads[B1 + c] = acc;
    }
}
