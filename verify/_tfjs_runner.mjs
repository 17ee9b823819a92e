// Runs TF.js graph models under Node for edgeproof's parity checks (client: verify/_tfjs_node.py).
// Protocol: one JSON request per line on stdin, one JSON response per line on stdout; logs go to
// stderr. Commands: load, predict, greedy, time, memory. EOF on stdin -> exit 0.
// Tensors travel as {"dtype": "float32"|"int32"|"bool", "shape": [...], "data": base64 of raw
// little-endian bytes}. Models load from the local file system; nothing is fetched.
import { createRequire } from 'node:module';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { greedyDecode } from '../web_demo/src/greedy.js';

// Only protocol lines may reach stdout: anything else (TF.js banners, emscripten prints,
// console.log) is diverted to stderr.
const protocolWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = (...args) => process.stderr.write(...args);

const SETUP_HINT = 'run `scripts/setup.sh web` to install TF.js into web_demo/node_modules';
const BACKENDS = ['cpu', 'wasm'];
const ARRAYS = { float32: Float32Array, int32: Int32Array, bool: Uint8Array };
const TF_DTYPES = { DT_FLOAT: 'float32', DT_INT32: 'int32', DT_INT64: 'int32', DT_BOOL: 'bool', DT_STRING: 'string' };

// Hostile-input bounds (verify/_tfjs_node.py checks the same before Node sees a model): model.json
// size, total weight bytes; bytes per element of weight dtypes and quantization dtypes.
const MAX_MODEL_JSON_BYTES = 64 * 2 ** 20;
const MAX_WEIGHT_BYTES = 2 * 2 ** 30;
const WEIGHT_BYTES = { float32: 4, int32: 4, bool: 1, complex64: 8, float16: 2, uint8: 1, uint16: 2 };

// npm packages resolve from the node_modules folder edgeproof found (edgeproof/_js.py; the Python client sets
// EDGEPROOF_NODE_MODULES), else from web_demo/node_modules beside this file (a checkout).
const NODE_MODULES = process.env.EDGEPROOF_NODE_MODULES;
const webRequire = createRequire(NODE_MODULES ? path.join(path.dirname(NODE_MODULES), 'package.json')
  : new URL('../web_demo/package.json', import.meta.url));
const state = { tf: null, model: null, modelPath: null, useAsync: null, inputs: [], outputs: [] };

function log(...args) {
  process.stderr.write(`[tfjs-runner] ${args.join(' ')}\n`);
}

/** The TF.js namespace, loaded on first use from node_modules. */
function tfjs() {
  if (state.tf === null) {
    try {
      state.tf = webRequire('@tensorflow/tfjs');
    } catch (e) {
      throw new Error(`cannot load @tensorflow/tfjs from ${NODE_MODULES ?? 'web_demo/node_modules'} (${e.message.split('\n')[0]}): ${SETUP_HINT}`);
    }
  }
  return state.tf;
}

