// LiteRT.js (@litertjs/core, copied into vendor/litertjs/ by the site build: no CDN) running .tflite
// files in the page. Loaded on first use, once per page: the threaded wasm build when the page is
// cross-origin isolated (SharedArrayBuffer) and the browser has relaxed SIMD, else the single-threaded
// one. Models run with `numThreads` threads on the 'wasm' accelerator (XNNPACK) or on 'webgpu'.
//
// What this layer adds to LiteRT.js, each for a reason found running edgeproof's artifacts:
// - tensors are named by the .tflite's own tensor names (what the TFLite interpreter and the bundle
//   manifests use), mapped from LiteRT.js's signature names through the file's SignatureDef;
// - a dynamic batch dimension (-1 in shape_signature) is pinned to the static shape first
//   (tflite_flatbuffer.pinDynamicDims: LiteRT.js 2.5.3 refuses every concrete shape otherwise);
// - anything LiteRT.js cannot run (an int8 or int64 input it has no tensor type for, an op it lacks,
//   no WebGPU adapter, a truncated file) is a RuntimeUnsupportedError carrying LiteRT.js's reason;
// - emscripten's INFO lines, which it prints with console.error, go to console.debug.

import { webgpuProblem } from './gpu.js';
import { TfliteFormatError, describe, pinDynamicDims } from './tflite_flatbuffer.js';

const BASE = new URL('../vendor/litertjs/', import.meta.url);
export const ACCELERATORS = ['wasm', 'webgpu'];

export class RuntimeUnsupportedError extends Error {
  constructor(runtime, reason) {
    super(`${runtime} cannot run this model: ${reason}`);
    this.name = 'RuntimeUnsupportedError';
    this.runtime = runtime;
    this.reason = reason;
  }
}

const TYPED = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array }; // LiteRT.js 2.5.3's JS dtypes

const reasonOf = (e) => String(e?.message ?? e).split('\n')[0].replace(/^ERROR: /, '');

let loading = null;
export const runtimeLog = []; // emscripten's own lines (INFO, WARNING), newest last, bounded
let logTotal = 0;

/** The lines logged since `mark` (a value of logTotal read earlier). */
function logSince(mark) {
  return runtimeLog.slice(Math.max(0, runtimeLog.length - (logTotal - mark)));
}

function keep(line) {
  logTotal += 1;
  runtimeLog.push(String(line));
  if (runtimeLog.length > 200) runtimeLog.shift();
  console.debug('[LiteRT.js]', line);
}

/** LiteRT.js, loaded once: {core, lib, threaded, version}. Throws RuntimeUnsupportedError. */
export function loadLiteRt() {
  if (loading === null) {
    loading = (async () => {
      let core;
      try {
        core = await import(new URL('core.js', BASE).href);
      } catch (e) {
        throw new RuntimeUnsupportedError('litertjs', `LiteRT.js did not load (${reasonOf(e)}): vendor/litertjs/ is missing from the site; rebuild it with \`edgeproof deploy --target web\``);
      }
      const relaxed = await core.supportsFeature('relaxedSimd');
      const threaded = relaxed && globalThis.crossOriginIsolated === true && await core.supportsFeature('threads');
      const version = await fetch(new URL('version.json', BASE)).then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
      globalThis.Module = { print: keep, printErr: keep }; // read once by LiteRT's module factory
      let lib;
      try {
        lib = await core.loadLiteRt(new URL('wasm/', BASE).href, { threads: threaded });
      } catch (e) {
        throw new RuntimeUnsupportedError('litertjs', `LiteRT.js's wasm module did not start: ${reasonOf(e)}`);
      }
      return { core, lib, threaded, version: version.version ?? null };
    })();
    loading.catch(() => { loading = null; });
  }
  return loading;
}

