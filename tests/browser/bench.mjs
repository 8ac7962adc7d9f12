// Browser benchmark (see scripts/bench-web.sh): for WebGPU and the CPU fallback, page load →
// ready, then a short training run (batch 32) and the page's own steady-state ms/step.
//   node bench.mjs [train_limit=512]
import { startBrowser, startServer, waitState, watchErrors } from './harness.mjs';

const trainLimit = Number(process.argv[2] ?? 512);
const server = await startServer();
const chrome = await startBrowser();
const results = [];
try {
  for (const backend of ['webgpu', 'cpu']) {
    const page = await chrome.browser.newPage();
    const errors = watchErrors(page);
    const q = `?train_limit=${trainLimit}&test_limit=100&epochs=1&batch=32&backend=${backend}`;
    const t0 = Date.now();
    await page.goto(server.url + q);
    const state = await waitState(page, ['ready', 'error'], 300_000);
    const readyMs = Date.now() - t0;
    const adapter = await page.textContent('[data-testid=adapter]');
    if (state !== 'ready') {
      results.push({ backend, adapter, error: await page.textContent('.banners') });
      continue;
    }
    await page.getByRole('button', { name: 'Train', exact: true }).click();
    await waitState(page, ['done', 'error'], 1_800_000);
    const stats = await page.evaluate(() => window.__tripletlabStats ?? null);
    const text = await page.textContent('.progress .numbers');
    results.push({ backend, adapter, readyMs, ...stats, progress: text, consoleErrors: errors });
    await page.close();
  }
} finally {
  await chrome.stop();
  await server.stop();
}
for (const r of results) {
  console.log(JSON.stringify(r));
}
