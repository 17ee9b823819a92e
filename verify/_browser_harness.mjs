// The page edgeproof.verify._browser_runtime drives in headless Chromium: one model at a time on one
// browser runtime (LiteRT.js wasm/webgpu for .tflite, TF.js wasm/webgpu/webgl/cpu for model.json).
// The page is opened as harness.html?threads=N: TF.js fixes its wasm thread pool when the backend
// first starts, so a page serves one thread count. Several models may stay loaded (the benchmarks time
// them round-robin); predict and time run the one chosen last by load() or use().
//
// Tensors travel as {dtype, shape, data: base64 of raw little-endian bytes}: exact, no JSON floats.
// Every call returns {ok: true, ...} or {ok: false, unsupported: bool, runtime, reason}: a runtime that
// cannot run the model is an answer, not an exception.

import { RuntimeUnsupportedError, compileTflite, loadLiteRt } from './src/litert.js';
import { webgpuProblem } from './src/gpu.js';
import { startTfjsWasm } from './src/tfjs_threads.js';

const tf = globalThis.tf;
const ARRAYS = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array, int8: Int8Array, bool: Uint8Array };
const TFJS_BACKENDS = ['wasm', 'webgpu', 'webgl', 'cpu'];
const THREADS = Math.max(1, Number(new URLSearchParams(location.search).get('threads') ?? 1) | 0);
const NONE = { model: null, kind: null, runtime: null, useAsync: null, outputNames: null };
const loaded = new Map(); // handle -> {model, kind, runtime, useAsync, outputNames}
let state = NONE;
let nextHandle = 1;
let tfjsWasm = null; // {ok, threads, reason} once the wasm backend started

function fromWire(name, w) {
  const Arr = ARRAYS[w?.dtype];
  if (Arr === undefined) throw new Error(`input ${name}: dtype ${JSON.stringify(w?.dtype)} cannot travel; use ${Object.keys(ARRAYS).join(', ')}`);
  const raw = atob(w.data);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const size = w.shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== size * Arr.BYTES_PER_ELEMENT) throw new Error(`input ${name}: ${bytes.length} bytes for ${w.dtype} [${w.shape}]`);
  return { dtype: w.dtype, shape: w.shape, data: new Arr(bytes.buffer) };
}

function toWire(dtype, shape, data) {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let raw = '';
  for (let i = 0; i < bytes.length; i += 0x8000) raw += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return { dtype, shape: Array.from(shape), data: btoa(raw) };
}

function unsupported(runtime, reason) {
  return { ok: false, unsupported: true, runtime, reason };
}

async function tfjsBackend(backend) {
  if (!TFJS_BACKENDS.includes(backend)) throw new Error(`unknown TF.js backend ${backend}; use ${TFJS_BACKENDS.join(', ')}`);
  if (backend === 'wasm') {
    if (tfjsWasm === null) tfjsWasm = await startTfjsWasm(tf, THREADS);
    if (!tfjsWasm.ok) return tfjsWasm.reason;
    if (tf.engine().backendName !== 'wasm') await tf.setBackend('wasm');
    return null;
  }
  if (backend === 'webgpu') {
    const why = await webgpuProblem();
    if (why !== null) return why;
  }
  const warnings = [];
  const warn = console.warn;
  console.warn = (...a) => warnings.push(a.map(String).join(' '));
  try {
    const ok = await tf.setBackend(backend);
    await tf.ready();
    if (ok && tf.engine().backendName === backend) return null;
  } catch (e) {
    warnings.push(e.message);
  } finally {
    console.warn = warn;
  }
  return (warnings.find((w) => w && !w.startsWith('Initialization of backend')) ?? warnings[0] ?? 'tf.setBackend returned false').split('\n')[0];
}

function drop(handle) {
  const entry = loaded.get(handle);
  if (entry === undefined) return;
  if (entry.kind === 'tflite') entry.model.delete();
  else entry.model.dispose();
  loaded.delete(handle);
  if (state === entry) state = NONE;
}

