// The TensorFlow.js peer of tripletlab's training step: the same net, loss and optimiser as
// the Keras/TFA recipe (bench/keras/keras_step.py), written with tfjs core ops. Every function
// takes the `tf` namespace as its first argument so the same code runs in the bench page (the
// UMD bundles' global `tf`) and in node (check-loss.mjs, `@tensorflow/tfjs` on its JS CPU
// backend).

/** Kernels TF registers as NotDifferentiable but tfjs 4.22 has no gradient for: with a bool
 *  mask on the tape, tfjs throws "gradient function not found for LessEqual" (TFA's
 *  error_mask) or "... for Greater" (the semi-hard mask). TF drops these paths; a zero
 *  gradient is the same thing numerically. */
const NOT_DIFFERENTIABLE = {
  Greater: ['a', 'b'],
  LessEqual: ['a', 'b'],
  LogicalAnd: ['a', 'b'],
  LogicalNot: ['x'],
  Equal: ['a', 'b'],
};

/**
 * Registers the shims the peer needs, once per page / process:
 *  - zero gradients for the boolean kernels of TFA's mining (see NOT_DIFFERENTIABLE);
 *  - on backends without a `Conv2DBackpropFilter` kernel (tfjs-backend-wasm 4.22), that kernel
 *    expressed with supported ops (pad → shifted slices → concat → matMul), so `tf.conv2d` /
 *    `tf.fused.conv2d` stay as a tfjs user writes them and their gradient works.
 * Returns a description of what was registered.
 */
export function registerShims(tf, backendNames = ['wasm']) {
  const done = { zeroGrads: [], conv2dBackpropFilter: [] };
  for (const [kernelName, inputs] of Object.entries(NOT_DIFFERENTIABLE)) {
    if (tf.getGradient(kernelName) != null) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: inputs,
      gradFunc: (dy, saved) => Object.fromEntries(inputs.map((n, i) => [n, () => tf.zeros(saved[i].shape, 'float32')])),
    });
    done.zeroGrads.push(kernelName);
  }
  for (const backendName of backendNames) {
    if (tf.getKernel('Conv2DBackpropFilter', backendName) != null) continue;
    tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName, kernelFunc: conv2dBackpropFilterKernel(tf) });
    done.conv2dBackpropFilter.push(backendName);
  }
  return done;
}

/** A `Conv2DBackpropFilter` kernel built from ops (NHWC, dilation 1, any stride/padding). */
export function conv2dBackpropFilterKernel(tf) {
  return ({ inputs, attrs }) => {
    const asTensor = (t) => (t instanceof tf.Tensor ? t : tf.engine().makeTensorFromTensorInfo(t));
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
    if (dataFormat != null && dataFormat !== 'NHWC') throw new Error(`Conv2DBackpropFilter shim: ${dataFormat} unsupported`);
    return tf.tidy(() => conv2dBackpropFilterOps(tf, asTensor(inputs.x), asTensor(inputs.dy), filterShape, strides, pad, dimRoundingMode));
  };
}

/** dW[i, j, c, o] = Σ_{n, y, x} xpad[n, y·sh + i, x·sw + j, c] · dy[n, y, x, o], as one matMul
 *  of the (kh·kw·C) shifted views of x against dy. */
export function conv2dBackpropFilterOps(tf, x, dy, filterShape, strides, pad, dimRoundingMode) {
  const [kh, kw, cin, cout] = filterShape;
  const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const { top, bottom, left, right } = info.padInfo;
  const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow, batchSize: n } = info;
  const xp = top || bottom || left || right ? tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]) : x;
  const views = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      views.push(
        sh === 1 && sw === 1
          ? tf.slice(xp, [0, i, j, 0], [n, oh, ow, cin])
          : tf.stridedSlice(xp, [0, i, j, 0], [n, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, cin], [1, sh, sw, 1]),
      );
    }
  }
  const patches = tf.reshape(views.length === 1 ? views[0] : tf.concat(views, 3), [n * oh * ow, kh * kw * cin]);
  const g = tf.matMul(patches, tf.reshape(dy, [n * oh * ow, cout]), true, false);
  return tf.reshape(g, filterShape);
}

