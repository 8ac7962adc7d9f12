// TensorFlow.js peer benchmark (run by scripts/bench-web.sh after tests/browser/bench.mjs): the
// same net, TFA semi-hard triplet loss and Adam as tripletlab's training step, written with
// tfjs 4.22 (peer.mjs), timed in the same headless Chromium with the same flags
// (tests/browser/harness.mjs) on tfjs-webgpu and tfjs-wasm (and tfjs-cpu if asked).
//   node bench/web/bench-tfjs.mjs [images=512] [--backends=webgpu,wasm] [--warmup=3]
//        [--steps-webgpu=8] [--steps-wasm=30] [--steps-cpu=5] [--batch=32] [--wasm-threads=N]
//        [--timeout-s=600]
// Prints one JSON line per backend, then a table; writes bench/out/bench-web-tfjs.json.
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { startBrowser } from '../../tests/browser/harness.mjs';
import { staticHandler } from '../../tests/browser/serve.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');

const opts = { images: 512, backends: 'webgpu,wasm', warmup: 3, batch: 32, 'timeout-s': 600 };
for (const a of process.argv.slice(2)) {
  const m = a.match(/^--([\w-]+)=(.*)$/);
  if (m) opts[m[1]] = m[2];
  else if (/^\d+$/.test(a)) opts.images = Number(a);
  else throw new Error(`unknown argument ${a}`);
}
const defaultSteps = { webgpu: 8, wasm: 30, cpu: 5 };
const backends = String(opts.backends).split(',').filter(Boolean);
const images = Number(opts.images);

// ---- data: the first `images` MNIST training images and labels, decompressed ----
const mnist = join(repo, 'www', 'data', 'mnist');
function idx(file, headerBytes, bytesPerItem) {
  const raw = gunzipSync(readFileSync(join(mnist, file)));
  const count = raw.readUInt32BE(4);
  if (images > count) throw new Error(`${file} has ${count} items, asked for ${images}`);
  return raw.subarray(headerBytes, headerBytes + images * bytesPerItem);
}
const data = {
  images: idx('train-images-idx3-ubyte.gz', 16, 784),
  labels: idx('train-labels-idx1-ubyte.gz', 8, 1),
};

// ---- static server for this folder (page + node_modules), with cross-origin isolation so
// tfjs-wasm gets its threaded SIMD build; the MNIST slice is served from memory ----
const isolation = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};
const server = createServer(staticHandler(here, {
  headers: isolation,
  routes: { '/__data/images': data.images, '/__data/labels': data.labels },
}));

const results = [];
let chrome = null;
try {
  await new Promise((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', ok));
  const base = `http://127.0.0.1:${server.address().port}`;
  chrome = await startBrowser();
  for (const backend of backends) {
    const steps = Number(opts[`steps-${backend}`] ?? defaultSteps[backend] ?? 8);
    const q = new URLSearchParams({ backend, steps, warmup: opts.warmup, images, batch: opts.batch });
    if (backend === 'wasm' && opts['wasm-threads']) q.set('threads', opts['wasm-threads']);
    const page = await chrome.browser.newPage();
    const errors = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
      else if (m.text().startsWith('[tfjs-peer')) process.stderr.write(m.text() + '\n');
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    const load = loadavg()[0];
    try {
      await page.goto(`${base}/tfjs-peer.html?${q}`);
      await page.waitForFunction(() => window.__tfjsPeer?.done === true, null, { timeout: Number(opts['timeout-s']) * 1000, polling: 500 });
      const out = await page.evaluate(() => window.__tfjsPeer);
      results.push(out.error ? { peer: 'tfjs', backend, error: out.error, consoleErrors: errors } : { ...out.result, loadavg_1m_before: load, consoleErrors: errors });
    } catch (e) {
      results.push({ peer: 'tfjs', backend, error: String(e.message ?? e).split('\n')[0], consoleErrors: errors });
    } finally {
      await page.close().catch(() => {});
    }
  }
} finally {
  if (chrome) await chrome.stop();
  await new Promise((ok) => server.close(ok));
}

for (const r of results) console.log(JSON.stringify(r));
const fmt = (v, d) => (typeof v === 'number' ? v.toFixed(d) : '-');
console.log('\nTensorFlow.js 4.22 peer (batch %d, %d MNIST images; every step ends with await loss.data())', Number(opts.batch), images);
console.log(['backend'.padEnd(8), 'ms/step'.padStart(9), 'mean'.padStart(9), 'ex/s'.padStart(8), 'steps'.padStart(6), 'loss first→last'.padStart(18), '  notes'].join(' '));
for (const r of results) {
  const notes = r.error
    ? `ERROR ${r.error}`
    : r.wasm
      ? `simd=${r.wasm.simd} threads=${r.wasm.multithread ? r.wasm.threads : 1} (multithread=${r.wasm.multithread}); Conv2DBackpropFilter ${r.conv2dBackpropFilter.startsWith('shim') ? 'shim' : 'native'}`
      : r.adapter
        ? `adapter ${[r.adapter.vendor, r.adapter.architecture, r.adapter.description].filter(Boolean).join(' / ')}`
        : '';
  console.log(
    [
      String(r.backend).padEnd(8),
      fmt(r.ms_per_step, 1).padStart(9),
      fmt(r.ms_mean, 1).padStart(9),
      fmt(r.examples_per_s, 1).padStart(8),
      String(r.steps ?? '-').padStart(6),
      (r.losses ? `${fmt(r.loss_first, 4)}→${fmt(r.loss_last, 4)}` : '-').padStart(18),
      ' ' + notes,
    ].join(' '),
  );
}
const outDir = join(repo, 'bench', 'out');
mkdirSync(outDir, { recursive: true });
writeFileSync(
  join(outDir, 'bench-web-tfjs.json'),
  JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, cpu_model: cpus()[0]?.model, images, batch: Number(opts.batch), results }, null, 2) + '\n',
);
console.log(`wrote ${join('bench', 'out', 'bench-web-tfjs.json')}`);
if (results.some((r) => r.error)) process.exitCode = 1;
