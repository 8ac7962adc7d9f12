// A tiny static file server for dist/ (tests and benchmark only).
//   node serve.mjs <dir> [port]   -> prints "listening http://127.0.0.1:<port>/" once ready.
// Port 0 (the default) picks a free port. Serves files as they are: *.gz is sent as
// application/gzip without Content-Encoding, exactly like a plain static host would.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.gz': 'application/gzip',
  '.md': 'text/markdown; charset=utf-8',
};

/**
 * A request handler serving the files under `root` (a directory request serves its index.html),
 * with `headers` added to every response and `routes` (path → bytes) served from memory.
 * Also used by bench/web/bench-tfjs.mjs.
 */
export function staticHandler(root, { headers = {}, routes = {} } = {}) {
  root = resolve(root);
  return async (req, res) => {
    try {
      const url = new URL(req.url, 'http://localhost');
      const mem = routes[url.pathname];
      if (mem) {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': mem.length,
          'cache-control': 'no-store',
          ...headers,
        });
        res.end(req.method === 'HEAD' ? undefined : mem);
        return;
      }
      let path = normalize(join(root, decodeURIComponent(url.pathname)));
      if (path !== root && !path.startsWith(root + sep)) {
        res.writeHead(403).end('forbidden');
        return;
      }
      let info = await stat(path).catch(() => null);
      if (info?.isDirectory()) {
        path = join(path, 'index.html');
        info = await stat(path).catch(() => null);
      }
      if (!info) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      const body = await readFile(path);
      res.writeHead(200, {
        'content-type': types[extname(path)] ?? 'application/octet-stream',
        'content-length': body.length,
        'cache-control': 'no-store',
        ...headers,
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (e) {
      res.writeHead(500).end(String(e));
    }
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[3] ?? 0);
  const server = createServer(staticHandler(process.argv[2] ?? 'dist'));
  server.listen(port, '127.0.0.1', () => {
    console.log(`listening http://127.0.0.1:${server.address().port}/`);
  });
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => server.close(() => process.exit(0)));
  }
}
