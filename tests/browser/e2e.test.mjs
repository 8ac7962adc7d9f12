// End-to-end test of the built page (dist/) in headless Chromium on WebGPU (SwiftShader):
// a tiny training run, the progress bar, the projection, the downloads, and a corrupt IDX file.
// Run: node --test tests/browser/e2e.test.mjs   (after `trunk build`)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { clickStop, repo, startBrowser, startServer, waitState, watchErrors } from './harness.mjs';

const READY_MS = 180_000;
const TRAIN_MS = 900_000;
const N_TEST = 200;
// Actions wait for the page's main thread, which a training step (or a busy machine) can hold
// for a while; the page yields between steps, so this is a generous upper bound, not a delay.
const ACTION_MS = 180_000;

async function openPage() {
  const page = await chrome.browser.newPage();
  page.setDefaultTimeout(ACTION_MS);
  return page;
}

let server;
let chrome;

before(async () => {
  server = await startServer();
  chrome = await startBrowser();
});

after(async () => {
  await chrome?.stop();
  await server?.stop();
});

function testLabels(n) {
  const raw = gunzipSync(readFileSync(join(repo, 'www/data/mnist/t10k-labels-idx1-ubyte.gz')));
  assert.equal(raw.readUInt32BE(0), 0x801);
  return Array.from(raw.subarray(8, 8 + n));
}

async function download(page, name) {
  const [dl] = await Promise.all([
    page.waitForEvent('download', { timeout: 60_000 }),
    page.getByRole('button', { name, exact: true }).click(),
  ]);
  const path = await dl.path();
  return { file: dl.suggestedFilename(), text: readFileSync(path, 'utf8') };
}

