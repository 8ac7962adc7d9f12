// Shared by the e2e test and the benchmark: start the static server and Chromium, and stop
// both (by pid / handle) afterwards.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '..', '..');
export const dist = resolve(process.env.TRIPLETLAB_DIST ?? join(repo, 'dist'));

/** Chromium flags that give WebGPU on SwiftShader in a headless container. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan,WebGPU',
  '--use-webgpu-adapter=swiftshader',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumPath() {
  for (const p of [process.env.CHROMIUM, '/usr/lib/chromium/chromium', '/usr/bin/chromium']) {
    if (p && existsSync(p)) return p;
  }
  throw new Error('Chromium not found (run scripts/setup-web.sh, or set CHROMIUM)');
}

/** Starts serve.mjs on a free port; resolves to { url, stop }. */
export async function startServer(dir = dist) {
  if (!existsSync(join(dir, 'index.html'))) {
    throw new Error(`${dir}/index.html is missing: build the page first (trunk build)`);
  }
  const child = spawn(process.execPath, [join(here, 'serve.mjs'), dir, '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('static server did not start')), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
    child.on('exit', (code) => fail(new Error(`static server exited (${code})`)));
  });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const gone = new Promise((ok) => child.on('exit', ok));
    process.kill(child.pid, 'SIGTERM');
    const t = setTimeout(() => child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
  };
  return { url, stop, pid: child.pid };
}

/** Launches headless Chromium with a fresh profile (with `args`, by default the WebGPU ones);
 *  resolves to { browser, stop }. */
export async function startBrowser(args = CHROMIUM_ARGS) {
  const profile = mkdtempSync(join(tmpdir(), 'tripletlab-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    args,
    acceptDownloads: true,
    viewport: { width: 1400, height: 1000 },
  });
  const stop = async () => {
    await browser.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return { browser, stop };
}

/** Collects console errors and uncaught page errors of `page`. */
export function watchErrors(page) {
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

/** Waits until the app root's data-state is one of `states`. */
export async function waitState(page, states, timeout) {
  const list = Array.isArray(states) ? states : [states];
  await page.waitForFunction(
    (want) => want.includes(document.querySelector('.app[data-state]')?.getAttribute('data-state')),
    list,
    { timeout, polling: 250 },
  );
  return page.getAttribute('.app[data-state]', 'data-state');
}

/** Clicks Stop; resolves to ms from the click to the worker's answer (`data-stop="seen"`:
 *  nothing new starts; null if the run ended first) and to the run's end (the next
 *  data-state change: the device has finished what was already sent to it), and to the steps
 *  the loss chart had plotted at the click (`stepsAtClick`). */
export async function clickStop(page) {
  return page.evaluate(() => new Promise((resolve) => {
    const root = document.querySelector('.app[data-state]');
    const before = root.getAttribute('data-state');
    const button = [...document.querySelectorAll('button')].find((b) => b.textContent.trim() === 'Stop');
    let t0;
    let seenMs = null;
    new MutationObserver((_, obs) => {
      const now = performance.now() - t0;
      if (seenMs === null && root.querySelector('.progress')?.getAttribute('data-stop') === 'seen') seenMs = now;
      if (root.getAttribute('data-state') !== before) {
        obs.disconnect();
        resolve({ seenMs: seenMs === null ? null : Math.round(seenMs), endedMs: Math.round(now), stepsAtClick });
      }
    }).observe(root, { attributes: true, subtree: true, attributeFilter: ['data-state', 'data-stop'] });
    const stepsAtClick = Number(root.querySelector('section.chart canvas')?.getAttribute('data-points'));
    t0 = performance.now();
    button.click();
  }));
}

/** Runs `js` in the page's worker before its wasm starts (prepended to trunk's loader script,
 *  tripletlab-worker_loader.js, a classic worker script): how the e2e tests take WebGPU away
 *  from the worker or make it fail, and how the benchmark counts its WebGPU calls. */
export async function patchWorker(page, js) {
  await page.route('**/tripletlab-worker_loader.js', async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, body: `${js}\n${await response.text()}` });
  });
}