/** Register the wasm backend and point it at its .wasm binaries on the local file system. */
function registerWasm() {
  let wasm;
  try {
    wasm = webRequire('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    throw new Error(`cannot load @tensorflow/tfjs-backend-wasm (${e.message.split('\n')[0]}): ${SETUP_HINT}`);
  }
  const dist = path.join(path.dirname(webRequire.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  wasm.setWasmPaths(dist + path.sep);
}

/** Initialise `name`; TF.js reports an init failure only through console.warn, so capture it. */
async function trySetBackend(tf, name) {
  if (name === 'wasm' && tf.findBackendFactory('wasm') === null) registerWasm();
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => warnings.push(args.map(String).join(' '));
  try {
    const ok = await tf.setBackend(name);
    await tf.ready();
    return ok && tf.getBackend() === name ? null : warnings.join('\n') || 'setBackend returned false';
  } catch (e) {
    return e.message;
  } finally {
    console.warn = warn;
  }
}

/** Switch to `backend`; use `fallback` only when asked, and say why. */
async function useBackend(backend, fallback) {
  const tf = tfjs();
  for (const b of [backend, fallback]) {
    if (b != null && !BACKENDS.includes(b)) throw new Error(`unknown backend ${JSON.stringify(b)}; use one of ${BACKENDS.join(', ')}`);
  }
  if (tf.engine().backendName === backend) return {};
  const why = await trySetBackend(tf, backend);
  if (why === null) return {};
  if (fallback == null) throw new Error(`TF.js backend ${backend} failed to initialise under Node ${process.version}: ${why}`);
  log(`backend ${backend} failed (${why}); falling back to ${fallback} as asked`);
  const why2 = await trySetBackend(tf, fallback);
  if (why2 !== null) throw new Error(`TF.js backends ${backend} (${why}) and ${fallback} (${why2}) both failed`);
  return { fallback_reason: `${backend} failed: ${why}` };
}

/** A weightsManifest path as a file inside the model folder `realDir` (symlinks resolved), or an error. */
async function confinedShard(modelJson, realDir, p) {
  if (typeof p !== 'string' || p === '' || p.includes('\0') || p.includes('\\') || p.includes('://')) {
    throw new Error(`model.json ${modelJson}: weight path ${JSON.stringify(p)} is not a plain relative file name; refusing it`);
  }
  if (path.isAbsolute(p) || p.split('/').includes('..')) {
    throw new Error(`model.json ${modelJson}: weight path ${JSON.stringify(p)} points outside the model folder (absolute or '..'); refusing to read it`);
  }
  let real;
  try {
    real = await realpath(path.join(realDir, p));
  } catch (e) {
    throw new Error(`model.json ${modelJson}: weight shard ${JSON.stringify(p)} is missing (${e.code ?? e.message})`);
  }
  if (!real.startsWith(realDir + path.sep)) {
    throw new Error(`model.json ${modelJson}: weight path ${JSON.stringify(p)} resolves to ${real}, outside the model folder ${realDir}; refusing to read it`);
  }
  return real;
}

/** Bytes the weight specs of one group need; null when a string weight makes it variable. */
function declaredBytes(modelJson, weights) {
  if (!Array.isArray(weights)) throw new Error(`model.json ${modelJson}: weightsManifest "weights" must be a list`);
  let total = 0;
  for (const w of weights) {
    const shape = w?.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0 && d < 2 ** 31)) {
      throw new Error(`model.json ${modelJson}: weight ${JSON.stringify(w?.name)} has no valid shape`);
    }
    const dtype = w.quantization?.dtype ?? w.dtype;
    if (dtype === 'string') return null;
    if (typeof dtype !== 'string' || !Object.hasOwn(WEIGHT_BYTES, dtype)) throw new Error(`model.json ${modelJson}: weight ${JSON.stringify(w.name)} has unknown dtype ${JSON.stringify(dtype)}`);
    total += shape.reduce((a, b) => a * b, 1) * WEIGHT_BYTES[dtype];
    if (total > MAX_WEIGHT_BYTES) throw new Error(`model.json ${modelJson}: its weights declare over ${MAX_WEIGHT_BYTES} bytes`);
  }
  return total;
}

/** A tf.io.IOHandler reading model.json and its weight shards from disk (no fetch), confined to the
 * model's folder and bounded in size. */
function fileHandler(modelJson) {
  return {
    async load() {
      let text;
      try {
        const info = await stat(modelJson);
        if (info.size > MAX_MODEL_JSON_BYTES) throw new Error(`${info.size} bytes, over the ${MAX_MODEL_JSON_BYTES} byte limit`);
        text = await readFile(modelJson, 'utf8');
      } catch (e) {
        throw new Error(`cannot read model.json ${modelJson}: ${e.message}`);
      }
      let json;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new Error(`model.json ${modelJson} is not valid JSON: ${e.message}`);
      }
      if (json === null || typeof json !== 'object' || json.modelTopology == null) {
        throw new Error(`model.json ${modelJson} has no modelTopology: not a TF.js model`);
      }
      if (json.format != null && json.format !== 'graph-model') {
        throw new Error(`model.json ${modelJson} has format ${JSON.stringify(json.format)}; this runner loads graph models`);
      }
      const realDir = await realpath(path.dirname(modelJson));
      const weightSpecs = [];
      const shards = [];
      let total = 0;
      for (const group of json.weightsManifest ?? []) {
        if (!Array.isArray(group?.paths)) throw new Error(`model.json ${modelJson}: each weightsManifest entry needs "paths"`);
        const need = declaredBytes(modelJson, group.weights);
        weightSpecs.push(...group.weights);
        let have = 0;
        for (const p of group.paths) {
          const file = await confinedShard(modelJson, realDir, p);
          const info = await stat(file);
          total += info.size;
          if (total > MAX_WEIGHT_BYTES) throw new Error(`model.json ${modelJson}: weight shards over ${MAX_WEIGHT_BYTES} bytes`);
          const data = await readFile(file);
          have += data.length;
          shards.push(data);
        }
        if (need !== null && need !== have) {
          throw new Error(`model.json ${modelJson}: shards ${JSON.stringify(group.paths)} hold ${have} bytes but the declared weight shapes need ${need}`);
        }
      }
      const all = Buffer.concat(shards);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
      const { modelTopology, format, generatedBy, convertedBy, signature, userDefinedMetadata, modelInitializer } = json;
      return { modelTopology, weightSpecs, weightData, format, generatedBy, convertedBy, signature, userDefinedMetadata, modelInitializer };
    },
  };
}

