// Browser benchmark (see scripts/bench-web.sh). For WebGPU and the CPU fallback:
//  - page load → ready;
//  - a short training run (batch 32): the page's own steady-state ms/step, and the page's main
//    thread while it trains: long tasks (> 50 ms, PerformanceObserver 'longtask') from "ready"
//    to "done": count, worst, total blocking time (each task's time over 50 ms, summed);
//  - the delay from pressing Stop to the worker's answer and to the run's end, mid-step and
//    during the final evaluation (measured in the page: the click's timestamp to the mutations).
//   node bench.mjs [train_limit=512]
import { clickStop, startBrowser, startServer, waitState, watchErrors } from './harness.mjs';

const trainLimit = Number(process.argv[2] ?? 512);
const server = await startServer();
const chrome = await startBrowser();
const results = [];

/** Collects long tasks from the first script on. */
function observeLongTasks() {
  window.__longTasks = [];
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
  for (const backend of ['webgpu', 'cpu']) {
    const page = await chrome.browser.newPage();
    await page.addInitScript(observeLongTasks);
    const errors = watchErrors(page);
    const q = `?train_limit=${trainLimit}&test_limit=100&epochs=1&batch=32&backend=${backend}`;
    const { state, readyMs } = await ready(page, q);
    const adapter = await page.textContent('[data-testid=adapter]');
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

    results.push({ backend, adapter, readyMs, ...stats, progress: text, mainThreadLongTasks: longTasks, stopMidStep, stopFinalEval, consoleErrors: errors });
    await page.close();
  }

  // The user's full-size case: Fashion-MNIST (60k train, 10k test), one epoch on the CPU path:
  // main-thread long tasks from Train to the end, and the time of the evaluation at its end
  // (embedding 10k test and 60k training images, P@1/MAP@R within the test set, kNN of 10k
  // test queries against 60k training embeddings).
  if (process.env.BENCH_FULL !== '0') {
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

  // A background tab: the CPU run again with the page hidden behind a second tab for the whole
  // run (checked: document.visibilityState), beside the same run in a visible tab.
  const hiddenRun = async (hide) => {
    const page = await chrome.browser.newPage();
    await page.goto(server.url + `?train_limit=${4 * trainLimit}&test_limit=100&epochs=1&batch=32&backend=cpu`);
    await waitState(page, ['ready'], 300_000);
    const cover = hide ? await chrome.browser.newPage() : null;
    if (cover) await cover.bringToFront();
    else await page.bringToFront();
    const visibility = await page.evaluate(() => document.visibilityState);
    await page.evaluate(() => document.querySelector('form.controls').requestSubmit());
    await waitState(page, ['done', 'error'], 1_800_000);
    const stats = await page.evaluate(() => window.__tripletlabStats ?? null);
    const after = await page.evaluate(() => document.visibilityState);
    await cover?.close();
    await page.close();
    return { visibility: `${visibility} → ${after}`, msPerStep: stats?.steadyMsPerStep };
  };
  results.push({ backgroundTab: { visible: await hiddenRun(false), hidden: await hiddenRun(true) } });
} finally {
  await chrome.stop();
  await server.stop();
}
for (const r of results) {
  console.log(JSON.stringify(r));
}