test('a tiny run trains on WebGPU, projects and exports', { timeout: READY_MS + TRAIN_MS + 120_000 }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  // backend=webgpu: here the only adapter is SwiftShader, which the page would otherwise skip.
  await page.goto(`${server.url}?train_limit=256&test_limit=${N_TEST}&epochs=1&backend=webgpu`);
  const t0 = Date.now();
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready', await page.textContent('.banners'));
  console.log(`# ready after ${Date.now() - t0} ms; ${await page.textContent('[data-testid=adapter]')}`);
  assert.match(await page.textContent('[data-testid=adapter]'), /WebGPU/);
  // The URL's settings are in the form.
  assert.equal(await page.inputValue('#f-train_limit'), '256');
  assert.equal(await page.inputValue('#f-epochs'), '1');

  const t1 = Date.now();
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  const end = await waitState(page, ['done', 'error'], TRAIN_MS);
  assert.equal(end, 'done', await page.textContent('.banners'));
  console.log(`# trained in ${Date.now() - t1} ms: ${await page.textContent('.progress .numbers')}`);

  const bar = page.locator('.progress').getByRole('progressbar');
  assert.equal(await bar.getAttribute('aria-valuenow'), '100');
  assert.equal(await bar.getAttribute('aria-valuemax'), '100');

  // The projection canvas has been drawn on (coloured points on white).
  const canvas = page.locator('canvas[aria-label*="projection"]');
  assert.equal(await canvas.count(), 1);
  const coloured = await canvas.evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const grey = d[i] === d[i + 1] && d[i + 1] === d[i + 2];
      if (!grey) n++;
    }
    return n;
  });
  assert.ok(coloured > 200, `projection looks blank (${coloured} coloured pixels)`);

  // vecs.tsv: 200 rows × 256 finite values, unit-norm rows.
  const vecs = await download(page, 'Download vecs.tsv');
  assert.equal(vecs.file, 'vecs.tsv');
  const rows = vecs.text.split('\n').filter((l) => l.length > 0);
  assert.equal(rows.length, N_TEST);
  for (const [i, row] of rows.entries()) {
    const vals = row.split('\t').map(Number);
    assert.equal(vals.length, 256, `row ${i} has ${vals.length} columns`);
    assert.ok(vals.every(Number.isFinite), `row ${i} has a non-finite value`);
    const norm = Math.sqrt(vals.reduce((s, v) => s + v * v, 0));
    assert.ok(Math.abs(norm - 1) < 1e-3, `row ${i} has norm ${norm}`);
  }
  // meta.tsv: the dataset's first 200 test labels, in order.
  const meta = await download(page, 'Download meta.tsv');
  assert.equal(meta.file, 'meta.tsv');
  const labels = meta.text.split('\n').filter((l) => l.length > 0).map(Number);
  assert.deepEqual(labels, testLabels(N_TEST));

  // The trained weights download as safetensors and upload again for the next run.
  const [dl] = await Promise.all([
    page.waitForEvent('download', { timeout: 60_000 }),
    page.getByRole('button', { name: 'Download weights', exact: true }).click(),
  ]);
  assert.equal(dl.suggestedFilename(), 'weights.safetensors');
  const weights = readFileSync(await dl.path());
  const headerLen = Number(weights.readBigUInt64LE(0));
  const header = JSON.parse(weights.subarray(8, 8 + headerLen).toString('utf8'));
  assert.deepEqual(header['dense.kernel_in_out'].shape, [1568, 256]);
  await page.getByLabel('Upload weights…').setInputFiles({
    name: 'weights.safetensors',
    mimeType: 'application/octet-stream',
    buffer: weights,
  });
  await page.getByText('The next run starts from the weights in weights.safetensors.').waitFor({ timeout: 30_000 });

  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('a corrupt IDX file shows an error and the app stays usable', { timeout: READY_MS + ACTION_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}?train_limit=64&test_limit=32&epochs=1`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  const good = (name) => ({
    name,
    mimeType: 'application/gzip',
    buffer: readFileSync(join(repo, 'www/data/mnist', name)),
  });
  await page.getByLabel('Open IDX files…').setInputFiles([
    good('train-labels-idx1-ubyte.gz'),
    good('t10k-images-idx3-ubyte.gz'),
    good('t10k-labels-idx1-ubyte.gz'),
    { name: 'train-images-idx3-ubyte', mimeType: 'application/octet-stream', buffer: Buffer.from('this is not an IDX file at all') },
  ]);
  const message = page.getByTestId('file-error');
  await message.waitFor({ timeout: 30_000 });
  const text = await message.textContent();
  assert.match(text, /train-images|IDX|idx/i, text);
  // Still usable: same state, Train enabled, dataset unchanged.
  assert.equal(await page.getAttribute('.app[data-state]', 'data-state'), 'ready');
  assert.ok(await page.getByRole('button', { name: 'Train', exact: true }).isEnabled());
  assert.match(await page.textContent('[data-testid=dataset]'), /MNIST/);

  // An invalid field is rejected at the field and disables Train.
  await page.fill('#f-epochs', 'abc');
  await page.locator('#epochs-error').waitFor();
  assert.ok(await page.getByRole('button', { name: 'Train', exact: true }).isDisabled());
  await page.fill('#f-epochs', '1');
  await page.locator('#epochs-error').waitFor({ state: 'detached' });
  assert.ok(await page.getByRole('button', { name: 'Train', exact: true }).isEnabled());

  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('invalid URL values are shown at their fields', { timeout: READY_MS + ACTION_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}?batch=1&lr=fast&metric=manhattan`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  for (const id of ['batch-error', 'lr-error', 'metric-error']) {
    await page.locator(`#${id}`).waitFor({ timeout: 5000 });
  }
  assert.ok(await page.getByRole('button', { name: 'Train', exact: true }).isDisabled());
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

/** Runs `js` in the page's worker before its wasm starts (prepended to trunk's loader script):
 *  how these tests take WebGPU away from the worker, or make it hang, as a browser might. */
async function patchWorker(page, js) {
  await page.route('**/tripletlab-worker_loader.js', async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, body: `${js}\n${await response.text()}` });
  });
}