function keep(entry) {
  const handle = nextHandle++;
  loaded.set(handle, entry);
  state = entry;
  return handle;
}

async function load({ url, runtime, keepOthers }) {
  if (!keepOthers) for (const h of [...loaded.keys()]) drop(h);
  const [family, accel] = runtime.split('-');
  const t0 = performance.now();
  if (family === 'litertjs') {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    let m;
    try {
      m = await compileTflite(bytes, { accelerator: accel, threads: THREADS });
    } catch (e) {
      if (e instanceof RuntimeUnsupportedError) return unsupported(runtime, e.reason);
      throw e;
    }
    const handle = keep({ ...NONE, model: m, kind: 'tflite', runtime });
    return {
      ok: true, handle, runtime, threads: m.threads, load_ms: performance.now() - t0, threaded_build: m.threadedBuild,
      pinned_dims: m.pinnedDims, version: m.version, fully_accelerated: m.fullyAccelerated,
      inputs: m.inputs.map(({ tensor, signature, dtype, shape }) => ({ name: tensor, signature, dtype, shape })),
      outputs: m.outputs.map(({ tensor, signature, dtype, shape }) => ({ name: tensor, signature, dtype, shape })),
    };
  }
  if (family !== 'tfjs') throw new Error(`unknown runtime ${JSON.stringify(runtime)}`);
  if (tf === undefined) return unsupported(runtime, 'TF.js did not load (vendor/tf.min.js missing from the harness)');
  const why = await tfjsBackend(accel);
  if (why !== null) return unsupported(runtime, why);
  let model;
  try {
    model = await tf.loadGraphModel(url);
  } catch (e) {
    return unsupported(runtime, `TF.js ${tf.version.tfjs} could not load the model: ${e.message.split('\n')[0]}`);
  }
  const handle = keep({ ...NONE, model, kind: 'tfjs', runtime, outputNames: model.outputNodes });
  return {
    ok: true, handle, runtime, threads: accel === 'wasm' ? tf.wasm.getThreadsCount() : null, load_ms: performance.now() - t0,
    version: tf.version.tfjs,
    inputs: model.inputNodes.map((name, i) => ({ name, dtype: model.inputs[i]?.dtype ?? null, shape: model.inputs[i]?.shape ?? null })),
    outputs: model.outputNodes.map((name) => ({ name })),
  };
}