/** Shape and dtype of a signature entry ({name, dtype: "DT_FLOAT", tensorShape: {dim: [{size}]}}). */
function sigMeta(entry) {
  if (entry == null) return {};
  const dims = entry.tensorShape?.dim;
  return { shape: dims ? dims.map((d) => Number(d.size ?? -1)) : undefined, dtype: TF_DTYPES[entry.dtype] ?? entry.dtype };
}

/** The model's inputs/outputs under the names it is fed/read by (signature keys where present). */
function describe(model, signature) {
  const inputs = model.inputNodes.map((name, i) => {
    const sig = sigMeta(signature?.inputs?.[name]);
    return { name, shape: model.inputs[i]?.shape ?? sig.shape ?? null, dtype: model.inputs[i]?.dtype ?? sig.dtype ?? null };
  });
  const outputs = model.outputNodes.map((name, i) => {
    const sig = sigMeta(signature?.outputs?.[name]);
    return { name, shape: sig.shape ?? model.outputs[i]?.shape ?? null, dtype: sig.dtype ?? model.outputs[i]?.dtype ?? null };
  });
  return { inputs, outputs };
}

function disposeModel() {
  if (state.model !== null) state.model.dispose();
  Object.assign(state, { model: null, modelPath: null, useAsync: null, inputs: [], outputs: [] });
}

async function cmdLoad(req) {
  if (typeof req.model !== 'string' || req.model === '') throw new Error('load: "model" must be the path of a model.json');
  const modelJson = path.resolve(req.model);
  disposeModel();
  const extra = await useBackend(req.backend ?? 'wasm', req.fallback ?? null);
  const tf = tfjs();
  const t0 = performance.now();
  const handler = fileHandler(modelJson);
  let signature = null;
  const model = await tf.loadGraphModel({
    load: async () => {
      const artifacts = await handler.load();
      signature = artifacts.signature ?? null;
      return artifacts;
    },
  });
  const loadMs = performance.now() - t0;
  Object.assign(state, { model, modelPath: modelJson, useAsync: null }, describe(model, signature));
  log(`loaded ${modelJson} on ${tf.getBackend()} in ${loadMs.toFixed(1)} ms`);
  return { backend: tf.getBackend(), load_ms: loadMs, inputs: state.inputs, outputs: state.outputs, ...extra };
}

function requireModel() {
  if (state.model === null) throw new Error('no model loaded: send a "load" request first');
  return state.model;
}

/** A wire tensor -> tf.Tensor, checking dtype, shape and byte count. */
function decodeTensor(tf, name, spec) {
  if (spec === null || typeof spec !== 'object') throw new Error(`tensor ${name}: expected {dtype, shape, data}`);
  const Arr = ARRAYS[spec.dtype];
  if (Arr === undefined) throw new Error(`tensor ${name}: unsupported dtype ${JSON.stringify(spec.dtype)}; use ${Object.keys(ARRAYS).join(', ')}`);
  if (!Array.isArray(spec.shape) || !spec.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`tensor ${name}: shape must be a list of non-negative integers, got ${JSON.stringify(spec.shape)}`);
  }
  const bytes = Buffer.from(spec.data ?? '', 'base64');
  const size = spec.shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== size * Arr.BYTES_PER_ELEMENT) {
    throw new Error(`tensor ${name}: ${bytes.length} data bytes for shape [${spec.shape}] ${spec.dtype} (expected ${size * Arr.BYTES_PER_ELEMENT})`);
  }
  const aligned = new Uint8Array(bytes.length);
  aligned.set(bytes);
  return tf.tensor(new Arr(aligned.buffer), spec.shape, spec.dtype);
}

