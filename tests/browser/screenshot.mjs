// The README's picture of the page (docs/page.png): the built page (dist/, `trunk build`) in
// headless Chromium, three epochs of the bundled MNIST on the CPU path, then a query by test
// image; the top of the page (settings, projection, loss and metrics) is captured.
//   node tests/browser/screenshot.mjs [out=docs/page.png]
import { join } from 'node:path';
import { repo, startBrowser, startServer, waitState, watchErrors } from './harness.mjs';

const out = process.argv[2] ?? join(repo, 'docs', 'page.png');
const server = await startServer();
const chrome = await startBrowser();
try {
  const page = await chrome.browser.newPage();
  const errors = watchErrors(page);
  await page.setViewportSize({ width: 1400, height: 1050 });
  await page.goto(`${server.url}?backend=cpu&epochs=3&test_limit=1000`);
  await waitState(page, 'ready', 120000);
  // The notice that the CPU was asked for is not what the picture is about.
  await page.locator('.banners button').first().click();
  await page.click('button[type=submit]');
  await waitState(page, 'done', 600000);
  await page.getByRole('button', { name: 'Ask', exact: true }).click();
  await page.waitForSelector('ol.matches li', { timeout: 60000 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: out });
  if (errors.length) throw new Error(errors.join('\n'));
  console.log(`wrote ${out}`);
} finally {
  await chrome.stop();
  await server.stop();
}
