// Checks the tfjs peer (peer.mjs) on tfjs' pure-JS CPU backend in node:
//  1. the TFA triplet_semihard_loss port against a float64 brute force, on hand cases (ties,
//     duplicate points, anchors with no farther negative, a batch with no negatives at all)
//     and on a random 32×256 batch of unit rows;
//  2. its gradient against central finite differences of the brute force;
//  3. the Conv2DBackpropFilter shim (used on tfjs-wasm) against tfjs-cpu's own kernel, alone
//     and inside the whole net's gradient.
//   node check-loss.mjs      (exit status 1 on any mismatch)
import * as tf from '@tensorflow/tfjs';
import {
  bruteForceTripletSemiHard,
  conv2dBackpropFilterOps,
  embed,
  initParams,
  makeTrainer,
  registerShims,
  tripletSemiHardLoss,
} from './peer.mjs';

await tf.setBackend('cpu');
registerShims(tf, []); // zero gradients for Greater/LessEqual/LogicalAnd/... only; cpu has the conv kernel

let failures = 0;
const close = (got, want, tol) => Math.abs(got - want) <= tol * (1 + Math.abs(want));
function check(name, ok, detail) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
  if (!ok) failures++;
}

// Small deterministic PRNG (mulberry32) for the random cases.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const randn = (r) => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());

function tfLoss(labels, emb, margin = 1.0) {
  return tf.tidy(() => tripletSemiHardLoss(tf, tf.tensor1d(labels, 'int32'), tf.tensor2d(emb), margin).dataSync()[0]);
}

// ---- 1. loss values ----
const cases = [
  {
    // two anchors with a farther (semi-hard) negative, two with none (→ farthest negative)
    name: 'hand: 4 points, 2 classes',
    labels: [0, 0, 1, 1],
    emb: [[0, 0], [1, 0], [0, 2], [3, 0]],
    want: (1 + Math.sqrt(13) - Math.sqrt(5) + (1 + Math.sqrt(13) - 3)) / 4,
  },
  {
    // a duplicate pair (distance 0: TFA's error_mask path), an exact tie d(a,n) == d(a,p)
    // (strict '>' excludes it) and a singleton class
    name: 'hand: duplicates, tie, singleton class',
    labels: [0, 0, 1, 1, 2],
    emb: [[0, 0], [0, 0], [1, 0], [0, 1], [2, 1]],
  },
  {
    // no negatives at all: TFA falls back to the row minimum (0), loss = margin + mean d(a,p)
    name: 'hand: one class only',
    labels: [3, 3, 3],
    emb: [[0, 0], [3, 4], [6, 8]],
    want: 1 + (5 + 10 + 5 + 5 + 10 + 5) / 6,
  },
  {
    name: 'hand: margin 0.2',
    labels: [1, 0, 1, 0, 1],
    emb: [[0.1, 0.2], [0.3, -0.1], [0.0, 0.25], [0.5, 0.5], [-0.2, 0.1]],
    margin: 0.2,
  },
];
{
  const r = rng(7);
  const b = 32;
  const d = 256;
  const emb = [];
  for (let i = 0; i < b; i++) {
    const row = Array.from({ length: d }, () => randn(r));
    const norm = Math.hypot(...row);
    emb.push(row.map((v) => v / norm));
  }
  cases.push({ name: 'random: 32 unit rows of 256, 10 classes', labels: Array.from({ length: b }, () => Math.floor(r() * 10)), emb });
}
for (const c of cases) {
  const margin = c.margin ?? 1.0;
  const brute = bruteForceTripletSemiHard(c.labels, c.emb, margin);
  const got = tfLoss(c.labels, c.emb, margin);
  const wantOk = c.want === undefined || close(brute, c.want, 1e-12);
  check(`loss ${c.name}`, wantOk && close(got, brute, 1e-5), `tfjs ${got.toFixed(7)}, brute force ${brute.toFixed(7)}${c.want !== undefined ? `, by hand ${c.want.toFixed(7)}` : ''}`);
}