/** Keras glorot_uniform kernels and zero biases (seeded, so runs are comparable). */
export function initParams(tf, seed = 1) {
  const glorot = (shape, fanIn, fanOut, s) => {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return tf.variable(tf.randomUniform(shape, -limit, limit, 'float32', s));
  };
  return {
    conv1_w: glorot([2, 2, 1, 64], 2 * 2 * 1, 2 * 2 * 64, seed),
    conv1_b: tf.variable(tf.zeros([64])),
    conv2_w: glorot([2, 2, 64, 32], 2 * 2 * 64, 2 * 2 * 32, seed + 1),
    conv2_b: tf.variable(tf.zeros([32])),
    dense_w: glorot([7 * 7 * 32, 256], 7 * 7 * 32, 256, seed + 2),
    dense_b: tf.variable(tf.zeros([256])),
  };
}

/** Conv2D(64,2,same,relu) → MaxPool2 → Dropout.3 → Conv2D(32,2,same,relu) → MaxPool2 →
 *  Dropout.3 → Flatten → Dense(256) → l2_normalize. x: [B,28,28,1] in [0,1]. The convs and the
 *  dense layer use tf.fused.* exactly as tf.layers' Conv2D/Dense do (bias + relu fused). */
export function embed(tf, p, x, training) {
  const drop = (t) => (training ? tf.dropout(t, 0.3) : t);
  let h = tf.fused.conv2d({ x, filter: p.conv1_w, strides: 1, pad: 'same', bias: p.conv1_b, activation: 'relu' });
  h = drop(tf.maxPool(h, 2, 2, 'valid'));
  h = tf.fused.conv2d({ x: h, filter: p.conv2_w, strides: 1, pad: 'same', bias: p.conv2_b, activation: 'relu' });
  h = drop(tf.maxPool(h, 2, 2, 'valid'));
  h = tf.reshape(h, [h.shape[0], -1]);
  const e = tf.fused.matMul({ a: h, b: p.dense_w, bias: p.dense_b });
  return l2Normalize(tf, e);
}

/** tf.math.l2_normalize(x, axis=1): x · rsqrt(max(Σx², 1e-12)). */
export function l2Normalize(tf, x, epsilon = 1e-12) {
  return tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), 1, true), epsilon)));
}

/** TFA metric_learning.pairwise_distance(feature, squared=False), op by op. */
export function pairwiseDistance(tf, feature) {
  const pds0 = tf.sub(
    tf.add(tf.sum(tf.square(feature), 1, true), tf.sum(tf.square(tf.transpose(feature)), 0, true)),
    tf.mul(2.0, tf.matMul(feature, tf.transpose(feature))),
  );
  const pds = tf.maximum(pds0, 0.0);
  const errorMask = tf.lessEqual(pds, 0.0);
  let pd = tf.sqrt(tf.add(pds, tf.mul(tf.cast(errorMask, 'float32'), 1e-16)));
  pd = tf.mul(pd, tf.cast(tf.logicalNot(errorMask), 'float32'));
  const n = feature.shape[0];
  const offDiag = tf.sub(tf.onesLike(pd), tf.eye(n));
  return tf.mul(pd, offDiag);
}

/** TFA _masked_maximum(data, mask, dim=1). */
export function maskedMaximum(tf, data, mask) {
  const axisMin = tf.min(data, 1, true);
  return tf.add(tf.max(tf.mul(tf.sub(data, axisMin), mask), 1, true), axisMin);
}

/** TFA _masked_minimum(data, mask, dim=1). */
export function maskedMinimum(tf, data, mask) {
  const axisMax = tf.max(data, 1, true);
  return tf.add(tf.min(tf.mul(tf.sub(data, axisMax), mask), 1, true), axisMax);
}