async function runTfjs(feeds) {
  const tensors = {};
  for (const [name, f] of Object.entries(feeds)) {
    const dtype = f.dtype === 'float32' ? 'float32' : f.dtype === 'bool' ? 'bool' : 'int32';
    tensors[name] = tf.tensor(dtype === f.dtype ? f.data : Int32Array.from(f.data), f.shape, dtype);
  }
  try {
    const names = state.outputNames;
    let out;
    if (state.useAsync !== true) {
      try {
        out = state.model.execute(tensors, names);
        state.useAsync = false;
      } catch (e) {
        if (!/executeAsync/.test(e.message)) throw e;
        state.useAsync = true; // control flow (e.g. an LSTM's while loop)
      }
    }
    if (state.useAsync) out = await state.model.executeAsync(tensors, names);
    const list = Array.isArray(out) ? out : [out];
    const result = {};
    for (let i = 0; i < list.length; i++) result[names[i]] = { dtype: list[i].dtype, shape: list[i].shape, data: await list[i].data() };
    tf.dispose(list);
    return result;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

function run(feeds) {
  if (state.model === null) throw new Error('no model loaded: call load() first');
  return state.kind === 'tflite' ? state.model.run(feeds) : runTfjs(feeds);
}

function rowsOf(f, start, count) {
  const per = f.shape.slice(1).reduce((a, b) => a * b, 1);
  return { ...f, shape: [count, ...f.shape.slice(1)], data: f.data.slice(start * per, (start + count) * per) };
}

function concatRows(parts) {
  const first = parts[0];
  const total = parts.reduce((n, p) => n + p.data.length, 0);
  const data = new first.data.constructor(total);
  let at = 0;
  for (const p of parts) { data.set(p.data, at); at += p.data.length; }
  const rows = parts.reduce((n, p) => n + p.shape[0], 0);
  return { dtype: first.dtype, shape: [rows, ...first.shape.slice(1)], data };
}

// One position of axis 1 of every output of rank 3 or more ([n, T, ...] -> [n, ...]): what greedy decoding reads
// at step t, 1/T of the logits to send back (position null: the outputs whole).
function atPosition(v, position) {
  if (position === null || position === undefined || v.shape.length < 3) return v;
  const [n, steps, ...rest] = v.shape;
  if (position < 0 || position >= steps) throw new Error(`position ${position} is outside axis 1 of size ${steps}`);
  const per = rest.reduce((a, b) => a * b, 1);
  const data = new v.data.constructor(n * per);
  for (let r = 0; r < n; r++) data.set(v.data.subarray((r * steps + position) * per, (r * steps + position + 1) * per), r * per);
  return { dtype: v.dtype, shape: [n, ...rest], data };
}

// Many examples in one page call: run in steps of `step` rows (a pinned batch), outputs concatenated. The
// caller pads the last step; nothing travels per step, so a test split costs inference, not round trips.
async function runSplit(feeds, step, position = null) {
  const n = Object.values(feeds)[0].shape[0];
  if (n % step !== 0) throw new Error(`${n} rows do not divide into steps of ${step}`);
  const parts = {};
  for (let i = 0; i < n; i += step) {
    const out = await run(Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, rowsOf(f, i, step)])));
    for (const [k, v] of Object.entries(out)) {
      (parts[k] ??= []).push(atPosition({ dtype: v.dtype, shape: Array.from(v.shape), data: v.data }, position));
    }
  }
  return Object.fromEntries(Object.entries(parts).map(([k, list]) => [k, concatRows(list)]));
}

function decodeFeeds(wire) {
  return Object.fromEntries(Object.entries(wire).map(([name, w]) => [name, fromWire(name, w)]));
}

async function guarded(fn) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof RuntimeUnsupportedError) return unsupported(e.runtime, e.reason);
    return { ok: false, unsupported: false, runtime: state.runtime, reason: String(e?.message ?? e).split('\n')[0] };
  }
}

window.harness = {
  threads: THREADS,
  isolated: globalThis.crossOriginIsolated === true,
  async environment() {
    let litert = null;
    try {
      const l = await loadLiteRt();
      litert = { threaded_build: l.threaded, version: l.version };
    } catch (e) {
      litert = { error: e.reason ?? e.message };
    }
    return {
      isolated: globalThis.crossOriginIsolated === true, logical_cores: navigator.hardwareConcurrency,
      webgpu: await webgpuProblem(), tfjs: tf?.version?.tfjs ?? null, litert, user_agent: navigator.userAgent,
    };
  },
  load: (job) => guarded(() => load(job)),
  drop: (handle) => guarded(async () => {
    drop(handle);
    return { ok: true };
  }),
  use: (handle) => guarded(async () => {
    if (!loaded.has(handle)) throw new Error(`model ${handle} is not loaded (a new page, or dropped)`);
    state = loaded.get(handle);
    return { ok: true };
  }),
  predict: (wire) => guarded(async () => {
    const out = await run(decodeFeeds(wire));
    return { ok: true, outputs: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, toWire(v.dtype, v.shape, v.data)])) };
  }),
  predictSplit: ({ feeds, step, position }) => guarded(async () => {
    const out = await runSplit(decodeFeeds(feeds), step, position ?? null);
    return { ok: true, outputs: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, toWire(v.dtype, v.shape, v.data)])) };
  }),
  time: ({ feeds, warmup, repeats }) => guarded(async () => {
    const decoded = decodeFeeds(feeds);
    for (let i = 0; i < warmup; i++) await run(decoded);
    const times = [];
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      await run(decoded);
      times.push(performance.now() - t0);
    }
    return { ok: true, times_ms: times };
  }),
};
document.body.dataset.ready = 'true';