/** Why LiteRT.js cannot use `accelerator` with `threads` threads here, or null. */
export async function litertProblem(accelerator, threads = 1) {
  if (!ACCELERATORS.includes(accelerator)) return `unknown LiteRT.js accelerator ${JSON.stringify(accelerator)}; use ${ACCELERATORS.join(' or ')}`;
  if (accelerator === 'webgpu') {
    const why = await webgpuProblem();
    if (why !== null) return why;
  }
  let state;
  try {
    state = await loadLiteRt();
  } catch (e) {
    return e.reason ?? reasonOf(e);
  }
  if (accelerator === 'webgpu' && !state.lib.getDefaultEnvironment().webGpuDevice) {
    return 'LiteRT.js could not create a WebGPU device (see the console)';
  }
  if (threads > 1 && !state.threaded) {
    return `${threads} threads need LiteRT.js's threaded build: the page must be cross-origin isolated (COOP/COEP headers) `
      + 'and the browser must have wasm threads and relaxed SIMD';
  }
  return null;
}

/**
 * A compiled .tflite. run({name: {shape, data: TypedArray}}) -> {name: {dtype, shape, data}}, where
 * the names are the tensors' own (the interpreter's, e.g. "serving_default_image:0") or the
 * signature's ("image"): the outputs come back under the same kind of name the inputs were given in.
 */
export class LiteRtModel {
  constructor(core, compiled, info, meta) {
    this.core = core;
    this.compiled = compiled;
    this.inputs = info.inputs;
    this.outputs = info.outputs;
    Object.assign(this, meta);
  }

  /** The input or output described by `name` (a tensor name or a signature name), or undefined. */
  find(list, name) {
    return list.find((d) => d.tensor === name) ?? list.find((d) => d.signature === name);
  }

  /**
   * The input tensor for input `i` holding `data`. On the wasm accelerator the tensor is made once and
   * kept; later calls write into its host buffer (lock, copy, unlock). Making a LiteRT.js tensor costs a
   * dozen embind calls, a share of a small model's run that showed in the browser-vs-native benchmark.
   */
  inputTensor(i, data, shape) {
    if (this.accelerator !== 'wasm' || this.wasm === undefined) return { tensor: new this.core.Tensor(data, shape), owned: true };
    this.kept ??= [];
    const k = this.kept[i];
    if (k !== undefined && k.ctor === data.constructor && k.bytes === data.byteLength) {
      const b = k.tensor.liteRtTensorBuffer;
      const ptr = b.lock(this.wasm.LiteRtTensorBufferLockMode.WRITE);
      try {
        this.wasm.HEAPU8.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), ptr);
      } finally {
        b.unlock();
      }
      return { tensor: k.tensor, owned: false };
    }
    k?.tensor.delete();
    const tensor = new this.core.Tensor(data, shape);
    this.kept[i] = { tensor, ctor: data.constructor, bytes: data.byteLength };
    return { tensor, owned: false };
  }

  /** A host tensor's data as a fresh typed array (one lock and one copy; toTypedArray's checks kept). */
  read(r) {
    const ctor = TYPED[r.type.dtype];
    const b = r.liteRtTensorBuffer;
    if (ctor === undefined || this.wasm === undefined || b.offset() !== 0 || b.size() !== b.packedSize()) return r.toTypedArray();
    const ptr = b.lock(this.wasm.LiteRtTensorBufferLockMode.READ);
    try {
      return new ctor(this.wasm.HEAPU8.slice(ptr, ptr + b.packedSize()).buffer);
    } finally {
      b.unlock();
    }
  }

  /**
   * Run the model on `feeds`. Calls are queued, one at a time per model: the kept input tensors are shared by every
   * call, and LiteRT.js's run yields (await) between taking its inputs and computing.
   */
  run(feeds) {
    const next = (this.pending ?? Promise.resolve()).then(() => this.runOnce(feeds));
    this.pending = next.catch(() => {});
    return next;
  }

  async runOnce(feeds) {
    const owned = [];
    const made = [];
    let results = [];
    const bySignature = this.inputs.every((d) => d.signature in feeds) && !this.inputs.every((d) => d.tensor in feeds);
    try {
      for (const [i, d] of this.inputs.entries()) {
        const f = bySignature ? feeds[d.signature] : feeds[d.tensor];
        if (f === undefined) throw new Error(`missing input ${d.tensor}; the model takes ${this.inputs.map((x) => x.tensor).join(', ')}`);
        const shape = Array.from(f.shape);
        if (shape.length !== d.shape.length || shape.some((n, j) => n !== d.shape[j])) {
          throw new Error(`input ${d.tensor} has shape [${shape}]; the model takes [${d.shape}]`);
        }
        const { tensor, owned: mine } = this.inputTensor(i, f.data, shape);
        made.push(tensor);
        if (mine) owned.push(tensor);
      }
      results = await this.compiled.run(made);
      const out = {};
      for (let i = 0; i < results.length; i++) {
        let r = results[i];
        if (r.accelerator !== 'wasm') {
          r = await r.moveTo('wasm');
          results[i] = r;
        }
        out[bySignature ? this.outputs[i].signature : this.outputs[i].tensor] = { dtype: r.type.dtype, shape: Array.from(r.type.layout.dimensions), data: this.read(r) };
      }
      return out;
    } finally {
      for (const t of owned) t.delete();
      for (const t of results) if (!t.deleted) t.delete();
    }
  }

  delete() {
    for (const k of this.kept ?? []) if (k !== undefined && !k.tensor.deleted) k.tensor.delete();
    this.kept = [];
    if (!this.compiled.deleted) this.compiled.delete();
  }
}