/** TFA losses.triplet_semihard_loss(y_true, y_pred, margin, 'L2'), ported op by op (the
 *  B²×B tiling included). labels: int32 [B]; embeddings: float32 [B, D]. */
export function tripletSemiHardLoss(tf, labels, embeddings, margin = 1.0) {
  const b = labels.shape[0];
  const lab = tf.reshape(labels, [b, 1]);
  const pdist = pairwiseDistance(tf, embeddings);
  const adjacency = tf.equal(lab, tf.transpose(lab));
  const adjacencyNot = tf.logicalNot(adjacency);

  const pdistTile = tf.tile(pdist, [b, 1]);
  const mask = tf.logicalAnd(
    tf.tile(adjacencyNot, [b, 1]),
    tf.greater(pdistTile, tf.reshape(tf.transpose(pdist), [-1, 1])),
  );
  const maskFinal = tf.transpose(
    tf.reshape(tf.greater(tf.sum(tf.cast(mask, 'float32'), 1, true), 0.0), [b, b]),
  );
  const adjacencyNotF = tf.cast(adjacencyNot, 'float32');
  const maskF = tf.cast(mask, 'float32');

  // negatives_outside: smallest D_an where D_an > D_ap.
  const negativesOutside = tf.transpose(tf.reshape(maskedMinimum(tf, pdistTile, maskF), [b, b]));
  // negatives_inside: largest D_an.
  const negativesInside = tf.tile(maskedMaximum(tf, pdist, adjacencyNotF), [1, b]);
  const semiHardNegatives = tf.where(maskFinal, negativesOutside, negativesInside);

  const lossMat = tf.add(margin, tf.sub(pdist, semiHardNegatives));
  const maskPositives = tf.sub(tf.cast(adjacency, 'float32'), tf.eye(b));
  const numPositives = tf.sum(maskPositives);
  return tf.div(tf.sum(tf.maximum(tf.mul(lossMat, maskPositives), 0.0)), numPositives);
}

/** The training step: Adam(1e-3, .9, .999, 1e-7) on the triplet loss of one batch. Returns a
 *  function (x [B,28,28,1] float32, y [B] int32) → scalar loss tensor (caller disposes). */
export function makeTrainer(tf, { seed = 1, margin = 1.0 } = {}) {
  const params = initParams(tf, seed);
  const varList = Object.values(params);
  const optimizer = tf.train.adam(1e-3, 0.9, 0.999, 1e-7);
  const step = (x, y) => optimizer.minimize(() => tripletSemiHardLoss(tf, y, embed(tf, params, x, true), margin), true, varList);
  return { params, optimizer, step };
}

/** Plain-JS (float64) brute force of the same loss, for check-loss.mjs. emb: number[][]. */
export function bruteForceTripletSemiHard(labels, emb, margin = 1.0) {
  const b = labels.length;
  const d = Array.from({ length: b }, (_, i) =>
    Array.from({ length: b }, (_, j) => {
      if (i === j) return 0;
      let s = 0;
      for (let k = 0; k < emb[i].length; k++) s += (emb[i][k] - emb[j][k]) ** 2;
      return Math.sqrt(s);
    }),
  );
  let sum = 0;
  let positives = 0;
  for (let a = 0; a < b; a++) {
    for (let p = 0; p < b; p++) {
      if (p === a || labels[p] !== labels[a]) continue;
      positives++;
      let semi = Infinity;
      let far = -Infinity;
      for (let n = 0; n < b; n++) {
        if (labels[n] === labels[a]) continue;
        far = Math.max(far, d[a][n]);
        if (d[a][n] > d[a][p]) semi = Math.min(semi, d[a][n]);
      }
      // No negative at all: TFA's masked_maximum falls back to the row minimum (0, the diagonal).
      const neg = semi !== Infinity ? semi : far !== -Infinity ? far : Math.min(...d[a]);
      sum += Math.max(margin + d[a][p] - neg, 0);
    }
  }
  return sum / positives;
}
