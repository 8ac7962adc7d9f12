// The e2e test's independent reference: the native `tripletlab` CLI (built by
// scripts/test-web.sh before the e2e run) embeds and scores what the page downloaded, and the
// untrained net of the same seed, so the page's files are checked against a recomputation, not
// against the page itself. Also: parsers for the files the page writes (vecs.tsv, meta.tsv,
// safetensors) and for the MNIST IDX files the page trains on.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { repo } from './harness.mjs';

const run = promisify(execFile);

/** The CLI: $TRIPLETLAB_BIN, else the debug build in $CARGO_TARGET_DIR (default
 *  ~/.cache/tripletlab/target, as the Makefile sets it). */
export const CLI = process.env.TRIPLETLAB_BIN
  ?? join(process.env.CARGO_TARGET_DIR ?? join(homedir(), '.cache', 'tripletlab', 'target'), 'debug', 'tripletlab');

let scratch;
/** A fresh folder under one scratch folder that `cleanup` removes. */
export function tempDir(name) {
  scratch ??= mkdtempSync(join(tmpdir(), 'tripletlab-e2e-'));
  const dir = mkdtempSync(join(scratch, `${name}-`));
  return dir;
}

export function cleanup() {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}

/** Runs the CLI; resolves to its stdout, rejects with its stderr. */
export async function cli(args) {
  if (!existsSync(CLI)) {
    throw new Error(`${CLI} is missing: build it (cargo build --bin tripletlab) or set TRIPLETLAB_BIN`);
  }
  try {
    const { stdout } = await run(CLI, args, { timeout: 600_000, maxBuffer: 64 << 20 });
    return stdout;
  } catch (e) {
    throw new Error(`tripletlab ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

/** `tripletlab embed`: the embeddings and metrics of `weights` (a file), or of the untrained
 *  net of `seed` when `weights` is absent, on the first `trainLimit` / `testLimit` examples.
 *  Resolves to { vecs, labels, metrics, dir }. */
export async function embedNative({ weights, seed, trainLimit, testLimit, dataset = 'mnist', batch }) {
  const out = tempDir(weights ? 'embed-weights' : `embed-seed${seed}`);
  const args = ['embed', '--dataset', dataset, '--out', out];
  if (weights) args.push('--weights', weights);
  if (seed !== undefined) args.push('--seed', String(seed));
  if (trainLimit !== undefined) args.push('--train-limit', String(trainLimit));
  if (testLimit !== undefined) args.push('--test-limit', String(testLimit));
  if (batch !== undefined) args.push('--batch', String(batch));
  await cli(args);
  return {
    vecs: parseVecs(readFileSync(join(out, 'vecs.tsv'), 'utf8')),
    labels: parseMeta(readFileSync(join(out, 'meta.tsv'), 'utf8')),
    metrics: JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')),
    dir: out,
  };
}

/** `tripletlab eval` of a vecs.tsv / meta.tsv pair given as text: P@1 and MAP@R within it. */
export async function evalNative(vecsText, metaText) {
  const dir = tempDir('eval');
  writeFileSync(join(dir, 'vecs.tsv'), vecsText);
  writeFileSync(join(dir, 'meta.tsv'), metaText);
  return JSON.parse(await cli(['eval', '--vecs', join(dir, 'vecs.tsv'), '--meta', join(dir, 'meta.tsv')]));
}

/** `tripletlab project --method pca` of a vecs.tsv / meta.tsv pair given as text: the layout
 *  file's text. */
export async function pcaNative(vecsText, metaText) {
  const dir = tempDir('project');
  writeFileSync(join(dir, 'vecs.tsv'), vecsText);
  writeFileSync(join(dir, 'meta.tsv'), metaText);
  const out = join(dir, 'layout.tsv');
  await cli(['project', '--method', 'pca', '--vecs', join(dir, 'vecs.tsv'), '--meta', join(dir, 'meta.tsv'), '--out', out]);
  return readFileSync(out, 'utf8');
}

/** The entries of a zip file (`unzip -Z1`), and one entry's bytes (`unzip -p`). */
export async function zipNames(path) {
  const { stdout } = await run('unzip', ['-Z1', path]);
  return stdout.trim().split('\n');
}

export async function zipEntry(path, name) {
  const { stdout } = await run('unzip', ['-p', path, name], { encoding: 'buffer', maxBuffer: 256 << 20 });
  return stdout;
}

/** Writes `bytes` to a scratch file; returns its path. */
export function saveFile(name, bytes) {
  const dir = tempDir('file');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** vecs.tsv as { rows, dim, data } (row-major numbers). */
export function parseVecs(text) {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const dim = lines.length ? lines[0].split('\t').length : 0;
  const data = new Float64Array(lines.length * dim);
  lines.forEach((line, i) => {
    const vals = line.split('\t').map(Number);
    if (vals.length !== dim) throw new Error(`vecs.tsv row ${i} has ${vals.length} values, not ${dim}`);
    data.set(vals, i * dim);
  });
  return { rows: lines.length, dim, data };
}

export function parseMeta(text) {
  return text.split('\n').filter((l) => l.length > 0).map(Number);
}

/** The largest absolute difference between two parsed vecs.tsv (shapes must agree). */
export function vecsDiff(a, b) {
  if (a.rows !== b.rows || a.dim !== b.dim) {
    throw new Error(`shapes differ: ${a.rows}×${a.dim} vs ${b.rows}×${b.dim}`);
  }
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i] - b.data[i]));
  return max;
}

/** A safetensors file as Map(name → { shape, values: Float32Array }). */
export function parseSafetensors(bytes) {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n;
  const out = new Map();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`${name}: dtype ${t.dtype}`);
    const [b, e] = t.data_offsets;
    const slice = bytes.subarray(base + b, base + e);
    const values = new Float32Array(slice.buffer.slice(slice.byteOffset, slice.byteOffset + slice.byteLength));
    out.set(name, { shape: t.shape, values });
  }
  return out;
}

/** The largest absolute difference between two weights files' tensors (same names, shapes). */
export function weightsDiff(a, b) {
  const [x, y] = [parseSafetensors(a), parseSafetensors(b)];
  const names = [...x.keys()].sort();
  if (names.join() !== [...y.keys()].sort().join()) throw new Error(`tensors differ: ${names} vs ${[...y.keys()]}`);
  let max = 0;
  for (const name of names) {
    const [p, q] = [x.get(name), y.get(name)];
    if (p.shape.join() !== q.shape.join()) throw new Error(`${name}: shape ${p.shape} vs ${q.shape}`);
    for (let i = 0; i < p.values.length; i++) max = Math.max(max, Math.abs(p.values[i] - q.values[i]));
  }
  return max;
}

function idx(name) {
  return gunzipSync(readFileSync(join(repo, 'www/data/mnist', name)));
}

/** The first `n` labels of the bundled MNIST test set. */
export function testLabels(n) {
  const raw = idx('t10k-labels-idx1-ubyte.gz');
  if (raw.readUInt32BE(0) !== 0x801) throw new Error('not an IDX label file');
  return Array.from(raw.subarray(8, 8 + n));
}

/** Test image `i` of the bundled MNIST (28×28 bytes). */
export function testImage(i) {
  const raw = (testImage.cache ??= idx('t10k-images-idx3-ubyte.gz'));
  const [rows, cols] = [raw.readUInt32BE(8), raw.readUInt32BE(12)];
  return { rows, cols, pixels: raw.subarray(16 + i * rows * cols, 16 + (i + 1) * rows * cols) };
}

/** The `k` rows most cosine-similar to row `i` (rows are unit-norm): [{ j, sim }]. */
export function nearestRows(vecs, i, k) {
  const { dim, rows, data } = vecs;
  const sims = [];
  for (let j = 0; j < rows; j++) {
    if (j === i) continue;
    let s = 0;
    for (let d = 0; d < dim; d++) s += data[i * dim + d] * data[j * dim + d];
    sims.push({ j, sim: s });
  }
  sims.sort((a, b) => b.sim - a.sim);
  return sims.slice(0, k);
}
