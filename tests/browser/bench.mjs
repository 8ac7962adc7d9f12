// Browser benchmark (see scripts/bench-web.sh). For WebGPU and the CPU fallback:
//  - page load → ready;
//  - a short training run (batch 32): the page's own steady-state ms/step, and the page's main
//    thread while it trains: long tasks (> 50 ms, PerformanceObserver 'longtask') from "ready"
//    to "done": count, worst, total blocking time (each task's time over 50 ms, summed);
//  - the delay from pressing Stop to the worker's answer and to the run's end, mid-step and
//    during the final evaluation (measured in the page: the click's timestamp to the mutations);
//  - UMAP and t-SNE of 2,000 and 10,000 test embeddings in the page's worker;
//  - the WebGPU calls of the worker per training step and per 100 embedded images, beside
//    ms/step (webgpu-count.mjs); with BENCH_BASELINE_DIST=<another built dist>, for that dist
//    too, side by side (before/after in one run).
//   node bench.mjs [train_limit=512]
import { clickStop, dist, startBrowser, startServer, waitState, watchErrors } from './harness.mjs';
import { countsTable, measureCounts } from './webgpu-count.mjs';

const trainLimit = Number(process.argv[2] ?? 512);
// BENCH_PARTS=paths,fashion,block,layouts,counts (all by default) runs only those parts.
const parts = (process.env.BENCH_PARTS ?? 'paths,fashion,block,layouts,counts').split(',');
const part = (name) => parts.includes(name);
const server = await startServer();
const chrome = await startBrowser();
const results = [];
let counts = null;

/** Collects long tasks from the first script on. */
function observeLongTasks() {
  window.__longTasks = [];
  // When the controls are first on screen (ms since navigation).
  new MutationObserver((_, obs) => {
    if (document.querySelector('form.controls button')) {
      window.__controlsAt = performance.now();
      obs.disconnect();
    }
  }).observe(document, { childList: true, subtree: true });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
}

/** The page's long tasks since `from` (its clock): count, worst, total blocking time. */
function longTasksSince(page, from) {
  return page.evaluate((from) => {
    const tasks = window.__longTasks.filter((t) => t.start >= from);
    return {
      count: tasks.length,
      worstMs: Math.round(Math.max(0, ...tasks.map((t) => t.duration))),
      totalBlockingMs: Math.round(tasks.reduce((s, t) => s + Math.max(0, t.duration - 50), 0)),
    };
  }, from);
}

async function ready(page, q) {
  const t0 = Date.now();
  await page.goto(server.url + q);
  const state = await waitState(page, ['ready', 'error'], 300_000);
  return { state, readyMs: Date.now() - t0 };
}

