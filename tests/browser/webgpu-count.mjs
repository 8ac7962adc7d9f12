// Counts the WebGPU calls of the page's worker (bench.mjs, part `counts`): per training step and
// per 100 embedded images, on the WebGPU path, by differencing three runs of one epoch (batch 32)
// of one built dist. Counts do not depend on the device's speed or the build profile; the one
// figure that does is how often losses are read back (see `NOTES`), so the runs report it.
import { patchWorker, waitState } from './harness.mjs';

/** Prepended to the worker's loader script: wraps the WebGPU methods in the worker's global
 *  scope, counting each call in `self.__gpuCalls` (plus bytes written by writeBuffer and
 *  mapped by mapAsync, and command buffers submitted). */
export const COUNT_GPU_CALLS = `(() => {
  const calls = (self.__gpuCalls = {});
  const wrap = (cls, names, extra) => {
    const proto = self[cls]?.prototype;
    if (!proto) return;
    for (const name of names) {
      const f = proto[name];
      if (typeof f !== 'function') continue;
      const key = name;
      calls[key] = 0;
      proto[name] = function (...args) {
        calls[key] += 1;
        extra?.(name, this, args);
        return f.apply(this, args);
      };
    }
  };
  const add = (key, n) => { calls[key] = (calls[key] ?? 0) + n; };
  wrap('GPUComputePassEncoder', ['dispatchWorkgroups', 'dispatchWorkgroupsIndirect', 'setPipeline', 'setBindGroup']);
  wrap('GPUCommandEncoder', ['beginComputePass', 'copyBufferToBuffer', 'clearBuffer', 'finish']);
  wrap('GPUDevice', ['createBindGroup', 'createBuffer', 'createCommandEncoder', 'createComputePipeline', 'createComputePipelineAsync', 'createShaderModule']);
  wrap('GPUQueue', ['submit', 'writeBuffer'], (name, _, args) => {
    if (name === 'submit') add('commandBuffers', args[0]?.length ?? 0);
    else {
      // writeBuffer(buffer, offset, data, dataOffset, size): dataOffset and size count elements
      // of a typed array, bytes of an ArrayBuffer.
      const [, , data, from = 0, size] = args;
      const unit = data?.BYTES_PER_ELEMENT ?? 1;
      add('writeBufferBytes', size !== undefined ? size * unit : (data?.byteLength ?? 0) - from * unit);
    }
  });
  wrap('GPUBuffer', ['mapAsync'], (_, buffer, args) => add('mapAsyncBytes', args[2] ?? buffer.size - (args[1] ?? 0)));
})();`;

/** The rows of the table, in order: [key in __gpuCalls, label]. */
export const ROWS = [
  ['dispatchWorkgroups', 'dispatches (dispatchWorkgroups)'],
  ['setPipeline', 'setPipeline'],
  ['setBindGroup', 'setBindGroup'],
  ['createBindGroup', 'createBindGroup'],
  ['beginComputePass', 'compute passes'],
  ['createCommandEncoder', 'createCommandEncoder'],
  ['submit', 'queue.submit'],
  ['commandBuffers', '  command buffers submitted'],
  ['writeBuffer', 'queue.writeBuffer'],
  ['writeBufferBytes', '  bytes written'],
  ['createBuffer', 'createBuffer'],
  ['copyBufferToBuffer', 'copyBufferToBuffer'],
  ['mapAsync', 'read-backs (mapAsync)'],
  ['mapAsyncBytes', '  bytes mapped'],
  ['createComputePipeline', 'createComputePipeline'],
  ['createComputePipelineAsync', 'createComputePipelineAsync'],
  ['createShaderModule', 'createShaderModule'],
  ['dispatchWorkgroupsIndirect', 'dispatchWorkgroupsIndirect'],
  ['clearBuffer', 'clearBuffer'],
];

// The three runs. Embedding goes in pieces of 128 images (gpu::EMBED_PIECE = driver::SLICE_ROWS),
// so every size is a multiple of 128 and each figure is a difference of whole pieces.
//  A: train 512, test 128    B: train 1024, test 128    C: train 512, test 640
// B − A: 16 more steps (1024/32 − 512/32, no partial batch) and 512 more training images
// embedded by the final kNN evaluation (knn_against_train, always on in the page); C − A: 512
// more test images embedded by the epoch-end evaluation, nothing else. So
//   per 100 embedded images = (C − A) · 100 / 512, per step = ((B − A) − (C − A)) / 16.
// Run A starts at 512 (16 steps) because the memory pool still grows over the first steps
// (createBuffer, and a writeBuffer with each new buffer): 1.75 a step over steps 9–16, 0.6
// over 17–24, 0.25 over 25–32 (HEAD f11ced8, SwiftShader).
const BATCH = 32;
const RUNS = { A: [512, 128], B: [1024, 128], C: [512, 640] };
export const NOTES = [
  'epochs=1 batch=32 backend=webgpu, default engine (auto: fused WGSL at batch 32), embed_every=0 (test set embedded at the epoch end only)',
  'runs A train 512/test 128, B 1024/128, C 512/640: per step = ((B-A) - (C-A)) / 16 steps (steps 17-32), per 100 images = (C-A) * 100/512 (4 pieces of 128)',
  'per step includes its loss read-backs: the page reads losses every step while a step takes > 50 ms (as on SwiftShader), up to every 8th (read_every) on a faster device; "loss reads/step" says which',
  'a fraction per step is work that is not the same every step (e.g. the memory pool growing: createBuffer)',
];

