// The browser runtimes in the page: TF.js (cpu, wasm, webgl, webgpu backends) for TF.js bundles and
// LiteRT.js (wasm, webgpu) for .tflite bundles (tflite_bundle.js); the deploy index, bundles (manifest
// + preprocessing + model), and running a bundle on canonical inputs exactly as edgeproof's Python
// runtime binds them (runtime/_signature.py): inputs fed by the manifest's `tensor` names, NHWC <->
// NCHW where the artifact's layout differs, int8/uint8 (de)quantization, static batch sizes honoured.
// Which runtimes work, and switching between them, is backends.js (re-exported here).

import {
  BACKENDS, BackendUnavailableError, exclusive, isLiteRt, ranOnTfjs, runtimeLabel, targetOf, tf, useBackend, useLiteRt,
  wasmThreads,
} from './backends.js';
import { loadTflite, predictTflite } from './tflite_bundle.js';

export {
  BACKENDS, TFJS_BACKENDS, BackendUnavailableError, THREADS, activeBackend, backendProblem, drained, exclusive, isLiteRt,
  probeBackends, runtimeLabel, targetOf, tf, wasmThreads, webglProblem,
} from './backends.js';

const MAX_CACHED_MODELS = 6;

// ---------------------------------------------------------------------------------------------
// The deploy index and the bundles
// ---------------------------------------------------------------------------------------------

async function fetchJson(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`cannot fetch ${url}: ${e.message}`);
  }
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
  try {
    return await response.json();
  } catch (e) {
    throw new Error(`${url} is not valid JSON: ${e.message}`);
  }
}

const jsonCache = new Map();
function cachedJson(url) {
  if (!jsonCache.has(url)) {
    const p = fetchJson(url);
    jsonCache.set(url, p);
    p.catch(() => jsonCache.delete(url));
  }
  return jsonCache.get(url);
}

export function loadIndex() {
  return cachedJson('index.json').then((index) => {
    if (index?.target !== 'web' || !Array.isArray(index.bundles)) {
      throw new Error('index.json is not a web deploy index: build the site with `edgeproof deploy --target web`');
    }
    return index;
  });
}

export function loadManifest(bundle) {
  return cachedJson(`${bundle}/manifest.json`);
}

export async function loadPreprocessing(bundle) {
  const manifest = await loadManifest(bundle);
  return cachedJson(`${bundle}/${manifest.preprocessing_file ?? 'preprocessing.json'}`);
}

/** Bytes of the model itself (model.json + weight shards) from the manifest's file table. */
export function modelBytes(manifest) {
  return Object.entries(manifest.files ?? {})
    .filter(([name]) => name === manifest.model_file || name.endsWith('.bin'))
    .reduce((s, [, f]) => s + f.bytes, 0);
}

const models = new Map(); // `${bundle}@${backend}` -> {model, loadMs, backend, useAsync}

async function loadModel(bundle, backend) {
  const key = `${bundle}@${backend}`;
  if (models.has(key)) {
    const entry = models.get(key);
    models.delete(key); // re-insert: most recently used last
    models.set(key, entry);
    return { entry, fresh: false };
  }
  const manifest = await loadManifest(bundle);
  const t0 = performance.now();
  let model;
  try {
    model = await tf.loadGraphModel(`${bundle}/${manifest.model_file}`);
  } catch (e) {
    throw new Error(`cannot load the TF.js model of ${bundle}: ${e.message}`);
  }
  const entry = { model, loadMs: performance.now() - t0, backend, useAsync: null };
  models.set(key, entry);
  while (models.size > MAX_CACHED_MODELS) {
    const [oldest, old] = models.entries().next().value;
    models.delete(oldest);
    old.model.dispose();
  }
  return { entry, fresh: true };
}

/** Check `manifest` is an artifact `backend` runs: TF.js bundles on TF.js, .tflite bundles on LiteRT.js. */
function checkTarget(bundle, manifest, backend) {
  const target = manifest.artifact_target ?? 'tfjs';
  if (target !== targetOf(backend)) {
    throw new Error(`${bundle} is a ${target === 'tflite' ? '.tflite' : 'TF.js'} bundle: ${runtimeLabel(backend)} runs `
      + `${targetOf(backend) === 'tflite' ? '.tflite' : 'TF.js'} bundles only`);
  }
}