/**
 * Compile .tflite `bytes` (Uint8Array) for LiteRT.js on `accelerator` with `threads` CPU threads.
 * Throws RuntimeUnsupportedError (with LiteRT.js's reason) when LiteRT.js cannot run the model here.
 */
export async function compileTflite(bytes, { accelerator = 'wasm', threads = 1 } = {}) {
  const runtime = `litertjs-${accelerator}`;
  let info;
  let pinned;
  try {
    info = describe(bytes);
    pinned = pinDynamicDims(bytes);
  } catch (e) {
    if (e instanceof TfliteFormatError) throw new RuntimeUnsupportedError(runtime, e.message);
    throw e;
  }
  const problem = await litertProblem(accelerator, threads);
  if (problem !== null) throw new RuntimeUnsupportedError(runtime, problem);
  const { core, lib, threaded, version } = await loadLiteRt();
  let compiled;
  const mark = logTotal;
  try {
    compiled = await lib.loadAndCompile(pinned.bytes, { accelerator, cpuOptions: { numThreads: threads } });
  } catch (e) {
    // LiteRT.js's exception is generic ("Failed to load model from buffer"); its log says why, e.g.
    // "ERROR: [model_load.cc:290] Variable tensors not yet supported." for a fused LSTM's state
    const why = logSince(mark).filter((l) => l.startsWith('ERROR')).map((l) => l.replace(/^ERROR: /, ''));
    throw new RuntimeUnsupportedError(runtime, `LiteRT.js ${version ?? ''}`.trim()
      + ` could not load the model: ${reasonOf(e)}${why.length ? ` (${why.join('; ')})` : ''}`);
  }
  try {
    if (compiled.options.accelerator !== accelerator) {
      throw new Error(`LiteRT.js compiled it for ${compiled.options.accelerator}, not ${accelerator} (not every op has a ${accelerator} kernel)`);
    }
    const byName = (list, details, what) => details.map((d) => {
      const hit = list.find((x) => x.name === d.name) ?? list.find((x) => x.tensor === d.name);
      if (hit === undefined) throw new Error(`${what} ${d.name} is not in the file's signature`);
      return { tensor: hit.tensor, signature: d.name, dtype: d.dtype, shape: Array.from(d.shape) };
    });
    const mapped = {
      inputs: byName(info.inputs, compiled.getInputDetails(), 'input'),
      outputs: byName(info.outputs, compiled.getOutputDetails(), 'output'),
    };
    return new LiteRtModel(core, compiled, mapped, {
      runtime, accelerator, wasm: lib.liteRtWasm, threads: accelerator === 'wasm' ? compiled.options.cpuOptions.numThreads : null,
      threadedBuild: threaded, version, pinnedDims: pinned.pinned,
      fullyAccelerated: compiled.isFullyAccelerated,
    });
  } catch (e) {
    compiled.delete();
    // e.g. "Element type INT8 is not supported." for a tensor LiteRT.js has no JS type for
    throw new RuntimeUnsupportedError(runtime, `LiteRT.js ${version ?? ''}`.trim() + `: ${reasonOf(e)}`);
  }
}
