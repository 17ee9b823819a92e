// .tflite bundles (artifact_target "tflite", the same files and manifests as the Raspberry Pi / Android
// bundles) in the page on LiteRT.js: the model file is checked against its manifest (size, sha256)
// before it is compiled, compiled once per (bundle, accelerator), and fed canonical inputs exactly as
// edgeproof's Python runtime binds them (runtime/_signature.py): inputs by the manifest's `tensor`
// names, NHWC <-> NCHW where the artifact's layout differs, int8/uint8 (de)quantization, and the
// model's static batch honoured (rows run in chunks of it).

import { RuntimeUnsupportedError, compileTflite } from './litert.js';

const MAX_CACHED = 4;
const cache = new Map(); // `${bundle}@${accelerator}` -> {model, loadMs}
const refusals = new Map(); // `${bundle}@${accelerator}` -> LiteRT.js's reason it cannot run the bundle

/** Why LiteRT.js on `accelerator` could not run `bundle` in this page (null: it did, or was not tried). */
export function litertRefusal(bundle, accelerator) {
  return refusals.get(`${bundle}@${accelerator}`) ?? null;
}

const product = (shape) => shape.reduce((a, b) => a * b, 1);
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');

/** The bundle's model file, checked against the manifest's size and sha256 (when the page can hash). */
async function fetchModel(bundle, manifest) {
  const name = manifest.model_file;
  const expected = manifest.files?.[name];
  if (typeof name !== 'string' || name.includes('/') || name.includes('..')) throw new Error(`${bundle}: manifest model_file ${JSON.stringify(name)} is not a file name`);
  const response = await fetch(`${bundle}/${name}`);
  if (!response.ok) throw new Error(`cannot fetch ${bundle}/${name}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (expected?.bytes != null && expected.bytes !== bytes.byteLength) {
    throw new Error(`${bundle}/${name} has ${bytes.byteLength} bytes, the manifest says ${expected.bytes}: the bundle is damaged; deploy it again`);
  }
  if (expected?.sha256 && globalThis.crypto?.subtle) {
    const got = hex(await crypto.subtle.digest('SHA-256', bytes));
    if (got !== expected.sha256) throw new Error(`${bundle}/${name}: sha256 ${got.slice(0, 12)}… does not match the manifest's ${expected.sha256.slice(0, 12)}…: the bundle is damaged; deploy it again`);
  }
  return bytes;
}

/** {entry: {model, loadMs}, fresh} for `bundle` compiled on LiteRT.js `accelerator` with `threads`. */
export async function loadTflite(bundle, manifest, accelerator, threads) {
  const key = `${bundle}@${accelerator}`;
  if (cache.has(key)) {
    const entry = cache.get(key);
    cache.delete(key);
    cache.set(key, entry);
    return { entry, fresh: false };
  }
  const t0 = performance.now();
  let model;
  try {
    model = await compileTflite(await fetchModel(bundle, manifest), { accelerator, threads });
  } catch (e) {
    if (e instanceof RuntimeUnsupportedError) refusals.set(key, e.reason);
    throw e;
  }
  const entry = { model, loadMs: performance.now() - t0 };
  cache.set(key, entry);
  while (cache.size > MAX_CACHED) {
    const [oldest, old] = cache.entries().next().value;
    cache.delete(oldest);
    old.model.delete();
  }
  return { entry, fresh: true };
}

// -- canonical <-> artifact -----------------------------------------------------------------------

function quantized(b) {
  return ['int8', 'uint8'].includes(b.dtype) && Array.isArray(b.quantization?.scale) && b.quantization.scale.length > 0;
}

/** Permute a row-major 4-D array: out[i0,i1,i2,i3] = data at the source index picked by `perm`. */
function transpose4(data, shape, perm) {
  const out = new data.constructor(data.length);
  const outShape = perm.map((p) => shape[p]);
  const stride = [shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1];
  const s = perm.map((p) => stride[p]);
  let k = 0;
  for (let a = 0; a < outShape[0]; a++) {
    for (let b = 0; b < outShape[1]; b++) {
      for (let c = 0; c < outShape[2]; c++) {
        for (let d = 0; d < outShape[3]; d++) out[k++] = data[a * s[0] + b * s[1] + c * s[2] + d * s[3]];
      }
    }
  }
  return { data: out, shape: outShape };
}

function permFor(src, dst, rank) {
  if (rank !== 4 || src === dst) return null;
  if (src === 'NHWC' && dst === 'NCHW') return [0, 3, 1, 2];
  if (src === 'NCHW' && dst === 'NHWC') return [0, 2, 3, 1];
  return null;
}

/** Rows [start, start + rows) of a canonical value, padded with copies of its last row to `pad` rows. */
function rowsOf(value, start, rows, pad) {
  const inner = product(value.shape.slice(1));
  const data = new value.data.constructor(pad * inner);
  data.set(value.data.subarray(start * inner, (start + rows) * inner));
  for (let r = rows; r < pad; r++) data.copyWithin(r * inner, (rows - 1) * inner, rows * inner);
  return { shape: [pad, ...value.shape.slice(1)], data };
}

const TYPED = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array, int8: Int8Array };

