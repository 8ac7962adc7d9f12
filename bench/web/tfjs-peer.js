// The bench page: times the tfjs peer's training step (peer.mjs) on one tfjs backend and leaves
// the result in window.__tfjsPeer = { done: true, result } (or { done: true, error }).
import { makeTrainer, registerShims } from './peer.mjs';

const tf = window.tf;
const q = new URLSearchParams(location.search);
const backend = q.get('backend') ?? 'webgpu';
const steps = Number(q.get('steps') ?? (backend === 'webgpu' ? 8 : 30));
const warmup = Number(q.get('warmup') ?? 3);
const images = Number(q.get('images') ?? 512);
const batch = Number(q.get('batch') ?? 32);
const threads = q.get('threads');

const logEl = document.getElementById('log');
function log(msg) {
  console.log(`[tfjs-peer ${backend}] ${msg}`);
  logEl.textContent += msg + '\n';
}

async function fetchBytes(path) {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function webgpuAdapter() {
  if (!navigator.gpu) return null;
  const a = await navigator.gpu.requestAdapter();
  if (!a) return null;
  const i = a.info ?? (a.requestAdapterInfo ? await a.requestAdapterInfo() : {});
  return { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function run() {
  const info = {
    peer: 'tfjs',
    backend,
    version: tf.version.tfjs,
    batch,
    images,
    warmup,
    steps,
    readback: 'one per step: await loss.data() ends every step',
    userAgent: navigator.userAgent,
    crossOriginIsolated: self.crossOriginIsolated,
    hardwareConcurrency: navigator.hardwareConcurrency,
  };
  if (backend === 'wasm') {
    tf.wasm.setWasmPaths('/node_modules/@tensorflow/tfjs-backend-wasm/dist/');
    if (threads != null) tf.wasm.setThreadsCount(Number(threads));
  }
  // Conv2DBackpropFilter shim only where the backend lacks the kernel (tfjs-wasm 4.22).
  info.shims = registerShims(tf, [backend]);
  if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') failed`);
  await tf.ready();
  info.activeBackend = tf.getBackend();
  info.conv2dBackpropFilter = info.shims.conv2dBackpropFilter.includes(backend)
    ? 'shim: pad → shifted slices → concat → matMul (peer.mjs)'
    : `native ${backend} kernel`;
  if (backend === 'wasm') {
    info.wasm = {
      simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
      multithread: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
      threads: tf.wasm.getThreadsCount(),
      threadsRequested: threads == null ? 'default' : Number(threads),
      // tfjs-wasm 4.22 caps XNNPACK's pool at hardwareConcurrency / 2 (its backend.cc), so a
      // 2-vCPU machine runs single-threaded whatever setThreadsCount asks for.
      threadsCap: Math.max(1, Math.floor(navigator.hardwareConcurrency / 2)),
    };
  }
  if (backend === 'webgpu') info.adapter = await webgpuAdapter();
  log(`backend ${info.activeBackend} ready${info.wasm ? ` ${JSON.stringify(info.wasm)}` : ''}${info.adapter ? ` ${JSON.stringify(info.adapter)}` : ''}`);

  // Data: the first `images` MNIST training images (raw IDX bytes, served decompressed).
  const px = await fetchBytes(`/__data/images?n=${images}`);
  const lab = await fetchBytes(`/__data/labels?n=${images}`);
  const pixels = Float32Array.from(px, (v) => v / 255);
  const labels = Int32Array.from(lab);
  const nBatches = Math.floor(images / batch);
  if (nBatches < 1) throw new Error(`need at least one batch of ${batch} images`);

  const trainer = makeTrainer(tf, { seed: 1 });
  const losses = [];
  const times = [];
  let tensorsAfterWarmup = 0;
  for (let i = 0; i < warmup + steps; i++) {
    if (i === warmup) tensorsAfterWarmup = tf.memory().numTensors;
    const k = (i % nBatches) * batch;
    const t0 = performance.now();
    // One training step: upload the batch, forward + TFA loss + backward + Adam, read the loss.
    const x = tf.tensor4d(pixels.subarray(k * 784, (k + batch) * 784), [batch, 28, 28, 1]);
    const y = tf.tensor1d(labels.subarray(k, k + batch), 'int32');
    const loss = trainer.step(x, y);
    const value = (await loss.data())[0];
    const ms = performance.now() - t0;
    tf.dispose([x, y, loss]);
    losses.push(value);
    times.push(ms);
    log(`step ${i + 1}/${warmup + steps}${i < warmup ? ' (warm-up)' : ''}: ${ms.toFixed(1)} ms, loss ${value.toFixed(5)}`);
  }
  const timed = times.slice(warmup);
  const med = median(timed);
  return {
    ...info,
    ms_per_step: med,
    ms_mean: timed.reduce((a, b) => a + b, 0) / timed.length,
    ms_min: Math.min(...timed),
    ms_max: Math.max(...timed),
    examples_per_s: (batch * 1000) / med,
    warmup_ms: times.slice(0, warmup),
    step_ms: timed,
    losses,
    loss_first: losses[0],
    loss_last: losses[losses.length - 1],
    losses_finite: losses.every(Number.isFinite),
    tensors_leaked: tf.memory().numTensors - tensorsAfterWarmup,
  };
}

window.__tfjsPeer = { done: false };
run().then(
  (result) => {
    log('done');
    window.__tfjsPeer = { done: true, result };
  },
  (e) => {
    log(`error: ${e?.stack ?? e?.message ?? e}`);
    window.__tfjsPeer = { done: true, error: String(e?.message ?? e) };
  },
);
