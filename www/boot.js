// Starts the wasm app. A separate file (not an inline script) so the page's
// Content-Security-Policy can forbid inline scripts. Trunk is configured with
// filehash = false, so the names below are stable.
import init from './tripletlab.js';

try {
  await init({ module_or_path: new URL('./tripletlab_bg.wasm', import.meta.url) });
} catch (e) {
  const el = document.getElementById('fatal');
  if (el) {
    el.textContent = 'tripletlab could not start: ' + e;
    el.hidden = false;
  }
  const root = document.querySelector('[data-state]');
  if (root) root.setAttribute('data-state', 'error');
  throw e;
}