/** One run in a fresh page (a fresh worker): the worker's counters from "ready" to "done"
 *  (exported for ad hoc checks, e.g. more train sizes to see what grows with the run). */
export async function countRun(browser, url, [trainLimit, testLimit]) {
  const page = await browser.newPage();
  try {
    await patchWorker(page, COUNT_GPU_CALLS);
    await page.goto(`${url}?train_limit=${trainLimit}&test_limit=${testLimit}&epochs=1&batch=${BATCH}&backend=webgpu`);
    const state = await waitState(page, ['ready', 'error'], 300_000);
    const adapter = await page.textContent('[data-testid=adapter]');
    if (state !== 'ready' || /CPU/.test(adapter)) throw new Error(`no WebGPU run: ${adapter} ${await page.textContent('.banners')}`);
    const worker = page.workers().find((w) => w.url().includes('tripletlab-worker'));
    if (!worker) throw new Error(`the page's worker is missing (${page.workers().map((w) => w.url())})`);
    const read = () => worker.evaluate(() => ({ ...self.__gpuCalls }));
    const before = await read();
    if (!before || !('dispatchWorkgroups' in before)) throw new Error('the counting script did not run in the worker');
    await page.getByRole('button', { name: 'Train', exact: true }).click();
    const end = await waitState(page, ['done', 'error'], 1_800_000);
    if (end !== 'done') throw new Error(`run ${trainLimit}/${testLimit} ended in ${end}: ${await page.textContent('.banners')}`);
    const after = await read();
    // Nothing more on the device once the run is done (the raw-pixel baseline is CPU work).
    await page.waitForTimeout(1000);
    const later = await read();
    const settled = ROWS.every(([k]) => (later[k] ?? 0) === (after[k] ?? 0));
    const stats = await page.evaluate(() => window.__tripletlabStats ?? null);
    const calls = Object.fromEntries(ROWS.map(([k]) => [k, (after[k] ?? 0) - (before[k] ?? 0)]));
    return {
      trainLimit,
      testLimit,
      adapter,
      steps: stats?.steps,
      skippedBatches: stats?.skippedBatches,
      lossReads: stats?.marks?.length,
      steadyMsPerStep: stats?.steadyMsPerStep,
      calls,
      settled,
    };
  } finally {
    await page.close();
  }
}

/** The three runs against the dist served at `url`: per-step and per-100-image counts, and the
 *  steady ms/step of run B (the page's own figure, between its first and last loss read). */
export async function measureCounts(browser, url) {
  const runs = {};
  for (const [name, sizes] of Object.entries(RUNS)) runs[name] = await countRun(browser, url, sizes);
  const { A, B, C } = runs;
  const stepsAB = B.steps - A.steps;
  const problems = [];
  for (const r of [A, B, C]) {
    if (r.steps !== Math.ceil(r.trainLimit / BATCH)) problems.push(`train ${r.trainLimit}: ${r.steps} steps (${r.skippedBatches} skipped)`);
    if (!r.settled) problems.push(`train ${r.trainLimit}/test ${r.testLimit}: calls went on after "done"`);
  }
  if (C.steps !== A.steps) problems.push('runs A and C took different steps');
  const images = C.testLimit - A.testLimit;
  if (B.trainLimit - A.trainLimit !== images) problems.push('runs B and C do not embed the same number of extra images');
  const perStep = {};
  const per100Images = {};
  for (const [k] of ROWS) {
    const embed = C.calls[k] - A.calls[k];
    per100Images[k] = round((embed * 100) / images);
    perStep[k] = round((B.calls[k] - A.calls[k] - embed) / stepsAB);
  }
  return {
    adapter: B.adapter,
    msPerStep: round(B.steadyMsPerStep, 1),
    lossReadsPerStep: round((B.lossReads - A.lossReads) / stepsAB),
    perStep,
    per100Images,
    runs: Object.fromEntries(Object.entries(runs).map(([n, r]) => [n, { ...r, adapter: undefined }])),
    problems,
  };
}

function round(x, digits = 2) {
  return x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** digits) / 10 ** digits;
}

/** The table: one column per dist (`columns`: [[name, measureCounts result], …]) for each of
 *  per step and per 100 embedded images; ms/step and loss reads/step on top. */
export function countsTable(columns) {
  const w0 = 34;
  const groups = ['per training step', 'per 100 embedded images'];
  const w = Math.max(12, ...columns.map(([n]) => n.length + 2), ...groups.map((g) => Math.ceil((g.length + 2) / columns.length)));
  const cell = (v) => String(v ?? '–').padStart(w);
  const line = (label, values) => label.padEnd(w0) + values.map(cell).join('');
  const names = columns.map(([n]) => n);
  const out = [];
  out.push(`WebGPU calls of the page's worker (${columns[0][1].adapter})`);
  for (const n of NOTES) out.push(`  ${n}`);
  out.push(''.padEnd(w0) + groups.map((g) => g.padStart(w * columns.length)).join(''));
  out.push(line('', [...names, ...names]));
  out.push(line('ms/step (steady, run B)', [...columns.map(([, c]) => c.msPerStep), ...columns.map(() => '')]));
  out.push(line('loss reads/step', [...columns.map(([, c]) => c.lossReadsPerStep), ...columns.map(() => '')]));
  for (const [k, label] of ROWS) {
    out.push(line(label, [...columns.map(([, c]) => c.perStep[k]), ...columns.map(([, c]) => c.per100Images[k])]));
  }
  for (const [n, c] of columns) for (const p of c.problems) out.push(`  ${n}: ${p}`);
  return out.join('\n');
}
