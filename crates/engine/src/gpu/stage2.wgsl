// Stage 2 forward: conv2 (2x2 taps over the padded grid) at the four offsets of each pooling
// window, first maximum, bias, relu and dropout, into the dense layer's input `a2`
// ([n, 7, 7, 32] = [n, 1568]); info and the mask's bits as in stage1 (keep: also the winning
// offset and the gate).
// One thread per pooled unit and four output channels: each weight load serves the four
// window offsets, each grid load the four channels.
@group(0) @binding(0) var<storage, read_write> a1: array<f32>;
@group(0) @binding(1) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> a2: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> arg2: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> gate2: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    let n = info[0];
    if (id >= n * FLAT / 4u) {
        return;
    }
    let o4 = id % (CONV2 / 4u);
    let unit = id / (CONV2 / 4u);
    let b = unit / UNITS2;
    let i = (unit % UNITS2) / SIDE2;
    let j = (unit % UNITS2) % SIDE2;
    // Grid row of window offset 0 under tap 0; offsets 1, 2, 3 are +1 cell, +1 row, +both.
    let origin = (b * CELLS + 2u * i * GRID + 2u * j) * CONV1;
    var z0 = vec4<f32>(0.0);
    var z1 = vec4<f32>(0.0);
    var z2 = vec4<f32>(0.0);
    var z3 = vec4<f32>(0.0);
    for (var tap = 0u; tap < 4u; tap++) {
        let t = origin + ((tap / 2u) * GRID + tap % 2u) * CONV1;
        let w0 = (W2 + tap * CONV1 * CONV2) / 4u + o4;
        for (var c = 0u; c < CONV1; c++) {
            let w = params[w0 + c * (CONV2 / 4u)];
            z0 += a1[t + c] * w;
            z1 += a1[t + CONV1 + c] * w;
            z2 += a1[t + GRID * CONV1 + c] * w;
            z3 += a1[t + (GRID + 1u) * CONV1 + c] * w;
        }
    }
    // First maximum of the window (strictly greater replaces).
    var best = z0;
    var arg = vec4<u32>(0u);
    var more = z1 > best;
    best = select(best, z1, more);
    arg = select(arg, vec4<u32>(1u), more);
    more = z2 > best;
    best = select(best, z2, more);
    arg = select(arg, vec4<u32>(2u), more);
    more = z3 > best;
    best = select(best, z3, more);
    arg = select(arg, vec4<u32>(3u), more);
    let pre = best + params[B2 / 4u + o4];
    var keep = vec4<f32>(1.0);
    if (info[2] != 0u) {
        // The four values' bits: 4·id .. 4·id + 3, in one word.
        let bits = mask[id >> 3u] >> ((id & 7u) * 4u);
        let kept = (vec4<u32>(bits) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u);
        keep = select(vec4<f32>(0.0), vec4<f32>(bitcast<f32>(info[3])), kept != vec4<u32>(0u));
    }
    let on = (pre > vec4<f32>(0.0)) | is_nan4(pre);
    a2[id] = select(vec4<f32>(0.0), pre * keep, on);
    if (info[1] != 0u) {
        arg2[id] = arg;
        gate2[id] = select(vec4<f32>(0.0), keep, on);
    }
}
