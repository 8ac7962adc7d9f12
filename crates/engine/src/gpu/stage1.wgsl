// Stage 1 forward: conv1 at the four offsets of each 2x2 pooling window, first maximum, bias,
// relu and dropout, written into conv2's zero-padded 15x15 input grid `a1` ([n, 225, 64]).
// info: [n, keep, masked, scale]. With keep = 1 (training) it also keeps, per pooled unit
// ([n, 196, 64]), the winning offset and the relu-dropout gate for the backward pass; with
// masked = 1 the dropout mask ([n, 225, 64], one bit per unit: bit e % 32 of word e / 32) applies,
// a kept unit scaled by `scale` (f32 bits), a dropped one zeroed. One thread per grid element.
// binding 0: pixels (pixels.wgsl)
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> a1: array<f32>;
@group(0) @binding(4) var<storage, read_write> arg1: array<u32>;
@group(0) @binding(5) var<storage, read_write> gate1: array<f32>;
@group(0) @binding(6) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    let n = info[0];
    if (id >= n * CELLS * CONV1) {
        return;
    }
    let c = id % CONV1;
    let cell = (id / CONV1) % CELLS;
    let b = id / (CONV1 * CELLS);
    let gi = cell / GRID;
    let gj = cell % GRID;
    if (gi == SIDE1 || gj == SIDE1) {
        a1[id] = 0.0;
        return;
    }
    let base = b * PIXELS;
    let w0 = params[W1 + c];
    let w1 = params[W1 + CONV1 + c];
    let w2 = params[W1 + 2u * CONV1 + c];
    let w3 = params[W1 + 3u * CONV1 + c];
    var best = 0.0;
    var arg = 0u;
    for (var q = 0u; q < 4u; q++) {
        let y = 2u * gi + q / 2u;
        let x = 2u * gj + q % 2u;
        let z = pixel(base, y, x) * w0 + pixel(base, y, x + 1u) * w1
            + pixel(base, y + 1u, x) * w2 + pixel(base, y + 1u, x + 1u) * w3;
        if (q == 0u || z > best) {
            best = z;
            arg = q;
        }
    }
    let pre = best + params[B1 + c];
    var keep = 1.0;
    if (info[2] != 0u) {
        let kept = ((mask[id >> 5u] >> (id & 31u)) & 1u) != 0u;
        keep = select(0.0, bitcast<f32>(info[3]), kept);
    }
    // relu, keeping NaN so that a diverged net shows in the loss
    let on = pre > 0.0 || is_nan(pre);
    a1[id] = select(0.0, pre * keep, on);
    if (info[1] != 0u) {
        let unit = (b * UNITS1 + gi * SIDE1 + gj) * CONV1 + c;
        arg1[unit] = arg;
        gate1[unit] = select(0.0, keep, on);
    }
}