async function encodeTensor(t) {
  const d = await t.data();
  return { dtype: t.dtype, shape: t.shape, data: Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64') };
}

function fmt(meta) {
  return `${meta.name} [${meta.shape ?? '?'}] ${meta.dtype ?? '?'}`;
}

/** Check feed names, shapes and dtypes against the model's declared inputs. */
function checkFeeds(specs) {
  const known = state.inputs.map((m) => m.name);
  const names = Object.keys(specs ?? {});
  const unknown = names.filter((n) => !known.includes(n));
  const missing = known.filter((n) => !names.includes(n));
  const declared = state.inputs.map(fmt).join('; ');
  if (unknown.length) throw new Error(`unknown input(s) ${unknown.join(', ')}; model inputs: ${declared}`);
  if (missing.length) throw new Error(`missing input(s) ${missing.join(', ')}; model inputs: ${declared}`);
  for (const meta of state.inputs) {
    const { shape, dtype } = specs[meta.name];
    const okShape = meta.shape == null || (Array.isArray(shape) && shape.length === meta.shape.length
      && meta.shape.every((d, i) => d === -1 || d === shape[i]));
    if (!okShape) throw new Error(`input ${meta.name}: shape [${shape}] does not match the model's [${meta.shape}]`);
    if (meta.dtype != null && dtype !== meta.dtype) throw new Error(`input ${meta.name}: dtype ${dtype} but the model takes ${meta.dtype}`);
  }
}

function decodeFeeds(specs) {
  checkFeeds(specs);
  const tf = tfjs();
  const feeds = {};
  try {
    for (const [name, spec] of Object.entries(specs)) feeds[name] = decodeTensor(tf, name, spec);
  } catch (e) {
    tf.dispose(Object.values(feeds));
    throw e;
  }
  return feeds;
}

const isDynamicOpError = (e) => /executeAsync/.test(e?.message ?? '');

/**
 * Run fn(useAsync), deciding execute vs executeAsync once per model: execute first, and
 * executeAsync (remembered) if TF.js says the graph has control flow or dynamic ops.
 */
async function withExecMode(fn) {
  if (state.useAsync !== null) return fn(state.useAsync);
  try {
    const result = await fn(false);
    state.useAsync = false;
    return result;
  } catch (e) {
    if (!isDynamicOpError(e)) throw e;
    log(`${state.modelPath}: execute() refused (${e.message.split('.')[0]}); using executeAsync()`);
    state.useAsync = true;
    return fn(true);
  }
}

/**
 * Await fn() inside an engine scope: tensors it creates and does not return are disposed, also
 * when it throws (executeAsync leaks its intermediates on error). Safe because requests run
 * one at a time.
 */
async function scoped(fn) {
  const engine = tfjs().engine();
  engine.startScope();
  let result;
  try {
    result = await fn();
    return result;
  } finally {
    engine.endScope(result);
  }
}

/** All outputs for `feeds`, in the order of state.outputs. The caller disposes them. */
async function runOutputs(feeds, useAsync) {
  const model = requireModel();
  const names = state.outputs.map((m) => m.name);
  return scoped(async () => {
    const result = useAsync ? await model.executeAsync(feeds, names) : model.execute(feeds, names);
    return Array.isArray(result) ? result : [result];
  });
}

async function cmdPredict(req) {
  requireModel();
  const tf = tfjs();
  const feeds = decodeFeeds(req.inputs);
  try {
    const t0 = performance.now();
    const outs = await withExecMode((a) => runOutputs(feeds, a));
    try {
      const encoded = await Promise.all(outs.map(encodeTensor));
      const ms = performance.now() - t0;
      const outputs = Object.fromEntries(state.outputs.map((m, i) => [m.name, encoded[i]]));
      return { ms, outputs, execution: state.useAsync ? 'executeAsync' : 'execute' };
    } finally {
      tf.dispose(outs);
    }
  } finally {
    tf.dispose(Object.values(feeds));
  }
}

/** Wall time of one run, until every output's data() has resolved. */
async function timedRun(feeds, useAsync) {
  const t0 = performance.now();
  const outs = await runOutputs(feeds, useAsync);
  try {
    await Promise.all(outs.map((t) => t.data()));
  } finally {
    tfjs().dispose(outs);
  }
  return performance.now() - t0;
}

async function cmdTime(req) {
  requireModel();
  const warmup = req.warmup ?? 3;
  const repeats = req.repeats ?? 20;
  if (!(Number.isInteger(warmup) && warmup >= 0 && Number.isInteger(repeats) && repeats >= 1)) {
    throw new Error(`time: need integer warmup >= 0 and repeats >= 1, got ${warmup}, ${repeats}`);
  }
  const feeds = decodeFeeds(req.inputs);
  try {
    const first = await withExecMode((a) => timedRun(feeds, a));
    for (let i = 1; i < warmup; i++) await timedRun(feeds, state.useAsync);
    const times = [];
    if (warmup === 0) times.push(first);
    while (times.length < repeats) times.push(await timedRun(feeds, state.useAsync));
    const sorted = [...times].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    return { backend: tfjs().getBackend(), first_ms: first, median_ms: median, times_ms: times };
  } finally {
    tfjs().dispose(Object.values(feeds));
  }
}

async function cmdGreedy(req) {
  const model = requireModel();
  const tf = tfjs();
  const src = req.source;
  if (src?.dtype !== 'int32' || !Array.isArray(src.shape) || src.shape.length !== 2) {
    throw new Error('greedy: "source" must be an int32 tensor of shape [N, L]');
  }
  const names = { source_name: state.inputs, target_name: state.inputs, output_name: state.outputs };
  for (const [key, metas] of Object.entries(names)) {
    if (!metas.some((m) => m.name === req[key])) {
      throw new Error(`greedy: ${key} ${JSON.stringify(req[key])} is not one of the model's ${metas.map(fmt).join('; ')}`);
    }
  }
  const [n, L] = src.shape;
  const bytes = Buffer.from(src.data ?? '', 'base64');
  if (bytes.length !== n * L * 4) throw new Error(`greedy: ${bytes.length} data bytes for int32 [${n}, ${L}]`);
  const ids = new Int32Array(n * L);
  new Uint8Array(ids.buffer).set(bytes);
  const opts = {
    n, maxLen: L, bos: req.bos, eos: req.eos, batchSize: req.batch_size ?? 64,
    sourceName: req.source_name, targetName: req.target_name, outputName: req.output_name,
  };
  if (!Number.isInteger(opts.bos) || !Number.isInteger(opts.eos)) throw new Error('greedy: "bos" and "eos" must be integers');
  const t0 = performance.now();
  const out = await withExecMode((useAsync) => scoped(() => greedyDecode(tf, model, ids, { ...opts, useAsync })));
  const ms = performance.now() - t0;
  const data = Buffer.from(out.buffer, out.byteOffset, out.byteLength).toString('base64');
  return { ms, ids: { dtype: 'int32', shape: [n, Math.max(L - 1, 0)], data } };
}

async function cmdMemory() {
  const m = tfjs().memory();
  return { num_tensors: m.numTensors, num_bytes: m.numBytes, backend: tfjs().getBackend() };
}

async function cmdUnload() {
  disposeModel();
  return {};
}

const COMMANDS = { load: cmdLoad, unload: cmdUnload, predict: cmdPredict, greedy: cmdGreedy, time: cmdTime, memory: cmdMemory };

async function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return { id: null, ok: false, error: `request is not valid JSON: ${e.message}` };
  }
  const id = req?.id ?? null;
  const cmd = COMMANDS[req?.cmd];
  if (cmd === undefined) {
    return { id, ok: false, error: `unknown cmd ${JSON.stringify(req?.cmd)}; use one of ${Object.keys(COMMANDS).join(', ')}` };
  }
  try {
    return { id, ok: true, ...(await cmd(req)) };
  } catch (e) {
    log(`${req.cmd} failed: ${e?.stack ?? e}`);
    return { id, ok: false, error: String(e?.message ?? e) };
  }
}

async function main() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    protocolWrite(`${JSON.stringify(await handle(line))}\n`);
  }
  disposeModel();
}

main().then(
  () => process.exit(0),
  (e) => {
    log(`fatal: ${e?.stack ?? e}`);
    process.exit(1);
  },
);
