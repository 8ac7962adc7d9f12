// Stage 2 forward: conv2 (2x2 taps over the padded grid) at the four offsets of each pooling
// window, first maximum, bias, relu and dropout, into the dense layer's input `a2`
// ([n, 7, 7, 32] = [n, 1568]); info as in stage1 (keep: also the winning offset and the gate).
// One thread per output unit.
@group(0) @binding(0) var<storage, read_write> a1: array<f32>;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> a2: array<f32>;
@group(0) @binding(4) var<storage, read_write> arg2: array<u32>;
@group(0) @binding(5) var<storage, read_write> gate2: array<f32>;
@group(0) @binding(6) var<storage, read_write> info: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let id = thread_id(gid, groups);
    let n = info[0];
    if (id >= n * FLAT) {
        return;
    }
    let o = id % CONV2;
    let unit = id / CONV2;
    let b = unit / UNITS2;
    let i = (unit % UNITS2) / SIDE2;
    let j = (unit % UNITS2) % SIDE2;
    var best = 0.0;
    var arg = 0u;
    for (var q = 0u; q < 4u; q++) {
        let py = 2u * i + q / 2u;
        let px = 2u * j + q % 2u;
        var z = 0.0;
        for (var tap = 0u; tap < 4u; tap++) {
            let row = (b * CELLS + (py + tap / 2u) * GRID + px + tap % 2u) * CONV1;
            let w = W2 + tap * CONV1 * CONV2 + o;
            for (var c = 0u; c < CONV1; c++) {
                z += a1[row + c] * params[w + c * CONV2];
            }
        }
        if (q == 0u || z > best) {
            best = z;
            arg = q;
        }
    }
    let pre = best + params[B2 + o];
    var keep = 1.0;
    if (info[2] != 0u) {
        keep = mask[id];
    }
    let on = pre > 0.0 || is_nan(pre);
    a2[id] = select(0.0, pre * keep, on);
    if (info[1] != 0u) {
        arg2[id] = arg;
        gate2[id] = select(0.0, keep, on);
    }
}