/** One canonical input chunk -> the artifact's tensor {shape, data} for LiteRT.js. */
function toArtifact(binding, chunk, modelShape) {
  let { data, shape } = chunk;
  const perm = permFor(binding.canonical_layout ?? binding.layout, binding.layout, shape.length);
  if (perm) ({ data, shape } = transpose4(data, shape, perm));
  if (shape.length !== modelShape.length || shape.some((d, i) => i > 0 && d !== modelShape[i])) {
    throw new Error(`input ${binding.name} has shape [${chunk.shape}] (${binding.canonical_layout ?? binding.layout}); the model takes [${modelShape}] (${binding.layout})`);
  }
  const Arr = TYPED[binding.dtype];
  if (Arr === undefined) throw new Error(`input ${binding.name}: the artifact takes ${binding.dtype}, which the page cannot build`);
  if (quantized(binding)) {
    const scale = binding.quantization.scale[0];
    const zero = binding.quantization.zero_point[0];
    const [lo, hi] = binding.dtype === 'int8' ? [-128, 127] : [0, 255];
    return { shape, data: Arr.from(data, (v) => Math.min(hi, Math.max(lo, Math.round(v / scale + zero)))) };
  }
  if (Arr !== Float32Array && !Array.prototype.every.call(data, Number.isInteger)) {
    throw new Error(`input ${binding.name} takes integer ids (${binding.dtype}), got non-integer values`);
  }
  return { shape, data: data instanceof Arr ? data : Arr.from(data) };
}

/** An artifact output -> canonical {shape, data: Float32Array|Int32Array}. */
function fromArtifact(binding, out) {
  let data = out.data;
  let shape = out.shape;
  if (quantized(binding)) {
    const scale = binding.quantization.scale[0];
    const zero = binding.quantization.zero_point[0];
    data = Float32Array.from(data, (v) => (v - zero) * scale);
  }
  const perm = permFor(binding.layout, binding.canonical_layout ?? binding.layout, shape.length);
  if (perm) ({ data, shape } = transpose4(data, shape, perm));
  return { shape, data };
}

/**
 * Canonical inputs {name: {dtype, shape, data}} -> {outputs: {name: {shape, data}}, ms} for a .tflite
 * bundle loaded by loadTflite (ctx: {manifest, entry}). `ms` is the LiteRT.js time (binding excluded).
 */
export async function predictTflite(ctx, inputs) {
  const { manifest, entry: { model } } = ctx;
  const missing = manifest.inputs.filter((b) => !(b.name in inputs)).map((b) => b.name);
  if (missing.length) throw new Error(`missing input(s) ${missing.join(', ')}; ${manifest.model} takes ${manifest.inputs.map((b) => b.name).join(', ')}`);
  const shapes = {};
  for (const b of manifest.inputs) {
    const d = model.find(model.inputs, b.tensor);
    if (d === undefined) throw new Error(`${manifest.model_file} has no input tensor ${b.tensor} (it has ${model.inputs.map((i) => i.tensor).join(', ')})`);
    shapes[b.tensor] = d.shape;
  }
  inputs = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, ArrayBuffer.isView(v.data) ? v
    : { ...v, data: (v.dtype === 'float32' || v.dtype === 'float16' ? Float32Array : Int32Array).from(v.data) }]));
  const n = inputs[manifest.inputs[0].name].shape[0];
  const step = shapes[manifest.inputs[0].tensor][0];
  const parts = manifest.outputs.map(() => []);
  let ms = 0;
  for (let start = 0; start < n; start += step) {
    const rows = Math.min(step, n - start);
    const feeds = {};
    for (const b of manifest.inputs) feeds[b.tensor] = toArtifact(b, rowsOf(inputs[b.name], start, rows, step), shapes[b.tensor]);
    const t0 = performance.now();
    const out = await model.run(feeds);
    ms += performance.now() - t0;
    manifest.outputs.forEach((b, i) => {
      const raw = out[b.tensor];
      if (raw === undefined) throw new Error(`${manifest.model_file} has no output tensor ${b.tensor} (it has ${Object.keys(out).join(', ')})`);
      const v = fromArtifact(b, raw);
      const inner = product(v.shape.slice(1));
      parts[i].push({ inner: v.shape.slice(1), data: v.data.subarray(0, rows * inner) });
    });
  }
  const outputs = {};
  manifest.outputs.forEach((b, i) => {
    const inner = parts[i][0].inner;
    const data = new parts[i][0].data.constructor(n * product(inner));
    let off = 0;
    for (const p of parts[i]) {
      data.set(p.data, off);
      off += p.data.length;
    }
    outputs[b.name] = { shape: [n, ...inner], data };
  });
  return { outputs, ms };
}

/**
 * Greedy decoding with a translator .tflite ((source ids [1, L], target prefix [1, L]) -> logits
 * [1, L, V]), one sentence, as edgeproof.train.greedy_decode: returns the L - 1 ids after BOS.
 */
export async function greedyDecodeTflite(ctx, sourceIds, { maxLen, bos, eos }) {
  const { manifest } = ctx;
  const target = new Int32Array(maxLen);
  target[0] = bos;
  const src = manifest.inputs.find((b) => b.name === 'source_ids') ?? manifest.inputs[0];
  const tgt = manifest.inputs.find((b) => b.name === 'target_ids') ?? manifest.inputs[1];
  for (let t = 0; t < maxLen - 1; t++) {
    const { outputs } = await predictTflite(ctx, {
      [src.name]: { dtype: 'int32', shape: [1, maxLen], data: sourceIds },
      [tgt.name]: { dtype: 'int32', shape: [1, maxLen], data: target },
    });
    const logits = Object.values(outputs)[0];
    const v = logits.shape[2];
    let best = 0;
    for (let k = 1; k < v; k++) if (logits.data[t * v + k] > logits.data[t * v + best]) best = k;
    target[t + 1] = best;
    if (best === eos) break;
  }
  return target.slice(1);
}
