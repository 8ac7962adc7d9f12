// Adam (Keras' update: epsilon added to the raw sqrt(v), see AdamSettings::factors),
// element-wise over all weights, into new buffers. When the loss is not finite the weights and moments are copied
// through unchanged. info: [count, lr, beta1, beta2, combined, eps] (floats as bits).
@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> params_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> m_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> v_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> loss: array<f32>;
@group(0) @binding(8) var<storage, read_write> info: array<u32>;

fn run(id: u32) {
    if (id >= info[0]) {
        return;
    }
    if (!is_finite(loss[0])) {
        params_out[id] = params[id];
        m_out[id] = m[id];
        v_out[id] = v[id];
        return;
    }
    let lr = bitcast<f32>(info[1]);
    let beta1 = bitcast<f32>(info[2]);
    let beta2 = bitcast<f32>(info[3]);
    let combined = bitcast<f32>(info[4]);
    let eps = bitcast<f32>(info[5]);
    let g = grads[id];
    let m1 = m[id] * beta1 + g * (1.0 - beta1);
    let v1 = v[id] * beta2 + g * g * (1.0 - beta2);
    m_out[id] = m1;
    v_out[id] = v1;
    params_out[id] = params[id] - (m1 * combined) / (sqrt(v1) + eps) * lr;
}