try {
  for (const backend of part('paths') ? ['webgpu', 'cpu'] : []) {
    const page = await chrome.browser.newPage();
    await page.addInitScript(observeLongTasks);
    const errors = watchErrors(page);
    const q = `?train_limit=${trainLimit}&test_limit=100&epochs=1&batch=32&backend=${backend}`;
    const { state, readyMs } = await ready(page, q);
    const adapter = await page.textContent('[data-testid=adapter]');
    const controlsPaintedMs = Math.round(await page.evaluate(() => window.__controlsAt));
    if (state !== 'ready') {
      results.push({ backend, adapter, error: await page.textContent('.banners') });
      continue;
    }
    const from = await page.evaluate(() => performance.now());
    await page.getByRole('button', { name: 'Train', exact: true }).click();
    await waitState(page, ['done', 'error'], 1_800_000);
    const longTasks = await longTasksSince(page, from);
    const stats = await page.evaluate(() => window.__tripletlabStats ?? null);
    const text = await page.textContent('.progress .numbers');

    // Stop mid-step: a longer run, stopped once it is well under way.
    await page.goto(server.url + `?train_limit=${4 * trainLimit}&test_limit=100&epochs=1&batch=32&backend=${backend}`);
    await waitState(page, ['ready'], 300_000);
    await page.getByRole('button', { name: 'Train', exact: true }).click();
    await page.getByText(/step ([3-9]|\d\d+)\//).waitFor({ timeout: 600_000 });
    const stopMidStep = await clickStop(page);

    // Stop during the final evaluation (kNN of the test set against the training set).
    await page.goto(server.url + `?train_limit=${trainLimit}&epochs=1&batch=32&backend=${backend}`);
    await waitState(page, ['ready'], 300_000);
    await page.getByRole('button', { name: 'Train', exact: true }).click();
    await page.getByText('final evaluation…').waitFor({ timeout: 1_800_000 });
    const stopFinalEval = await clickStop(page);

    results.push({ backend, adapter, controlsPaintedMs, readyMs, ...stats, progress: text, mainThreadLongTasks: longTasks, stopMidStep, stopFinalEval, consoleErrors: errors });
    await page.close();
  }

  // The user's full-size case: Fashion-MNIST (60k train, 10k test), one epoch on the CPU path:
  // main-thread long tasks from Train to the end, and the time of the evaluation at its end
  // (embedding 10k test and 60k training images, P@1/MAP@R within the test set, kNN of 10k
  // test queries against 60k training embeddings).
  if (part('fashion') && process.env.BENCH_FULL !== '0') {
    const page = await chrome.browser.newPage();
    await page.addInitScript(observeLongTasks);
    const { readyMs } = await ready(page, '?dataset=fashion&epochs=1&batch=32&backend=cpu');
    const from = await page.evaluate(() => performance.now());
    const t0 = Date.now();
    await page.getByRole('button', { name: 'Train', exact: true }).click();
    await page.getByText('final evaluation…').waitFor({ timeout: 3_600_000 });
    const trainedS = (Date.now() - t0) / 1000;
    await waitState(page, ['done', 'error'], 3_600_000);
    const finalEvaluationS = (Date.now() - t0) / 1000 - trainedS;
    const longTasks = await longTasksSince(page, from);
    results.push({ fashionFull: { readyMs, trainedS, finalEvaluationS, mainThreadLongTasks: longTasks, progress: await page.textContent('.progress .numbers') } });
    await page.close();
  }

  // A background tab: Chromium throttles a hidden page's timers and animation frames, not its
  // dedicated workers; the worker's loop yields through a MessageChannel and never waits for the
  // page. Headless Chromium keeps every tab "visible", so this blocks the page's main thread
  // outright for 5 s in the middle of a CPU run (20,000 Fashion-MNIST images, so it outlasts
  // the block) and counts, on the worker's own clock (the read-back marks it reports), the
  // steps it took meanwhile, against its pace in the 2 s before.
  if (part('block')) {
    const page = await chrome.browser.newPage();
    await page.goto(server.url + '?dataset=fashion&train_limit=20000&test_limit=100&epochs=1&batch=32&backend=cpu');
    await waitState(page, ['ready'], 300_000);
    const stepNow = () => page.textContent('.progress .numbers').then((t) => Number(t.match(/step (\d+)\//)[1]));
    await page.getByRole('button', { name: 'Train', exact: true }).click();
    await page.getByText(/step (1\d|[2-9]\d|\d{3,})\//).waitFor({ timeout: 600_000 });
    const s0 = await stepNow();
    await page.waitForTimeout(2000);
    const s1 = await stepNow();
    const blockedMs = await page.evaluate(() => {
      const t0 = performance.now();
      while (performance.now() - t0 < 5000);
      return performance.now() - t0;
    });
    await page.waitForTimeout(2000); // the queued events are delivered
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await waitState(page, ['done', 'error'], 600_000);
    const marks = await page.evaluate(() => window.__tripletlabStats?.marks ?? []);
    // The worker's clock at s0 and s1 (the first mark at or past each), then 5 s on from s1.
    const at = (step) => (marks.find(([s]) => s >= step) ?? [step, NaN])[1];
    const [e0, e1] = [at(s0), at(s1)];
    const msPerStepBefore = ((e1 - e0) * 1000) / Math.max(1, s1 - s0);
    const inWindow = marks.filter(([, e]) => e > e1 && e <= e1 + blockedMs / 1000);
    const stepsWhileBlocked = inWindow.length ? inWindow.at(-1)[0] - s1 : 0;
    const gaps = marks.slice(1).map(([, e], i) => e - marks[i][1]);
    results.push({ mainThreadBlocked: {
      blockedMs: Math.round(blockedMs),
      stepsWhileBlocked,
      stepsAtThePaceBefore: Math.round(blockedMs / msPerStepBefore),
      msPerStepBefore: Math.round(msPerStepBefore),
      longestGapBetweenReadsMs: Math.round(1000 * Math.max(0, ...gaps)),
    } });
    await page.close();
  }
  // The layouts in the page (its worker, the CPU path): t-SNE and UMAP of 2,000 and 10,000 test
  // embeddings (a 1-epoch run on 64 examples embeds them), from the click to the finished
  // layout, and the page's long tasks meanwhile.
  for (const points of part('layouts') ? [2000, 10000] : []) {
    const dataset = points > 2000 ? 'fashion' : 'mnist';
    const page = await chrome.browser.newPage();
    await page.addInitScript(observeLongTasks);
    await ready(page, `?backend=cpu&dataset=${dataset}&train_limit=64&test_limit=${points}&epochs=1`);
    await page.getByRole('button', { name: 'Train', exact: true }).click();
    await waitState(page, ['done', 'error'], 600_000);
    const layouts = {};
    for (const [button, done] of [['Run UMAP', /^UMAP, n_neighbors 15, min_dist 0\.1, \d+ epochs/], ['Run t-SNE', /^t-SNE, perplexity 30, \d+ iterations/]]) {
      const from = await page.evaluate(() => performance.now());
      const t0 = Date.now();
      await page.getByRole('button', { name: button, exact: true }).click();
      for (;;) {
        const kind = await page.textContent('[data-testid=projection-kind]');
        if (done.test(kind)) break;
        if (Date.now() - t0 > 900_000) throw new Error(`${button} on ${points} points did not end: ${kind}`);
        await page.waitForTimeout(100);
      }
      layouts[button.replace('Run ', '')] = { seconds: (Date.now() - t0) / 1000, mainThreadLongTasks: await longTasksSince(page, from) };
    }
    results.push({ layoutsInThePage: { points, ...layouts } });
    await page.close();
  }

  // The WebGPU calls per step and per 100 embedded images (webgpu-count.mjs), of this dist and,
  // with BENCH_BASELINE_DIST, of that one first (its own server, the same browser).
  if (part('counts')) {
    const columns = [];
    const baseline = process.env.BENCH_BASELINE_DIST;
    if (baseline) {
      const other = await startServer(baseline);
      try {
        columns.push(['before', await measureCounts(chrome.browser, other.url)]);
      } finally {
        await other.stop();
      }
    }
    columns.push([baseline ? 'after' : 'this', await measureCounts(chrome.browser, server.url)]);
    const dists = baseline ? { before: baseline, after: dist } : { this: dist };
    results.push({ webgpuCalls: Object.fromEntries(columns), dists });
    counts = countsTable(columns);
  }
} finally {
  await chrome.stop();
  await server.stop();
}
for (const r of results) {
  console.log(JSON.stringify(r));
}
if (counts) {
  console.log(counts);
}
