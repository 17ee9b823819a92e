// The runtimes a page can run a bundle on, and which of them work here: TF.js backends (cpu, wasm,
// webgl, webgpu), switched globally and one job at a time, and LiteRT.js accelerators (litertjs-wasm,
// litertjs-webgpu). A runtime that cannot start is remembered with its reason, which the page shows.

import { webgpuProblem } from './gpu.js';
import { litertProblem, loadLiteRt } from './litert.js';
import { defaultThreads, startTfjsWasm } from './tfjs_threads.js';

export const tf = globalThis.tf;
/** Runtime ids: TF.js backends by their own names, LiteRT.js accelerators as litertjs-<accelerator>. */
export const BACKENDS = ['wasm', 'webgl', 'cpu', 'webgpu', 'litertjs-wasm', 'litertjs-webgpu'];
export const TFJS_BACKENDS = ['wasm', 'webgl', 'cpu', 'webgpu'];
export const isLiteRt = (backend) => backend.startsWith('litertjs-');
/** The artifact a runtime runs: TF.js bundles ("tfjs") or .tflite bundles ("tflite"). */
export const targetOf = (backend) => (isLiteRt(backend) ? 'tflite' : 'tfjs');
export const runtimeLabel = (backend) => (isLiteRt(backend) ? `LiteRT.js ${backend.slice(9)}` : `TF.js ${backend}`);
const VENDOR = 'vendor/';
/** CPU threads for TF.js wasm and LiteRT.js wasm: ?threads=N in the page's URL, else defaultThreads(). */
export const THREADS = Math.min(16, Math.max(1, Math.floor(Number(new URLSearchParams(location.search).get('threads'))) || defaultThreads()));

if (tf === undefined) throw new Error('TF.js did not load: vendor/tf.min.js is missing from the site (run `edgeproof deploy --target web`)');
tf.wasm?.setWasmPaths(VENDOR);

// ---------------------------------------------------------------------------------------------
// One TF.js operation at a time: the backend is global to the page, so a run switches to its
// backend and keeps it until it is done.
// ---------------------------------------------------------------------------------------------

let queue = Promise.resolve();
let queued = 0;

/** Run `fn` after every earlier exclusive job; never call exclusive() from inside `fn`. */
export function exclusive(fn) {
  queued += 1;
  const run = queue.then(() => fn());
  queue = run.catch(() => {}).finally(() => { queued -= 1; });
  return run;
}

/** Resolves once no TF.js job is queued or running. */
export async function drained() {
  while (queued > 0) await queue;
}

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

export class BackendUnavailableError extends Error {
  constructor(backend, reason) {
    super(`the ${backend} backend is unavailable in this browser: ${reason}`);
    this.backend = backend;
    this.reason = reason;
  }
}

const backendFailures = new Map(); // backend -> why it cannot start

/** Why WebGL cannot work here (null when a WebGL context can be created). Cheap: no TF.js init. */
export function webglProblem() {
  if (backendFailures.has('webgl')) return backendFailures.get('webgl');
  try {
    const canvas = document.createElement('canvas');
    const gl = canvas.getContext('webgl2') ?? canvas.getContext('webgl');
    if (gl === null) {
      const why = 'no WebGL context can be created (GPU disabled or blocked, e.g. headless Chromium with --disable-gpu)';
      backendFailures.set('webgl', why);
      return why;
    }
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return null;
  } catch (e) {
    const why = `creating a WebGL context failed: ${e.message}`;
    backendFailures.set('webgl', why);
    return why;
  }
}

/** The reason `backend` cannot be used, if it is known already. */
export function backendProblem(backend) {
  if (!BACKENDS.includes(backend)) return `unknown backend ${JSON.stringify(backend)}; use one of ${BACKENDS.join(', ')}`;
  if (backend === 'webgl') return webglProblem();
  return backendFailures.get(backend) ?? null;
}

/** Ask what needs a promise (a WebGPU adapter) once, at start-up, so backendProblem() knows it. */
export async function probeBackends() {
  const why = await webgpuProblem();
  if (why !== null) {
    backendFailures.set('webgpu', why);
    backendFailures.set('litertjs-webgpu', why);
  }
  if (tf.findBackendFactory('webgpu') === null && !backendFailures.has('webgpu')) {
    backendFailures.set('webgpu', 'the TF.js webgpu backend script (vendor/tf-backend-webgpu.min.js) did not load');
  }
}

let wasmStart = null; // TF.js wasm starts once per page, with THREADS threads (tfjs_threads.js says why)

/** What TF.js wasm runs on: {threads} once started, else null. */
export function wasmThreads() {
  return wasmStart?.ok ? { threads: wasmStart.threads } : null;
}

/** Switch TF.js to `backend` (call inside exclusive()); throws BackendUnavailableError with the reason. */
export async function useBackend(backend) {
  const known = backendProblem(backend);
  if (known !== null) throw new BackendUnavailableError(backend, known);
  if (tf.engine().backendName === backend) return;
  if (backend === 'wasm' && wasmStart === null) {
    wasmStart = await startTfjsWasm(tf, THREADS);
    if (!wasmStart.ok) {
      backendFailures.set('wasm', wasmStart.reason);
      throw new BackendUnavailableError('wasm', wasmStart.reason);
    }
    return;
  }
  // TF.js reports an initialisation failure only through console.warn: capture it as the reason.
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => warnings.push(args.map(String).join(' '));
  let ok = false;
  try {
    ok = await tf.setBackend(backend);
    await tf.ready();
  } catch (e) {
    warnings.push(e.message);
  } finally {
    console.warn = warn;
  }
  if (!ok || tf.engine().backendName !== backend) {
    const why = warnings.find((w) => w && !w.startsWith('Initialization of backend')) ?? warnings[0] ?? 'tf.setBackend returned false';
    backendFailures.set(backend, why.split('\n')[0]);
    throw new BackendUnavailableError(backend, backendFailures.get(backend));
  }
}

let lastRuntime = null; // the runtime of the latest run: a TF.js backend or litertjs-*

/** Record that TF.js ran last (after a TF.js job). */
export function ranOnTfjs() {
  lastRuntime = tf.engine().backendName;
}

/** The runtime that ran last (TF.js's backend, or the LiteRT.js accelerator when a .tflite ran last). */
export function activeBackend() {
  return lastRuntime ?? tf.engine().backendName ?? 'none';
}


/**
 * LiteRT.js on `backend` (litertjs-wasm / litertjs-webgpu), or BackendUnavailableError with why not.
 * Returns the CPU threads it will use: THREADS with the threaded build, 1 without (a page that is not
 * cross-origin isolated still runs, on one thread).
 */
export async function useLiteRt(backend) {
  const known = backendProblem(backend);
  if (known !== null) throw new BackendUnavailableError(backend, known);
  const why = await litertProblem(backend.slice(9), 1);
  if (why !== null) {
    backendFailures.set(backend, why);
    throw new BackendUnavailableError(backend, why);
  }
  lastRuntime = backend;
  return (await loadLiteRt()).threaded ? THREADS : 1;
}
