// End-to-end tests of the built page (dist/) in headless Chromium, on WebGPU (SwiftShader) and on
// the page's CPU path. They observe behaviour, not the page's reducer: what the worker did is
// read from the steps the loss chart plotted, the points the projection drew, the pixels of the
// canvases, and the files the page downloads, which the native CLI (`tripletlab embed` / `eval`,
// native.mjs) recomputes independently from the downloaded weights.
// Run: node --test tests/browser/e2e.test.mjs   (after `trunk build` and
// `cargo build --bin tripletlab`; scripts/test-web.sh does both)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHROMIUM_ARGS, clickStop, patchWorker, repo, startBrowser, startServer, waitState, watchErrors } from './harness.mjs';
import {
  cleanup, embedNative, evalNative, nearestRows, parseMeta, parseVecs, pcaNative, saveFile, testImage,
  testLabels, vecsDiff, weightsDiff, zipEntry, zipNames,
} from './native.mjs';

const READY_MS = 180_000;
const TRAIN_MS = 900_000;
// Actions wait for the page's main thread, which a training step (or a busy machine) can hold
// for a while; the page yields between steps, so this is a generous upper bound, not a delay.
const ACTION_MS = 180_000;
// The page's vectors against the CLI's embeddings of the weights the page downloaded.
const SAME_VECS = 1e-5;
// The least drop of the held-out loss (the run's own loss on the first 256 test embeddings, in
// batches of 32: `test_loss` of `tripletlab embed`) that counts as learning. Measured natively
// (`tripletlab train`, 1,024 examples, one epoch: 32 steps): 0.953–0.962 untrained, 0.849–0.851
// after the run for seeds 1, 2, 3 and 11, so a drop of about 0.105 with seeds moving it by a few
// thousandths; no update at all drops it by 0.
const MIN_DROP = 0.05;
// A learning rate the form accepts that is 0 in float32: a run with it moves no weight, so its
// embeddings are those of the weights it starts from.
const VOID_LR = '1e-300';
// The loss chart's canvas (`data-points`: the steps it plots) and the projection's
// (`data-points`: the finite points it draws).
const CHART = 'section.chart canvas';
const PROJ = 'canvas.projection-canvas';

async function openPage(browser = chrome.browser) {
  const page = await browser.newPage();
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
  cleanup();
});

const button = (page, name) => page.getByRole('button', { name, exact: true });

/** The steps the loss chart has plotted (one per loss the worker reported). */
async function plotted(page) {
  return Number(await page.getAttribute(CHART, 'data-points'));
}

/** Resolves once `predicate()` holds (polled); fails with `what` after `ms` (a hang guard). */
async function until(predicate, what, ms = 120_000) {
  for (const t0 = Date.now(); !(await predicate()); await new Promise((r) => setTimeout(r, 100))) {
    assert.ok(Date.now() - t0 < ms, `timed out waiting for ${what}`);
  }
}

async function downloadBytes(page, name) {
  const [dl] = await Promise.all([
    page.waitForEvent('download', { timeout: 60_000 }),
    button(page, name).click(),
  ]);
  return { file: dl.suggestedFilename(), bytes: readFileSync(await dl.path()) };
}

async function download(page, name) {
  const { file, bytes } = await downloadBytes(page, name);
  return { file, text: bytes.toString('utf8') };
}