/**
 * Run `fn(ctx)` with `bundle` loaded on `backend`, alone (exclusive). ctx: {kind: "tfjs"|"tflite",
 * manifest, entry, loadMs, fresh, backend} plus {tf, model} for TF.js (with `backend` active).
 */
export function withBundle(bundle, backend, fn) {
  return exclusive(async () => {
    const manifest = await loadManifest(bundle);
    if (!BACKENDS.includes(backend)) throw new BackendUnavailableError(backend, backendProblem(backend));
    checkTarget(bundle, manifest, backend);
    if (isLiteRt(backend)) {
      const threads = await useLiteRt(backend);
      const { entry, fresh } = await loadTflite(bundle, manifest, backend.slice(9), threads);
      return fn({ kind: 'tflite', manifest, entry, loadMs: entry.loadMs, fresh, backend, threads: entry.model.threads });
    }
    await useBackend(backend);
    const { entry, fresh } = await loadModel(bundle, backend);
    ranOnTfjs();
    const active = tf.engine().backendName;
    return fn({ kind: 'tfjs', tf, model: entry.model, manifest, entry, loadMs: entry.loadMs, fresh, backend: active,
      threads: active === 'wasm' ? wasmThreads()?.threads ?? null : null });
  });
}

// ---------------------------------------------------------------------------------------------
// Canonical inputs -> the artifact's tensors -> canonical outputs
// ---------------------------------------------------------------------------------------------

const ARRAYS = { float32: Float32Array, int32: Int32Array, int64: Int32Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array };
const isDynamicOpError = (e) => /executeAsync/.test(e?.message ?? '');

function quantized(binding) {
  return ['int8', 'uint8'].includes(binding.dtype) && Array.isArray(binding.quantization?.scale) && binding.quantization.scale.length > 0;
}

function transposeFor(src, dst, rank) {
  if (rank !== 4 || src === dst) return null;
  if (src === 'NHWC' && dst === 'NCHW') return [0, 3, 1, 2];
  if (src === 'NCHW' && dst === 'NHWC') return [0, 2, 3, 1];
  return null;
}