test('without WebGPU (no navigator.gpu in the worker) the page trains on the CPU, with a banner', { timeout: READY_MS + TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  await patchWorker(page, "Object.defineProperty(WorkerNavigator.prototype, 'gpu', { get: () => undefined });");
  // No backend in the URL: the page's own detection finds no WebGPU.
  await page.goto(`${server.url}?train_limit=64&test_limit=40&epochs=1`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  assert.match(await page.textContent('.banners'), /No WebGPU: this browser does not offer WebGPU \(navigator\.gpu is missing\)/);
  assert.match(await page.textContent('[data-testid=adapter]'), /CPU/);
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('a WebGPU start that never ends falls back to the CPU after the time limit, with a banner', { timeout: READY_MS + 60_000 }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  // An adapter, but a device request that never answers (a hung driver).
  await patchWorker(page, 'GPUAdapter.prototype.requestDevice = () => new Promise(() => {});');
  const t0 = Date.now();
  await page.goto(`${server.url}?backend=webgpu&train_limit=64&test_limit=40&epochs=1`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  const waited = Date.now() - t0;
  console.log(`# ready on the CPU ${waited} ms after a WebGPU start that hung`);
  assert.ok(waited >= 15_000, `the page gave up on WebGPU after ${waited} ms, before its 15 s limit`);
  assert.match(await page.textContent('.banners'), /WebGPU did not start within 15 s\. Training runs on the CPU instead/);
  assert.match(await page.textContent('[data-testid=adapter]'), /CPU/);
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('a lost GPU device ends the run with a banner, keeps the last epoch\'s weights, and the next Train starts a new device', { timeout: READY_MS + 2 * TRAIN_MS }, async () => {
  const page = await openPage();
  // Keeps the worker's GPUDevice where the test can destroy it (what a driver reset does).
  await patchWorker(page, `const requestDevice = GPUAdapter.prototype.requestDevice;
GPUAdapter.prototype.requestDevice = async function (...args) {
  const device = await requestDevice.apply(this, args);
  self.__gpuDevices = [...(self.__gpuDevices ?? []), device];
  return device;
};`);
  await page.goto(`${server.url}?backend=webgpu&train_limit=192&test_limit=50&epochs=2`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  const train = page.getByRole('button', { name: 'Train', exact: true });
  await train.click();
  await page.getByText(/epoch 2\/2 · step [2-5]\//).waitFor({ timeout: TRAIN_MS });
  const [worker] = page.workers();
  await worker.evaluate(() => self.__gpuDevices.at(-1).destroy());
  assert.equal(await waitState(page, ['error', 'done'], TRAIN_MS), 'error');
  await page.getByText(/Training stopped: the GPU device failed: .* \(the GPU device was lost or reset\)/).waitFor({ timeout: 10_000 });
  // The weights of epoch 1's end survived the device.
  const weights = page.getByRole('button', { name: 'Download weights', exact: true });
  await weights.and(page.locator(':enabled')).waitFor({ timeout: 60_000 });
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), weights.click()]);
  const bytes = readFileSync(await dl.path());
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString());
  assert.ok(Object.keys(header).length >= 6, `safetensors header: ${Object.keys(header)}`);
  // A new device, on WebGPU again, and a run on it to the end.
  for (let t0 = Date.now(); (await worker.evaluate(() => self.__gpuDevices.length)) < 2; await page.waitForTimeout(250)) {
    assert.ok(Date.now() - t0 < 60_000, 'no second device was requested');
  }
  await train.and(page.locator(':enabled')).waitFor({ timeout: 60_000 });
  assert.match(await page.textContent('[data-testid=adapter]'), /WebGPU/);
  assert.doesNotMatch(await page.textContent('.banners'), /WebGPU could not be started/);
  await train.click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  await page.close();
});

test('on a software-only adapter the page trains on the CPU (fused kernels), and reuses its weights', { timeout: READY_MS + TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}?train_limit=320&test_limit=100&epochs=1`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready', await page.textContent('.banners'));
  assert.match(await page.textContent('[data-testid=adapter]'), /CPU/);
  const banners = await page.textContent('.banners');
  assert.match(banners, /software emulation/, banners);
  assert.match(banners, /backend=webgpu/, banners);
  const train = page.getByRole('button', { name: 'Train', exact: true });
  const t1 = Date.now();
  await train.click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  const stats = await page.evaluate(() => window.__tripletlabStats ?? null);
  console.log(`# CPU run in ${Date.now() - t1} ms: ${await page.textContent('.progress .numbers')} ${JSON.stringify(stats)}`);
  const vecs = await download(page, 'Download vecs.tsv');
  const rows = vecs.text.split('\n').filter((l) => l.length > 0);
  assert.equal(rows.length, 100);
  for (const [i, row] of rows.entries()) {
    const vals = row.split('\t').map(Number);
    const norm = Math.sqrt(vals.reduce((s, v) => s + v * v, 0));
    assert.ok(vals.length === 256 && Math.abs(norm - 1) < 1e-3, `row ${i}: ${vals.length} values, norm ${norm}`);
  }
  // The CPU engine's weights go out as safetensors and come back in as the next run's start.
  const [dl] = await Promise.all([
    page.waitForEvent('download', { timeout: 60_000 }),
    page.getByRole('button', { name: 'Download weights', exact: true }).click(),
  ]);
  await page.getByLabel('Upload weights…').setInputFiles({
    name: 'weights.safetensors',
    mimeType: 'application/octet-stream',
    buffer: readFileSync(await dl.path()),
  });
  await page.getByText('The next run starts from the weights in weights.safetensors.').waitFor({ timeout: 30_000 });
  await train.click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('Pause, Resume and Stop steer a run; a stopped run can be exported', { timeout: READY_MS + TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  // embed_every=5: the test embeddings are refreshed every 5 steps, so a stopped run has some.
  await page.goto(`${server.url}?train_limit=640&test_limit=50&epochs=1&backend=webgpu&embed_every=5`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  const button = (name) => page.getByRole('button', { name, exact: true });
  await button('Train').click();
  assert.equal(await waitState(page, ['training', 'done', 'error'], 60_000), 'training');
  await button('Pause').click();
  assert.equal(await waitState(page, ['paused'], 10_000), 'paused');
  // Paused in the training loop itself: no step is taken while paused.
  const stepText = () => page.textContent('.progress .numbers').then((t) => t.match(/step (\d+)\//)[1]);
  const pausedAt = await stepText();
  await page.waitForTimeout(3000);
  assert.equal(await stepText(), pausedAt, 'a step was taken while paused');
  assert.ok(await button('Resume').isEnabled());
  assert.ok(await button('Train').isDisabled());
  await button('Resume').click();
  assert.equal(await waitState(page, ['training'], 10_000), 'training');
  // Wait for at least one embedding refresh before stopping.
  await page.getByText(/test embeddings from epoch 1, step \d+/).waitFor({ timeout: TRAIN_MS });
  // The worker answers the Stop at once; the run ends once SwiftShader has run the steps
  // already sent to it (the driver sends at most ~100 ms of work, or one step, ahead).
  const stop = await clickStop(page);
  console.log(`# Stop on WebGPU: seen by the worker after ${stop.seenMs} ms, run ended after ${stop.endedMs} ms`);
  assert.ok(stop.seenMs !== null, 'the worker said it had seen the Stop before the run ended');
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  const banners = await page.textContent('.banners');
  assert.match(banners, /Stopped after/);
  // The downloads hold the embeddings of the weights at the stop, and the page says so.
  const stoppedAt = await stepText();
  await page.getByText(`50 test embeddings from epoch 1, step ${stoppedAt}`).waitFor({ timeout: 60_000 });
  const bar = page.locator('.progress').getByRole('progressbar');
  assert.ok(Number(await bar.getAttribute('aria-valuenow')) < 100);
  const vecs = await download(page, 'Download vecs.tsv');
  assert.equal(vecs.text.split('\n').filter((l) => l).length, 50);
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('a second Train during a run is refused by the worker itself', { timeout: READY_MS + TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  // 250 steps: several seconds on the CPU path.
  await page.goto(`${server.url}?backend=cpu&train_limit=8000&test_limit=50&epochs=1`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  assert.equal(await waitState(page, ['training', 'done', 'error'], 60_000), 'training');
  // The button is disabled; submitting the form anyway reaches the worker, which refuses.
  await page.evaluate(() => document.querySelector('form.controls').requestSubmit());
  await page.getByText(/Train was refused: run \d+ is still in progress/).waitFor({ timeout: 30_000 });
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  assert.doesNotMatch(await page.textContent('.banners'), /Stopped after/);
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('picking Fashion-MNIST then MNIST at once trains on MNIST', { timeout: READY_MS + TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}?backend=cpu&train_limit=64&test_limit=40&epochs=1`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  // Fashion-MNIST (60k images to fetch and parse) then MNIST (cached) in the same task: the
  // slower load ends last and must not win.
  await page.evaluate(() => {
    const select = document.querySelector('#f-dataset');
    for (const v of ['fashion', 'mnist']) {
      select.value = v;
      select.dispatchEvent(new Event('change', { bubbles: true }));
    }
  });
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  // Long enough for Fashion's load to have ended in the worker.
  await page.waitForTimeout(8000);
  assert.equal(await page.inputValue('#f-dataset'), 'mnist');
  assert.match(await page.textContent('[data-testid=dataset]'), /data: MNIST/);
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  const meta = await download(page, 'Download meta.tsv');
  assert.deepEqual(meta.text.split('\n').filter((l) => l.length > 0).map(Number), testLabels(40));
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('Stop during the final evaluation ends the run; the downloads hold the learnt embeddings', { timeout: READY_MS + TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  // 32 steps of 256, then a final evaluation that embeds all 8,000 training images and ranks
  // the 2,000 test images against them: seconds of work, sliced, Stop looked at between slices.
  await page.goto(`${server.url}?backend=cpu&train_limit=8000&batch=256&epochs=1`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await page.getByText('final evaluation…').waitFor({ timeout: TRAIN_MS });
  const t0 = Date.now();
  await page.getByRole('button', { name: 'Stop', exact: true }).click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  console.log(`# stopped ${Date.now() - t0} ms after Stop during the final evaluation`);
  const banners = await page.textContent('.banners');
  // Stopped after every step, during the evaluation: it did not run to its end.
  assert.match(banners, /Stopped after 32 steps \([01] epochs complete\)/, banners);
  // The downloads hold the test embeddings of the final weights.
  await page.getByText('2000 test embeddings from epoch 1, step 32').waitFor({ timeout: 120_000 });
  // The final kNN against the training set never finished: no kNN figure is shown.
  const finalRow = page.locator('.metrics tr.final td');
  if (await finalRow.count() > 0) {
    assert.equal(await finalRow.nth(2).textContent(), '–');
    assert.equal(await finalRow.nth(3).textContent(), '–');
  }
  const vecs = await download(page, 'Download vecs.tsv');
  assert.equal(vecs.text.split('\n').filter((l) => l).length, 2000);
  assert.ok(await page.getByRole('button', { name: 'Download weights', exact: true }).isEnabled());
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('a new run cancels the t-SNE of the finished one', { timeout: READY_MS + 2 * TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}?backend=cpu&train_limit=64&test_limit=1000&epochs=1`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  const button = (name) => page.getByRole('button', { name, exact: true });
  await button('Train').click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done');
  await button('Run t-SNE').click();
  await page.getByLabel('t-SNE progress').waitFor({ timeout: 60_000 });
  await button('Train').click();
  await page.getByText('t-SNE was cancelled by the new run.').waitFor({ timeout: 60_000 });
  assert.equal(await page.getByLabel('t-SNE progress').count(), 0);
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  assert.match(await page.textContent('.projection'), /PCA/);
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('a worker that dies is replaced: a banner says so and the page trains again', { timeout: READY_MS + 2 * TRAIN_MS }, async () => {
  const page = await openPage();
  await page.goto(`${server.url}?backend=cpu&train_limit=64&test_limit=40&epochs=1`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  const train = page.getByRole('button', { name: 'Train', exact: true });
  await train.click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done');
  const metricsBefore = await page.textContent('.metrics tbody');
  // An uncaught error in the worker (what a wasm trap such as running out of memory is): the
  // page only learns of it from the worker's `error` event.
  const [worker] = page.workers();
  assert.ok(worker, 'the page runs a worker');
  await worker.evaluate(() => setTimeout(() => { throw new Error('simulated crash'); }, 0));
  await page.getByText(/The worker that trains stopped \(.*simulated crash.*\)/).waitFor({ timeout: 30_000 });
  // A fresh worker: device and dataset again, then ready; what was shown stays.
  assert.equal(await waitState(page, ['ready'], READY_MS), 'ready');
  assert.equal(await page.textContent('.metrics tbody'), metricsBefore);
  await train.click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  await page.close();
});

test('a batch of 4096, the largest the settings allow, trains on the CPU path to the end', { timeout: READY_MS + TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  // One step of 4096 (the semi-hard selection keeps O(B²) memory; it was B³ before).
  await page.goto(`${server.url}?backend=cpu&batch=4096&train_limit=4096&test_limit=100&epochs=1`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  assert.equal(await page.textContent('.field-note'), 'up to 4096 on this device');
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  assert.match(await page.textContent('.progress .numbers'), /step 1\/1/);
  const vecs = await download(page, 'Download vecs.tsv');
  assert.equal(vecs.text.split('\n').filter((l) => l).length, 100);
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('on WebGPU the batch field states the device\'s limit, from its largest storage buffer', { timeout: READY_MS + ACTION_MS }, async () => {
  const page = await openPage();
  // Half of SwiftShader's storage-buffer limit, as a smaller GPU would report it.
  await patchWorker(page, `const requestDevice = GPUAdapter.prototype.requestDevice;
GPUAdapter.prototype.requestDevice = function (desc) {
  const limits = { ...(desc?.requiredLimits ?? {}) };
  limits.maxStorageBufferBindingSize = 128 * 1024 * 1024;
  return requestDevice.call(this, { ...desc, requiredLimits: limits });
};`);
  await page.goto(`${server.url}?backend=webgpu&batch=4096&train_limit=64`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  // 128 MiB holds conv2's input grid (57,600 bytes an image) for 2330 images.
  assert.equal(await page.textContent('#batch-error'), 'this device trains batches of up to 2330 (on WebGPU, the largest batch whose buffers fit in this device\'s largest storage buffer)');
  assert.ok(await page.getByRole('button', { name: 'Train', exact: true }).isDisabled());
  await page.getByLabel('Batch size').fill('2330');
  assert.equal(await page.textContent('.field-note'), 'up to 2330 on this device');
  assert.ok(await page.getByRole('button', { name: 'Train', exact: true }).isEnabled());
  await page.close();
});