/** The metrics table's rows, as the cells' texts. */
function metricsTable(page) {
  return page.$$eval('.metrics tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
}

/** What the page shows right now: state, the projection's caption, drawn points and pixels
 *  (hashed), the loss chart's plotted steps and pixels, whether t-SNE or UMAP runs. */
function probe(page) {
  return page.evaluate(([proj, chart]) => {
    const hash = (c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let h = 0x811c9dc5;
      for (let i = 0; i < d.length; i++) h = Math.imul(h ^ d[i], 16777619);
      return (h >>> 0).toString(16);
    };
    const p = document.querySelector(proj);
    const c = document.querySelector(chart);
    return {
      state: document.querySelector('.app[data-state]').getAttribute('data-state'),
      kind: document.querySelector('[data-testid=projection-kind]').textContent,
      projPoints: Number(p.getAttribute('data-points')),
      projHash: hash(p),
      chartPoints: Number(c.getAttribute('data-points')),
      chartHash: hash(c),
      tsne: document.querySelector('[aria-label="t-SNE progress"]') !== null,
      umap: document.querySelector('[aria-label="UMAP progress"]') !== null,
    };
  }, [PROJ, CHART]);
}

/**
 * The checks of a finished run against the native CLI: vecs.tsv is the embedding of the
 * downloaded weights (recomputed by `tripletlab embed`), meta.tsv the test labels, the metrics
 * table's final row what `embed` (kNN against the same training examples) and `eval` (within
 * the test set) compute from those files, and the run learnt: the held-out loss of the trained
 * weights is well below that of the untrained net of the same seed on the same data.
 * Resolves to the downloads.
 */
async function checkAgainstNative(page, { engine, seed, trainLimit, testLimit }) {
  const vecsFile = await download(page, 'Download vecs.tsv');
  const metaFile = await download(page, 'Download meta.tsv');
  const weightsFile = await downloadBytes(page, 'Download weights');
  assert.deepEqual([vecsFile.file, metaFile.file, weightsFile.file], ['vecs.tsv', 'meta.tsv', 'weights.safetensors']);
  const vecs = parseVecs(vecsFile.text);
  assert.equal(`${vecs.rows}×${vecs.dim}`, `${testLimit}×256`);
  assert.deepEqual(parseMeta(metaFile.text), testLabels(testLimit));

  const trained = await embedNative({ weights: saveFile('weights.safetensors', weightsFile.bytes), trainLimit, testLimit });
  const diff = vecsDiff(vecs, trained.vecs);
  console.log(`# ${engine}: vecs.tsv vs the CLI's embeddings of the downloaded weights: max |Δ| ${diff.toExponential(2)}`);
  assert.ok(diff <= SAME_VECS, `${engine}: vecs.tsv is not the embedding of the downloaded weights (max |Δ| ${diff})`);
  assert.deepEqual(trained.labels, testLabels(testLimit));

  // The table shows 4 decimals.
  const rows = await metricsTable(page);
  const final = rows.find((r) => r[0] === 'final');
  const last = rows.filter((r) => r[0] !== 'final' && r[0] !== 'raw pixels').at(-1);
  assert.ok(final && last, `metrics table: ${JSON.stringify(rows)}`);
  const scored = await evalNative(vecsFile.text, metaFile.text);
  const same = (text, value, what) => assert.ok(
    typeof value === 'number' && Math.abs(Number(text) - value) <= 0.5e-4 + 1e-9,
    `${engine}: the metrics table's ${what} is ${text}; recomputed from the downloads: ${value}`,
  );
  same(final[2], trained.metrics.knn1_acc, 'final kNN-1');
  same(final[3], trained.metrics.knn5_acc, 'final kNN-5');
  same(final[4], scored.precision_at_1, 'final P@1');
  same(final[5], scored.map_at_r, 'final MAP@R');
  same(last[4], scored.precision_at_1, `epoch ${last[0]} P@1`);
  same(last[5], scored.map_at_r, `epoch ${last[0]} MAP@R`);
  // Beside the final kNN-1, the raw pixels' with the same sets: the CLI's raw_pixel_knn1.
  await until(async () => (await metricsTable(page)).some((r) => r[0] === 'raw pixels'), 'the raw-pixel row', TRAIN_MS);
  const raw = (await metricsTable(page)).find((r) => r[0] === 'raw pixels');
  same(raw[2], trained.metrics.raw_pixel_knn1, 'raw-pixel kNN-1');
  assert.match(await page.textContent('[data-testid=raw-pixels]'), /^Training added [+-]\d\.\d{4} kNN-1 over the raw pixels/);

  const untrained = await embedNative({ seed, trainLimit, testLimit });
  const [before, afterRun] = [untrained.metrics.test_loss, trained.metrics.test_loss];
  const knn = `kNN-1 ${trained.metrics.knn1_acc} after, ${untrained.metrics.knn1_acc} untrained`;
  console.log(`# ${engine}: held-out loss ${afterRun} after the run, ${before} untrained (seed ${seed}); ${knn}`);
  assert.ok(
    typeof before === 'number' && typeof afterRun === 'number' && before - afterRun >= MIN_DROP,
    `${engine} did not learn: held-out loss ${afterRun} after the run vs ${before} for the untrained net ` +
      `(seed ${seed}, same data): a drop of ${before - afterRun}, less than ${MIN_DROP}; ${knn}`,
  );
  return { vecs, weights: weightsFile.bytes };
}

/** Reloads the page at `url` (whose learning rate is VOID_LR), uploads `weights` and trains:
 *  the run starts from them, so its embeddings are `vecs` again and the weights it downloads
 *  are the uploaded ones. */
async function weightsRoundTrip(page, url, { engine, weights, vecs }) {
  await page.goto(url);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready', await page.textContent('.banners'));
  assert.equal(await page.inputValue('#f-lr'), VOID_LR);
  await page.getByLabel('Upload weights…').setInputFiles({ name: 'weights.safetensors', mimeType: 'application/octet-stream', buffer: weights });
  await page.getByText('The next run starts from the weights in weights.safetensors.').waitFor({ timeout: 30_000 });
  await button(page, 'Train').click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  const again = parseVecs((await download(page, 'Download vecs.tsv')).text);
  const diff = vecsDiff(vecs, again);
  assert.ok(diff <= SAME_VECS, `${engine}: a run from the uploaded weights (at a void learning rate) embeds differently from the run that wrote them (max |Δ| ${diff}): the upload was not used`);
  const back = (await downloadBytes(page, 'Download weights')).bytes;
  const moved = weightsDiff(weights, back);
  assert.ok(moved <= 1e-7, `${engine}: the weights downloaded after a void run differ from the uploaded ones by up to ${moved}`);
}

test('on WebGPU a short run learns, its downloads are what it learnt (checked by the CLI), and its weights come back in', { timeout: READY_MS + 2 * TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  const [seed, trainLimit, testLimit] = [11, 1024, 256];
  // backend=webgpu: here the only adapter is SwiftShader, which the page would otherwise skip.
  // embed_every=16: the test embeddings are refreshed once mid-run, so stale ones would show.
  const query = `backend=webgpu&test_limit=${testLimit}&epochs=1&seed=${seed}&embed_every=16`;
  await page.goto(`${server.url}?${query}&train_limit=${trainLimit}`);
  const t0 = Date.now();
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready', await page.textContent('.banners'));
  console.log(`# ready after ${Date.now() - t0} ms; ${await page.textContent('[data-testid=adapter]')}`);
  assert.match(await page.textContent('[data-testid=adapter]'), /WebGPU/);
  // The URL's settings are in the form.
  assert.equal(await page.inputValue('#f-train_limit'), String(trainLimit));
  assert.equal(await page.inputValue('#f-seed'), String(seed));

  const t1 = Date.now();
  await button(page, 'Train').click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  console.log(`# trained in ${Date.now() - t1} ms: ${await page.textContent('.progress .numbers')}`);
  // Every step ran (the worker's own count) and its loss reached the chart.
  const stats = await page.evaluate(() => window.__tripletlabStats);
  assert.equal(stats.steps, 32);
  assert.equal(await plotted(page), 32);

  const { vecs, weights } = await checkAgainstNative(page, { engine: 'WebGPU', seed, trainLimit, testLimit });
  await weightsRoundTrip(page, `${server.url}?${query}&train_limit=64&lr=${VOID_LR}`, { engine: 'WebGPU', weights, vecs });
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('on a software-only adapter the page trains on the CPU, learns, exports what it learnt, and takes its weights back', { timeout: READY_MS + 2 * TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  const [seed, trainLimit, testLimit] = [11, 1024, 256];
  const query = `test_limit=${testLimit}&epochs=1&seed=${seed}&embed_every=16`;
  await page.goto(`${server.url}?${query}&train_limit=${trainLimit}`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready', await page.textContent('.banners'));
  assert.match(await page.textContent('[data-testid=adapter]'), /CPU/);
  const banners = await page.textContent('.banners');
  assert.match(banners, /software emulation/, banners);
  assert.match(banners, /backend=webgpu/, banners);
  const t1 = Date.now();
  await button(page, 'Train').click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  const stats = await page.evaluate(() => window.__tripletlabStats ?? null);
  console.log(`# CPU run in ${Date.now() - t1} ms: ${await page.textContent('.progress .numbers')} ${JSON.stringify({ ...stats, marks: undefined })}`);
  assert.equal(stats.steps, 32);
  assert.equal(await plotted(page), 32);

  const { vecs, weights } = await checkAgainstNative(page, { engine: 'CPU', seed, trainLimit, testLimit });
  await weightsRoundTrip(page, `${server.url}?${query}&train_limit=64&lr=${VOID_LR}`, { engine: 'CPU', weights, vecs });
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('Pause holds the steps, Resume takes them up again, Stop ends them; the stopped weights are exported', { timeout: READY_MS + TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  // 20 steps of ~0.5 s on SwiftShader; embed_every=5 refreshes the test embeddings mid-run.
  const [trainLimit, testLimit] = [640, 50];
  await page.goto(`${server.url}?train_limit=${trainLimit}&test_limit=${testLimit}&epochs=1&backend=webgpu&embed_every=5`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  await button(page, 'Train').click();
  await until(async () => (await plotted(page)) >= 1, 'the first step');
  await button(page, 'Pause').click();
  assert.equal(await waitState(page, ['paused'], 30_000), 'paused');
  // Paused in the training loop itself: the steps stand still (looked at every 250 ms for 3 s).
  const pausedAt = await plotted(page);
  for (let i = 0; i < 12; i++) {
    await page.waitForTimeout(250);
    assert.equal(await plotted(page), pausedAt, `a step was taken while paused (${pausedAt} before)`);
  }
  assert.ok(pausedAt < 20, `the run ended before the pause (${pausedAt} steps)`);
  assert.ok(await button(page, 'Resume').isEnabled());
  assert.ok(await button(page, 'Train').isDisabled());
  await button(page, 'Resume').click();
  await until(async () => (await plotted(page)) > pausedAt, 'a step after Resume', 60_000);
  assert.notEqual(await page.getAttribute('.app[data-state]', 'data-state'), 'paused');

  // The worker answers the Stop at once; the run ends once SwiftShader has run the step
  // already sent to it (the driver sends at most ~100 ms of work, or one step, ahead).
  const stop = await clickStop(page);
  console.log(`# Stop on WebGPU after ${stop.stepsAtClick} steps: seen by the worker after ${stop.seenMs} ms, run ended after ${stop.endedMs} ms`);
  assert.ok(stop.seenMs !== null, 'the worker said it had seen the Stop before the run ended');
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  const banners = await page.textContent('.banners');
  const stoppedAt = Number(banners.match(/Stopped after (\d+) steps/)?.[1]);
  assert.ok(stoppedAt > pausedAt && stoppedAt < 20, `the run did not stop early (${pausedAt} steps at the pause; banners: "${banners}")`);
  // The worker's count of steps is what reached the chart; at most the step in flight (and
  // one whose loss was on its way to the page) came after the click; none comes later.
  assert.equal(await plotted(page), stoppedAt);
  assert.ok(stoppedAt - stop.stepsAtClick <= 2, `${stoppedAt - stop.stepsAtClick} steps after the Stop`);
  await page.waitForTimeout(2000);
  assert.equal(await plotted(page), stoppedAt, 'a step came after the run ended');
  // The downloads hold the test embeddings of the weights at the stop (recomputed by the CLI
  // from the downloaded weights), and the page says which step they are from.
  await page.getByText(`${testLimit} test embeddings from epoch 1, step ${stoppedAt}`).waitFor({ timeout: 60_000 });
  const vecs = parseVecs((await download(page, 'Download vecs.tsv')).text);
  const weights = (await downloadBytes(page, 'Download weights')).bytes;
  const native = await embedNative({ weights: saveFile('weights.safetensors', weights), trainLimit, testLimit });
  const diff = vecsDiff(vecs, native.vecs);
  assert.ok(diff <= SAME_VECS, `the stopped run's vecs.tsv is not the embedding of its weights (max |Δ| ${diff})`);
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

/** Finds a point on the projection (the middle of a square of one class colour), hovers it and
 *  checks what the page shows against the downloaded vectors and the dataset's own files: the
 *  hovered test image, its label, its 5 nearest neighbours (labels, similarities, images). */
async function checkHover(page, vecs, labels, where) {
  // The page is long (clicking a download lower down scrolls it): bring the projection back.
  await page.$eval(PROJ, (c) => c.scrollIntoView({ block: 'center' }));
  const target = await page.$eval(PROJ, (c) => {
    const { data, width, height } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    const at = (x, y) => (y * width + x) * 4;
    const same = (i, j) => data[i] === data[j] && data[i + 1] === data[j + 1] && data[i + 2] === data[j + 2];
    let dark = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i] < 60 && data[i + 1] < 60 && data[i + 2] < 60) dark++;
    // From the middle outwards, so the point is not at an edge.
    const order = [...Array(height - 2).keys()].map((k) => k + 1).sort((a, b) => Math.abs(a - height / 2) - Math.abs(b - height / 2));
    for (const y of order) {
      for (let x = 1; x < width - 1; x++) {
        const i = at(x, y);
        if (data[i] === 255 && data[i + 1] === 255 && data[i + 2] === 255) continue;
        if ([[-1, 0], [1, 0], [0, -1], [0, 1]].every(([dx, dy]) => same(i, at(x + dx, y + dy)))) {
          const r = c.getBoundingClientRect();
          return { x, y, cx: r.left + (x + 0.5) * r.width / width, cy: r.top + (y + 0.5) * r.height / height, dark };
        }
      }
    }
    return null;
  });
  assert.ok(target, `${where}: no point found on the projection`);
  assert.equal(target.dark, 0, `${where}: a point is highlighted before any hover`);
  await page.mouse.move(target.cx, target.cy);
  const text = page.locator('.hover p');
  await until(async () => /^test #\d+:/.test(await text.textContent()), `${where}: the hover text`, 30_000);
  const m = (await text.textContent()).match(/^test #(\d+): (\S+) — nearest: (.*)$/);
  assert.ok(m, await text.textContent());
  const i = Number(m[1]);
  assert.equal(m[2], String(labels[i]), `${where}: test #${i}'s label`);
  const shown = m[3].split(', ').map((s) => s.match(/^(\S+) \((-?[\d.]+)\)$/)).map((x) => ({ name: x[1], sim: Number(x[2]) }));
  const want = nearestRows(vecs, i, 8);
  assert.equal(shown.length, 5, m[3]);
  // Each shown neighbour: the recomputed one at that rank, or one tied with it (within 1e-4).
  const picks = shown.map((s, k) => {
    assert.ok(Math.abs(s.sim - want[k].sim) <= 0.0051, `${where}: neighbour ${k} of #${i}: similarity ${s.sim} shown, ${want[k].sim} recomputed`);
    const tied = want.filter((w) => Math.abs(w.sim - want[k].sim) <= 1e-4 && String(labels[w.j]) === s.name);
    assert.ok(tied.length > 0, `${where}: neighbour ${k} of #${i} is labelled ${s.name}; recomputed: ${want.slice(0, 5).map((w) => `${labels[w.j]} (${w.sim.toFixed(3)})`)}`);
    return tied.map((w) => w.j);
  });
  // The hovered point is highlighted (a black square around it) where the mouse is.
  const dark = await page.$eval(PROJ, (c, [x, y]) => {
    const d = c.getContext('2d').getImageData(x - 16, y - 16, 33, 33).data;
    let n = 0;
    for (let k = 0; k < d.length; k += 4) if (d[k] < 60 && d[k + 1] < 60 && d[k + 2] < 60) n++;
    return n;
  }, [target.x, target.y]);
  assert.ok(dark > 0, `${where}: the hovered point is not highlighted`);
  // The images: test #i at 2× (56 px at 0,0), the neighbours at 1.5× (42 px at 72 + 60k, 14).
  const detail = await page.$eval('.hover canvas', (c) => ({ w: c.width, data: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data) }));
  const grey = (x, y) => detail.data[(y * detail.w + x) * 4];
  const matches = (j, x0, y0, scale) => {
    const { rows, cols, pixels } = testImage(j);
    let ok = 0;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const [x, y] = [x0 + Math.floor(scale * c + scale / 2), y0 + Math.floor(scale * r + scale / 2)];
        if (Math.abs(grey(x, y) - pixels[r * cols + c]) <= 3) ok++;
      }
    }
    return ok / (rows * cols);
  };
  const own = matches(i, 0, 0, 2);
  assert.ok(own >= 0.98, `${where}: the hover image is not test #${i} (${(own * 100).toFixed(1)} % of pixels match)`);
  picks.forEach((js, k) => {
    const best = Math.max(...js.map((j) => matches(j, 72 + 60 * k, 14, 1.5)));
    assert.ok(best >= 0.95, `${where}: neighbour image ${k} of #${i} is not test #${js} (${(best * 100).toFixed(1)} % of pixels match)`);
  });
  await page.mouse.move(1, 1);
  return i;
}

/** What a finished t-SNE of 500 points calls itself (the worker's perplexity 30, 1000 iterations). */
const TSNE_DONE = 't-SNE, perplexity 30, 1000 iterations';

test('the projection and the loss chart follow the run; hover shows a point\'s image and neighbours; t-SNE converges and redraws', { timeout: READY_MS + 2 * TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  // 2 epochs of 64 steps on the CPU path, the test embeddings refreshed every 8 steps.
  const [testLimit, steps] = [500, 128];
  await page.goto(`${server.url}?backend=cpu&train_limit=2048&test_limit=${testLimit}&epochs=2&embed_every=8`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  await button(page, 'Train').click();
  // Watch the page while the run goes on.
  const live = [];
  for (const t0 = Date.now(); ; ) {
    const s = await probe(page);
    if (s.state !== 'training') break;
    live.push(s);
    assert.ok(Date.now() - t0 < TRAIN_MS, 'the run did not end');
  }
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  // The projection refreshed during the run: several PCAs of later and later steps, each
  // drawn with every test point.
  const kinds = [...new Set(live.map((s) => s.kind).filter((k) => /^PCA/.test(k)))];
  const pcaSteps = kinds.map((k) => Number(k.match(/step (\d+)/)[1]));
  assert.ok(kinds.length >= 3, `the projection refreshed ${kinds.length} times during the run: ${kinds}`);
  assert.deepEqual(pcaSteps, [...pcaSteps].sort((a, b) => a - b), `${kinds}`);
  assert.ok(live.filter((s) => /^PCA/.test(s.kind)).every((s) => s.projPoints === testLimit), 'a projection drawn during the run lacks points');
  const redrawn = (key, canvas) => {
    // The canvas as last seen with each value of `key`; how often it changed with the value.
    const last = new Map();
    for (const s of live) last.set(s[key], s[canvas]);
    const drawings = [...last.values()];
    return { values: drawings.length, changes: drawings.filter((h, k) => k > 0 && h !== drawings[k - 1]).length };
  };
  const proj = redrawn('kind', 'projHash');
  assert.ok(proj.changes >= 0.9 * (proj.values - 1), `the projection canvas changed ${proj.changes} times for ${proj.values} projections`);
  // The loss chart grew with the steps and was redrawn with them.
  const counts = [...new Set(live.map((s) => s.chartPoints))];
  assert.ok(counts.length >= 3, `the loss chart showed ${counts} steps during the run`);
  assert.deepEqual(counts, [...counts].sort((a, b) => a - b));
  const chartDrawn = redrawn('chartPoints', 'chartHash');
  assert.ok(chartDrawn.changes >= 0.9 * (chartDrawn.values - 1), `the loss chart changed ${chartDrawn.changes} times for ${chartDrawn.values} step counts: not redrawn as steps came`);
  console.log(`# during the run: ${live.length} looks, ${kinds.length} projections (${proj.changes} redraws), ${counts.length} step counts (${chartDrawn.changes} chart redraws)`);

  // At the end: the last projection is the final embeddings'; the chart plots every step, the
  // smoothed curve across the plot, one dot per epoch mean.
  await until(async () => (await probe(page)).kind === `PCA, epoch 2, step ${steps} · ${testLimit} points`, 'the final projection', 60_000);
  assert.equal(Number(await page.getAttribute(PROJ, 'data-points')), testLimit);
  assert.equal((await page.evaluate(() => window.__tripletlabStats)).steps, steps);
  assert.equal(await plotted(page), steps);
  const chart = await page.$eval(CHART, (c) => {
    const { data, width, height } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    const near = (i, [r, g, b], tol) => Math.abs(data[i] - r) <= tol && Math.abs(data[i + 1] - g) <= tol && Math.abs(data[i + 2] - b) <= tol;
    let emaColumns = 0;
    const dotColumns = [];
    for (let x = 0; x < width; x++) {
      let ema = false;
      let dot = false;
      for (let y = 0; y < height; y++) {
        const i = (y * width + x) * 4;
        ema ||= near(i, [78, 121, 167], 30);
        dot ||= near(i, [225, 87, 89], 30);
      }
      if (ema && x >= 46 && x <= width - 12) emaColumns++;
      if (dot) dotColumns.push(x);
    }
    const dots = dotColumns.filter((x, k) => k === 0 || x - dotColumns[k - 1] > 2).length;
    return { emaColumns, span: width - 12 - 46 + 1, dots };
  });
  assert.ok(chart.emaColumns >= 0.9 * chart.span, `the smoothed loss covers ${chart.emaColumns} of ${chart.span} columns`);
  assert.equal(chart.dots, 2, 'one dot per epoch mean');
  const rows = await metricsTable(page);
  assert.deepEqual(rows.map((r) => r[0]).filter((r) => r !== 'raw pixels'), ['1', '2', 'final']);
  for (const r of rows.slice(0, 2)) assert.ok(Number.isFinite(Number(r[1])) && Number(r[4]) > 0, `epoch row ${r}`);

  const vecsText = (await download(page, 'Download vecs.tsv')).text;
  const metaText = (await download(page, 'Download meta.tsv')).text;
  const vecs = parseVecs(vecsText);
  const labels = testLabels(testLimit);
  const hoveredPca = await checkHover(page, vecs, labels, 'PCA');

  // projection.tsv: the layout on screen, a '#' line naming it, then one row per test example
  // in meta.tsv's order: the PCA's rows are the CLI's PCA of the downloaded vecs.tsv, exactly.
  const layout = await download(page, 'Download projection.tsv');
  assert.equal(layout.file, 'projection.tsv');
  const [header, ...layoutRows] = layout.text.trimEnd().split('\n');
  assert.equal(header, `# PCA, epoch 2, step ${steps}, ${testLimit} points`);
  const [, ...cliRows] = (await pcaNative(vecsText, metaText)).trimEnd().split('\n');
  assert.equal(layoutRows.length, testLimit);
  // The same arithmetic compiled twice (wasm32 and native, each with its own libm): equal to
  // float rounding, relative to the layout's extent.
  const coords = (rs) => rs.map((r) => r.split('\t').map(Number));
  const [ours, native] = [coords(layoutRows), coords(cliRows)];
  const extent = Math.max(...native.flat().map(Math.abs));
  const worst = Math.max(...ours.flatMap((p, i) => p.map((v, d) => Math.abs(v - native[i][d]))));
  assert.ok(worst <= 1e-5 * extent, `projection.tsv differs from the CLI's PCA of vecs.tsv by ${worst} (extent ${extent}): not the same layout in the same order`);

  // projector.zip: exactly the Projector's files, the same vecs.tsv and meta.tsv, a sprite of
  // the test images (23×23 cells of 28 px for 500 points), the config naming them.
  const bundle = await downloadBytes(page, 'Download for the Projector');
  assert.equal(bundle.file, 'projector.zip');
  const zip = saveFile('projector.zip', bundle.bytes);
  assert.deepEqual(await zipNames(zip), ['vecs.tsv', 'meta.tsv', 'sprite.png', 'projector_config.json', 'README.txt']);
  assert.equal((await zipEntry(zip, 'vecs.tsv')).toString('utf8'), vecsText);
  assert.equal((await zipEntry(zip, 'meta.tsv')).toString('utf8'), metaText);
  const png = await zipEntry(zip, 'sprite.png');
  assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [23 * 28, 23 * 28]);
  const config = JSON.parse((await zipEntry(zip, 'projector_config.json')).toString('utf8'));
  assert.deepEqual(config.embeddings[0].tensorShape, [testLimit, 256]);
  assert.deepEqual(config.embeddings[0].sprite, { imagePath: 'sprite.png', singleImageDim: [28, 28] });

  // t-SNE: it runs, redraws as it goes, and ends with a finite point for every test example.
  const pca = await probe(page);
  await button(page, 'Run t-SNE').click();
  const seen = [];
  for (const t0 = Date.now(); ; ) {
    const s = await probe(page);
    if (s.kind.startsWith('t-SNE, iteration')) seen.push(s);
    if (!s.tsne && s.kind === `${TSNE_DONE} · ${testLimit} points`) break;
    assert.ok(Date.now() - t0 < TRAIN_MS, `t-SNE did not end (${s.kind})`);
  }
  const iterations = new Set(seen.map((s) => s.kind));
  const tsneHashes = new Set(seen.map((s) => s.projHash));
  console.log(`# t-SNE: ${iterations.size} layouts seen, ${tsneHashes.size} drawings`);
  assert.ok(iterations.size >= 2 && tsneHashes.size >= 2, `t-SNE showed ${iterations.size} layouts in ${tsneHashes.size} drawings while it ran`);
  const done = await probe(page);
  assert.equal(done.projPoints, testLimit, 't-SNE ended with non-finite points');
  assert.notEqual(done.projHash, pca.projHash, 'the t-SNE layout was not drawn');
  const hoveredTsne = await checkHover(page, vecs, labels, 't-SNE');
  // The t-SNE layout downloads as what it is, with its parameters.
  const tsneLayout = (await download(page, 'Download projection.tsv')).text.trimEnd().split('\n');
  assert.equal(tsneLayout[0], `# ${TSNE_DONE}, ${testLimit} points`);
  assert.equal(tsneLayout.length, testLimit + 1);
  assert.ok(tsneLayout.slice(1).every((r) => r.split('\t').length === 2 && r.split('\t').every((v) => Number.isFinite(Number(v)))));
  console.log(`# hovered test #${hoveredPca} on the PCA, #${hoveredTsne} on the t-SNE`);
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

/** Loads the page (automatic backend unless `query` says), expects the CPU with `banner`, and
 *  trains there to the end. */
async function trainsOnTheCpu(page, banner, query = '') {
  const errors = watchErrors(page);
  await page.goto(`${server.url}?train_limit=64&test_limit=40&epochs=1${query}`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready', await page.textContent('.banners'));
  assert.match(await page.textContent('.banners'), banner);
  assert.match(await page.textContent('[data-testid=adapter]'), /^adapter: CPU/);
  await button(page, 'Train').click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  assert.equal(await plotted(page), 2);
  assert.deepEqual(errors, [], 'console errors');
}

test('a browser launched without WebGPU (no adapter): the page trains on the CPU, with a banner', { timeout: READY_MS + TRAIN_MS }, async () => {
  // Chromium without the WebGPU switches: navigator.gpu is there, but no adapter is offered
  // (requestAdapter answers null), the common case on a machine whose GPU is blocked.
  const plain = await startBrowser(CHROMIUM_ARGS.filter((a) => !/webgpu|vulkan/i.test(a)));
  try {
    const page = await openPage(plain.browser);
    await trainsOnTheCpu(page, /No WebGPU: WebGPU is present but no adapter is available/);
    const [worker] = page.workers();
    assert.equal(await worker.evaluate(async () => String(await navigator.gpu.requestAdapter())), 'null', 'this browser offers an adapter');
    await page.close();
  } finally {
    await plain.stop();
  }
});

test('WebGPU taken from the worker (no navigator.gpu): the page trains on the CPU, with a banner', { timeout: READY_MS + TRAIN_MS }, async () => {
  const page = await openPage();
  // As in a browser that has no WebGPU at all (Chromium always defines navigator.gpu).
  await patchWorker(page, "Object.defineProperty(WorkerNavigator.prototype, 'gpu', { get: () => undefined });");
  await trainsOnTheCpu(page, /No WebGPU: this browser does not offer WebGPU \(navigator\.gpu is missing\)/);
  await page.close();
});

test('a failing adapter request (requestAdapter rejects): the page trains on the CPU, with a banner', { timeout: READY_MS + TRAIN_MS }, async () => {
  const page = await openPage();
  await patchWorker(page, "GPU.prototype.requestAdapter = () => Promise.reject(new Error('adapter request failed in the test'));");
  await trainsOnTheCpu(page, /No WebGPU: requestAdapter failed: .*adapter request failed in the test/);
  await page.close();
});

test('a device request that fails: the page trains on the CPU, with a banner', { timeout: READY_MS + TRAIN_MS }, async () => {
  const page = await openPage();
  // An adapter (SwiftShader's, used: backend=webgpu) whose device request is refused.
  await patchWorker(page, "GPUAdapter.prototype.requestDevice = () => Promise.reject(new Error('device request refused in the test'));");
  // One line: the reason, not the JS stack behind it.
  await trainsOnTheCpu(page, /WebGPU could not be started \([^()\n]*device request refused in the test\)\. Training runs on the CPU instead/, '&backend=webgpu');
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
  const [trainLimit, testLimit] = [192, 50];
  await page.goto(`${server.url}?backend=webgpu&train_limit=${trainLimit}&test_limit=${testLimit}&epochs=2`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  const train = button(page, 'Train');
  await train.click();
  await page.getByText(/epoch 2\/2 · step [2-5]\//).waitFor({ timeout: TRAIN_MS });
  const [worker] = page.workers();
  await worker.evaluate(() => self.__gpuDevices.at(-1).destroy());
  assert.equal(await waitState(page, ['error', 'done'], TRAIN_MS), 'error');
  await page.getByText(/Training stopped: the GPU device failed: .* \(the GPU device was lost or reset\)/).waitFor({ timeout: 10_000 });
  // The weights of epoch 1's end survived the device: the test embeddings of that epoch end
  // (still downloadable) are theirs, recomputed by the CLI.
  const weights = button(page, 'Download weights');
  await weights.and(page.locator(':enabled')).waitFor({ timeout: 60_000 });
  await page.getByText(`${testLimit} test embeddings from epoch 1, step 6`).waitFor({ timeout: 10_000 });
  const bytes = (await downloadBytes(page, 'Download weights')).bytes;
  const vecs = parseVecs((await download(page, 'Download vecs.tsv')).text);
  const native = await embedNative({ weights: saveFile('weights.safetensors', bytes), trainLimit, testLimit });
  const diff = vecsDiff(vecs, native.vecs);
  assert.ok(diff <= SAME_VECS, `the kept weights are not those of epoch 1's end (max |Δ| ${diff} against its embeddings)`);
  // A new device, on WebGPU again, and a run on it to the end.
  for (let t0 = Date.now(); (await worker.evaluate(() => self.__gpuDevices.length)) < 2; await page.waitForTimeout(250)) {
    assert.ok(Date.now() - t0 < 60_000, 'no second device was requested');
  }
  await train.and(page.locator(':enabled')).waitFor({ timeout: 60_000 });
  assert.match(await page.textContent('[data-testid=adapter]'), /WebGPU/);
  assert.doesNotMatch(await page.textContent('.banners'), /WebGPU could not be started/);
  await train.click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  assert.equal(await plotted(page), 12);
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

test('P×K batches are checked against the loaded training set: the epoch they make, or why none fits', { timeout: READY_MS + TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  // mnist10k's first 12 training images hold fewer than 8 classes with 4 examples each.
  await page.goto(`${server.url}?backend=cpu&sampler=pk&per_class=4&train_limit=12&test_limit=50&epochs=1`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  await page.locator('#per_class-error').waitFor({ timeout: 5000 });
  assert.equal(await page.textContent('#per_class-error'), '1 class of the training set has 4 examples; a batch of 8 classes × 4 needs 8');
  assert.ok(await page.getByRole('button', { name: 'Train', exact: true }).isDisabled());
  // All 8,000: the note under K says what an epoch is; the run's progress says it again.
  await page.fill('input[name=train_limit]', '640');
  await until(async () => (await page.locator('#per_class-error').count()) === 0, 'the refusal to go', ACTION_MS);
  const note = await page.textContent('[data-testid=pk-note]');
  assert.match(note, /^P×K batches: 8 classes × 4 examples; an epoch is (\d+) batches over (\d+) of 640 examples/);
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done');
  assert.equal(await page.textContent('[data-testid=pk-epoch]'), note);
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
  await button(page, 'Train').click();
  await page.getByText('final evaluation…').waitFor({ timeout: TRAIN_MS });
  const t0 = Date.now();
  await button(page, 'Stop').click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done', await page.textContent('.banners'));
  console.log(`# stopped ${Date.now() - t0} ms after Stop during the final evaluation`);
  const banners = await page.textContent('.banners');
  // Stopped after every step, during the evaluation: it did not run to its end.
  assert.match(banners, /Stopped after 32 steps \([01] epochs complete\)/, banners);
  assert.equal(await plotted(page), 32);
  // The downloads hold the test embeddings of the final weights.
  await page.getByText('2000 test embeddings from epoch 1, step 32').waitFor({ timeout: 120_000 });
  // The final kNN against the training set never finished: no kNN figure is shown.
  const finalRow = page.locator('.metrics tr.final td');
  if (await finalRow.count() > 0) {
    assert.equal(await finalRow.nth(2).textContent(), '–');
    assert.equal(await finalRow.nth(3).textContent(), '–');
  }
  const vecs = parseVecs((await download(page, 'Download vecs.tsv')).text);
  assert.equal(vecs.rows, 2000);
  const weights = (await downloadBytes(page, 'Download weights')).bytes;
  const native = await embedNative({ weights: saveFile('weights.safetensors', weights), trainLimit: 8000 });
  const diff = vecsDiff(vecs, native.vecs);
  assert.ok(diff <= SAME_VECS, `vecs.tsv is not the embedding of the weights at the stop (max |Δ| ${diff})`);
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

test('UMAP: its fields are checked where they are typed, Cancel keeps where it got to, and a full run draws every point with its parameters', { timeout: READY_MS + 3 * TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  const testLimit = 600;
  await page.goto(`${server.url}?backend=cpu&train_limit=64&test_limit=${testLimit}&epochs=1&n_neighbors=1`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  const button = (name) => page.getByRole('button', { name, exact: true });
  await button('Train').click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done');
  // The URL's n_neighbors=1 is refused at its field, and UMAP cannot start.
  assert.equal(await page.textContent('[data-field=n_neighbors]'), `1 is out of range: 2 to ${testLimit} (the number of points)`);
  assert.ok(await button('Run UMAP').isDisabled());
  await page.fill('input[name=n_neighbors]', '10');
  await page.fill('input[name=min_dist]', '2');
  assert.equal(await page.textContent('[data-field=min_dist]'), '2 is out of range: 0 to 1');
  assert.ok(await button('Run UMAP').isDisabled());
  await page.fill('input[name=min_dist]', '0.25');
  assert.equal(await page.locator('.field-error').count(), 0);
  // A shared link keeps the UMAP fields as typed.
  const link = new URL(page.url()).searchParams;
  assert.deepEqual([link.get('n_neighbors'), link.get('min_dist')], ['10', '0.25']);
  const pca = await probe(page);
  // Cancel: the progress bar goes, a banner says so, and the layout so far stays.
  await button('Run UMAP').click();
  await until(async () => (await probe(page)).kind.startsWith('UMAP, epoch'), 'UMAP epochs shown', TRAIN_MS);
  await button('Cancel').click();
  await page.getByText('UMAP was cancelled; the projection shows where it got to.').waitFor({ timeout: 60_000 });
  assert.equal(await page.getByLabel('UMAP progress').count(), 0);
  const cancelled = await probe(page);
  assert.match(cancelled.kind, /^UMAP, epoch \d+ of 500 · /);
  assert.ok(!(await button('Run UMAP').isDisabled()));
  // A full run: it redraws as it goes and ends with the fields' parameters.
  await button('Run UMAP').click();
  const seen = new Set();
  const done = `UMAP, n_neighbors 10, min_dist 0.25, 500 epochs · ${testLimit} points`;
  for (const t0 = Date.now(); ; ) {
    const s = await probe(page);
    if (s.kind.startsWith('UMAP, epoch')) seen.add(s.projHash);
    if (s.kind === done) break;
    assert.ok(Date.now() - t0 < TRAIN_MS, `UMAP did not end (${s.kind})`);
  }
  console.log(`# UMAP: ${seen.size} drawings while it ran`);
  assert.ok(seen.size >= 2, `UMAP showed ${seen.size} drawings while it ran`);
  const end = await probe(page);
  assert.equal(end.projPoints, testLimit, 'UMAP ended with non-finite points');
  assert.notEqual(end.projHash, pca.projHash, 'the UMAP layout was not drawn');
  const layout = (await download(page, 'Download projection.tsv')).text.trimEnd().split('\n');
  assert.equal(layout[0], `# ${done.replace(' · ', ', ')}`);
  assert.equal(layout.length, testLimit + 1);
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
});

test('ask the embedding: a digit drawn mid-run (paused) and a test image after it get 8 neighbours, a vote and a place; a confusion cell lists its images', { timeout: READY_MS + 2 * TRAIN_MS }, async () => {
  const page = await openPage();
  const errors = watchErrors(page);
  // 64 steps an epoch, test embeddings every 2 steps: questions can be asked from step 2 on.
  await page.goto(`${server.url}?backend=cpu&train_limit=2048&test_limit=200&epochs=2&embed_every=2`);
  assert.equal(await waitState(page, ['ready', 'error'], READY_MS), 'ready');
  const button = (name) => page.getByRole('button', { name, exact: true });
  await button('Train').click();
  await until(async () => (await page.textContent('[data-testid=projection-kind]')).startsWith('PCA'), 'the first embeddings', TRAIN_MS);
  await button('Pause').click();
  assert.equal(await waitState(page, ['paused', 'done', 'error'], TRAIN_MS), 'paused');
  const answer = () => page.textContent('[data-testid=query-answer]');
  // A "1" drawn with the mouse: asked when the stroke ends.
  await page.locator('[data-testid=pad]').scrollIntoViewIfNeeded();
  const pad = await page.locator('[data-testid=pad]').boundingBox();
  await page.mouse.move(pad.x + pad.width * 0.5, pad.y + pad.height * 0.2);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(pad.x + pad.width * 0.5, pad.y + pad.height * (0.2 + 0.06 * i));
  await page.mouse.up();
  await until(async () => (await answer()).includes('kNN vote of the 8 nearest training examples'), 'the drawing\'s answer', TRAIN_MS);
  const cosines = (await page.$$eval('.matches li', (li) => li.map((l) => Number(l.textContent.split(' · ')[1]))));
  assert.equal(cosines.length, 8);
  assert.ok(cosines.every((c, i) => c <= 1 + 1e-6 && c >= -1 && (i === 0 || c <= cosines[i - 1])), `cosines ${cosines}`);
  // Answered while paused, with the weights of the step the run stands at.
  const [, midStep] = (await answer()).match(/Embedded with the weights at epoch 1, step (\d+)\./);
  assert.ok(Number(midStep) >= 2 && Number(midStep) < 64, `asked mid-epoch, answered at step ${midStep}`);
  assert.equal(await page.getAttribute('.app', 'data-state'), 'paused');
  assert.match(await page.textContent('[data-testid=query-place]'), /on the PCA is its exact place/);
  // What the net saw is the stroke, made MNIST-style: ink in the middle, none at the border.
  const seen = await page.$eval('canvas[aria-label^="What the net saw"]', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const at = (x, y) => d[(y * c.width + x) * 4];
    return { centre: at(c.width / 2, c.height / 2), corner: at(1, 1) };
  });
  assert.ok(seen.centre > 128 && seen.corner === 0, `what the net saw: ${JSON.stringify(seen)}`);
  await button('Resume').click();
  assert.equal(await waitState(page, ['done', 'error'], TRAIN_MS), 'done');
  // The mining chart has every step the loss chart has, and says its smoothed shares.
  const minePoints = Number(await page.getAttribute('.mining canvas', 'data-points'));
  assert.equal(minePoints, 128);
  assert.equal(minePoints, Number(await page.getAttribute('.chart canvas', 'data-points')));
  assert.match(await page.textContent('[data-testid=mining-latest]'), /^smoothed: semi-hard \d+\.\d% · fallback \d+\.\d% · active \d+\.\d% · d\(a,p\) \d\.\d{3} · d\(a,n\) \d\.\d{3}$/);
  assert.equal(await page.locator('.mining ul.collapse li').count(), 2, 'one collapse line per epoch');
  // The triplets panel: the last batch, mined as the loss mines; four triplets from different
  // anchors, each the anchor's class twice then another class, drawn, with their distances.
  assert.match(await page.textContent('[data-testid=triplets-caption]'), /^The batch of epoch 2, step 64, embedded again with the weights after that step \(dropout off\) and mined as the loss mines: of its (\d+) terms, \d+ semi-hard, \d+ fallback; \d+ active/);
  const triplets = await page.$$eval('li.triplet', (rows) => rows.map((r) => ({
    labels: r.querySelector('.triplet-labels').textContent,
    figures: r.querySelector('.triplet-figures').textContent,
    ink: (() => {
      const c = r.querySelector('canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      // Each of the three 56-px images on the white canvas: an MNIST digit is mostly black
      // background with some white ink (an image not drawn is all white).
      return [0, 1, 2].map((k) => {
        let dark = 0, ink = 0;
        for (let y = 0; y < c.height; y++) {
          for (let x = k * 66; x < k * 66 + 56; x++) {
            const v = d[(y * c.width + x) * 4];
            if (v < 64) dark++;
            if (v > 192) ink++;
          }
        }
        return { dark: dark / (56 * 56), ink: ink / (56 * 56) };
      });
    })(),
  })));
  assert.equal(triplets.length, 4, JSON.stringify(triplets));
  const anchors = new Set();
  for (const t of triplets) {
    const m = t.labels.match(/^anchor (\d) \(#(\d+)\) · positive (\d) \(#(\d+)\) · negative (\d) \(#(\d+)\)$/);
    assert.ok(m, t.labels);
    assert.equal(m[1], m[3], `the positive is the anchor's class: ${t.labels}`);
    assert.notEqual(m[1], m[5], `the negative is another class: ${t.labels}`);
    anchors.add(m[2]);
    assert.match(t.figures, /^d\(a,p\) \d\.\d{3} [<>=] d\(a,n\) \d\.\d{3} · (semi-hard|easy|fallback): .*adds (0|\d\.\d{3})$/);
    assert.ok(t.ink.every((v) => v.dark > 0.4 && v.ink > 0.03), `three digits drawn: ${JSON.stringify(t.ink)}`);
  }
  assert.equal(anchors.size, 4, 'four different anchors');
  // After the run, a test image by number: its true label is said, and the final weights used.
  const labels = testLabels(200);
  await page.fill('input[name=test_image]', '3');
  await button('Ask').click();
  await until(async () => (await answer()).includes(`(it is a ${labels[3]})`), 'the test image\'s answer', TRAIN_MS);
  assert.match(await answer(), /Embedded with the weights at epoch 2, step 64\./);
  await page.fill('input[name=test_image]', '200');
  assert.ok(await button('Ask').isDisabled(), 'test image #200 of 200 is refused');
  // The confusion matrix: a cell's count is the number of images it lists.
  const cell = page.locator('.heat button.cell').first();
  const count = Number(await cell.textContent());
  await cell.click();
  assert.equal(Number(await page.getAttribute('[data-testid=cell-images]', 'data-items')), count);
  const counts = await page.$$eval('.heat button.cell', (b) => b.map((x) => Number(x.textContent)));
  assert.equal(counts.reduce((a, b) => a + b, 0), 200, 'every test image is counted once');
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
  // Everything the run shows, the raw-pixel row included (it comes after the run's end).
  await until(async () => (await page.textContent('.metrics tbody')).includes('raw pixels'), 'the raw-pixel row', TRAIN_MS);
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
  assert.equal(await plotted(page), 1, 'the step of 4096 was not taken');
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