function product(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

/** One canonical input {dtype, shape, data} -> a tf.Tensor the artifact takes (caller disposes). */
function toArtifact(binding, value) {
  if (value == null || !Array.isArray(value.shape)) throw new Error(`input ${binding.name}: expected {dtype, shape, data}`);
  const size = product(value.shape);
  if (value.data.length !== size) throw new Error(`input ${binding.name}: ${value.data.length} values for shape [${value.shape}]`);
  const perm = transposeFor(binding.canonical_layout ?? binding.layout, binding.layout, value.shape.length);
  const want = binding.shape;
  return tf.tidy(() => {
    let t;
    if (quantized(binding)) {
      const scale = binding.quantization.scale[0];
      const zero = binding.quantization.zero_point[0];
      const [lo, hi] = binding.dtype === 'int8' ? [-128, 127] : [0, 255];
      const q = Int32Array.from(value.data, (v) => Math.min(hi, Math.max(lo, Math.round(v / scale + zero))));
      t = tf.tensor(q, value.shape, 'int32');
    } else {
      const dtype = binding.dtype === 'float32' || binding.dtype === 'float16' ? 'float32' : 'int32';
      if (dtype === 'int32' && !Array.from(value.data).every(Number.isInteger)) {
        throw new Error(`input ${binding.name} takes integer ids (${binding.dtype}), got non-integer values`);
      }
      t = tf.tensor(ARRAYS[dtype].from(value.data), value.shape, dtype);
    }
    if (perm) t = tf.transpose(t, perm);
    if (t.rank !== want.length || want.slice(1).some((d, i) => d > 0 && d !== t.shape[i + 1])) {
      throw new Error(`input ${binding.name} has shape [${value.shape}] (${binding.canonical_layout}); the model takes [${want}] (${binding.layout})`);
    }
    return t;
  });
}

/** An artifact output tensor -> canonical {shape, data: Float32Array|Int32Array}. */
async function fromArtifact(binding, tensor) {
  const perm = transposeFor(binding.layout, binding.canonical_layout ?? binding.layout, tensor.rank);
  const canon = tf.tidy(() => {
    let t = tensor;
    if (quantized(binding)) {
      t = tf.mul(tf.sub(tf.cast(t, 'float32'), binding.quantization.zero_point[0]), binding.quantization.scale[0]);
    }
    return perm ? tf.transpose(t, perm) : tf.clone(t);
  });
  try {
    return { shape: canon.shape, data: await canon.data() };
  } finally {
    canon.dispose();
  }
}

/** Run the graph on `feeds` (tensor name -> tf.Tensor), choosing execute or executeAsync once per model. */
export async function execute(entry, feeds, names) {
  const run = async (useAsync) => {
    const out = useAsync ? await entry.model.executeAsync(feeds, names) : entry.model.execute(feeds, names);
    return Array.isArray(out) ? out : [out];
  };
  if (entry.useAsync !== null) return run(entry.useAsync);
  try {
    const out = await run(false);
    entry.useAsync = false;
    return out;
  } catch (e) {
    if (!isDynamicOpError(e)) throw e;
    entry.useAsync = true; // the graph has control flow (e.g. the LSTM's while loop)
    return run(true);
  }
}

/**
 * Canonical inputs {name: {dtype, shape, data}} -> canonical outputs {name: {shape, data}} and the
 * inference time in ms (the first call on a model includes TF.js' warm-up). Call inside withBundle.
 */
export async function predict(ctx, inputs) {
  if (ctx.kind === 'tflite') return predictTflite(ctx, inputs);
  const { manifest, entry } = ctx;
  const missing = manifest.inputs.filter((b) => !(b.name in inputs)).map((b) => b.name);
  if (missing.length) throw new Error(`missing input(s) ${missing.join(', ')}; ${manifest.model} takes ${manifest.inputs.map((b) => b.name).join(', ')}`);
  const n = inputs[manifest.inputs[0].name].shape[0];
  const batches = new Set(manifest.inputs.map((b) => b.shape[0]).filter((d) => d > 0));
  const step = batches.size === 1 ? [...batches][0] : n;
  const names = manifest.outputs.map((b) => b.tensor);
  const parts = manifest.outputs.map(() => []);
  let ms = 0;
  for (let start = 0; start < n; start += step) {
    const rows = Math.min(step, n - start);
    const feeds = {};
    try {
      for (const b of manifest.inputs) feeds[b.tensor] = toArtifact(b, sliceRows(inputs[b.name], start, rows, step));
      const t0 = performance.now();
      const outs = await execute(entry, feeds, names);
      try {
        const values = await Promise.all(outs.map((t, i) => fromArtifact(manifest.outputs[i], t)));
        ms += performance.now() - t0;
        values.forEach((v, i) => parts[i].push({ shape: [rows, ...v.shape.slice(1)], data: v.data.subarray(0, rows * product(v.shape.slice(1))) }));
      } finally {
        tf.dispose(outs);
      }
    } finally {
      tf.dispose(Object.values(feeds));
    }
  }
  const outputs = {};
  manifest.outputs.forEach((b, i) => {
    const inner = parts[i][0]?.shape.slice(1) ?? [];
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

/** Rows [start, start + rows) of a canonical input, padded with copies of its last row up to `pad`. */
function sliceRows(value, start, rows, pad) {
  const n = value.shape[0];
  if (start === 0 && rows === n && (pad === n || pad <= 0)) return value;
  const inner = product(value.shape.slice(1));
  const data = Array.from(value.data.slice(start * inner, (start + rows) * inner));
  for (let r = rows; r < pad; r++) data.push(...data.slice((rows - 1) * inner, rows * inner));
  return { dtype: value.dtype, shape: [Math.max(rows, pad), ...value.shape.slice(1)], data };
}