// ---- 2. gradient vs finite differences ----
{
  const r = rng(11);
  const b = 8;
  const d = 4;
  const labels = Array.from({ length: b }, (_, i) => i % 3);
  const emb = Array.from({ length: b }, () => Array.from({ length: d }, () => randn(r)));
  const grad = tf.tidy(() => tf.grad((e) => tripletSemiHardLoss(tf, tf.tensor1d(labels, 'int32'), e, 1.0))(tf.tensor2d(emb)).arraySync());
  const h = 1e-5;
  let worst = 0;
  for (let i = 0; i < b; i++) {
    for (let k = 0; k < d; k++) {
      const plus = emb.map((row) => row.slice());
      const minus = emb.map((row) => row.slice());
      plus[i][k] += h;
      minus[i][k] -= h;
      const num = (bruteForceTripletSemiHard(labels, plus) - bruteForceTripletSemiHard(labels, minus)) / (2 * h);
      worst = Math.max(worst, Math.abs(num - grad[i][k]));
    }
  }
  check('loss gradient vs finite differences (8×4, 3 classes)', worst < 1e-4, `max |diff| ${worst.toExponential(2)}`);
}

// ---- 3. Conv2DBackpropFilter shim ----
const maxDiff = (a, b) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
for (const [xShape, fShape, stride, pad] of [
  [[3, 6, 6, 2], [2, 2, 2, 5], 1, 'same'],
  [[2, 7, 5, 3], [3, 3, 3, 4], 1, 'same'],
  [[2, 7, 7, 3], [3, 2, 3, 2], 2, 'valid'],
  [[2, 8, 8, 1], [2, 2, 1, 3], 2, 'same'],
]) {
  const r = rng(xShape[1] * 100 + fShape[0]);
  const x = tf.tensor4d(Array.from({ length: xShape.reduce((p, q) => p * q) }, () => randn(r)), xShape);
  const w = tf.tensor4d(Array.from({ length: fShape.reduce((p, q) => p * q) }, () => randn(r)), fShape);
  const dy = tf.tidy(() => tf.randomNormal(tf.conv2d(x, w, stride, pad).shape, 0, 1, 'float32', 3));
  const want = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: [stride, stride], pad, dataFormat: 'NHWC', filterShape: fShape });
  const got = tf.tidy(() => conv2dBackpropFilterOps(tf, x, dy, fShape, stride, pad));
  const diff = maxDiff(got, want);
  check(`Conv2DBackpropFilter shim x${JSON.stringify(xShape)} w${JSON.stringify(fShape)} s${stride} ${pad}`, diff < 1e-4, `max |diff| ${diff.toExponential(2)}`);
  tf.dispose([x, w, dy, want, got]);
}

// The whole net's gradient (no dropout), with tfjs-cpu's kernel and then with the shim in its place.
{
  const r = rng(5);
  const x = tf.tensor4d(Array.from({ length: 8 * 28 * 28 }, () => r()), [8, 28, 28, 1]);
  const y = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32');
  const params = initParams(tf, 3);
  const grads = () =>
    tf.variableGrads(() => tripletSemiHardLoss(tf, y, embed(tf, params, x, false)), Object.values(params));
  const a = grads();
  const original = tf.getKernel('Conv2DBackpropFilter', 'cpu');
  tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
  const shim = registerShims(tf, ['cpu']);
  const b = grads();
  let worst = 0;
  for (const k of Object.keys(a.grads)) worst = Math.max(worst, maxDiff(a.grads[k], b.grads[k]) / (1e-6 + tf.max(tf.abs(a.grads[k])).dataSync()[0]));
  check(`net gradient with the shim (${shim.conv2dBackpropFilter.join(',')}) vs tfjs-cpu kernel`, worst < 1e-4, `max relative diff ${worst.toExponential(2)}, loss ${a.value.dataSync()[0].toFixed(5)}`);
  tf.dispose([a.value, b.value, ...Object.values(a.grads), ...Object.values(b.grads)]);

  // two training steps (dropout on) with the shim: finite, and the tensor count stays flat
  const trainer = makeTrainer(tf, { seed: 3 });
  const losses = [];
  let before = 0;
  for (let i = 0; i < 3; i++) {
    if (i === 1) before = tf.memory().numTensors;
    const loss = trainer.step(x, y);
    losses.push(loss.dataSync()[0]);
    loss.dispose();
  }
  const leak = tf.memory().numTensors - before;
  check('training steps (shim, dropout, Adam)', losses.every(Number.isFinite) && leak === 0, `losses ${losses.map((v) => v.toFixed(4)).join(', ')}; tensors leaked per 2 steps: ${leak}`);
  tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
  tf.registerKernel(original);
}

if (failures) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all checks passed');
