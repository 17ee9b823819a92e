// Browser timings for benchmarks/_browser.py. A run is timed from making the input tensor until the
// output's `await data()` resolves (what an app waits for); the first run after loading is reported
// apart from the steady state. Returns plain numbers for Python.

const now = () => performance.now();

let wasmThreads = 1;

function makeSetup(threads) {
  // Thread counts must be fixed before a backend starts: one page per thread count.
  if (globalThis.tf?.wasm) {
    tf.wasm.setWasmPaths(new URL('vendor/', location.href).href);
    wasmThreads = threads || 1;
  }
  if (globalThis.ort) {
    ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
    ort.env.wasm.numThreads = threads || 1;
  }
  return { isolated: globalThis.crossOriginIsolated === true, hardwareConcurrency: navigator.hardwareConcurrency };
}

async function steady(run, { runs, warmup, budgetMs }) {
  for (let i = 0; i < warmup; i++) await run();
  const times = [];
  const start = now();
  while (times.length < runs && (times.length < 10 || now() - start < budgetMs)) {
    const t0 = now();
    await run();
    times.push(now() - t0);
  }
  return times;
}

/** Start TF.js wasm once with `wasmThreads` threads (startTfjsWasm lifts TF.js's hardwareConcurrency / 2 cap). */
let wasmStarted = null;
async function useWasm() {
  if (wasmStarted === null) wasmStarted = await window.startTfjsWasm(tf, wasmThreads);
  if (!wasmStarted.ok) return false;
  if (tf.engine().backendName !== 'wasm') await tf.setBackend('wasm');
  return true;
}

async function benchTfjs({ backend, modelUrl, inputs, outputs, runs, warmup, budgetMs }) {
  if (backend === 'wasm' && !(await useWasm())) return { error: `unavailable: ${wasmStarted.reason}` };
  const warnings = [];
  const warn = console.warn;
  console.warn = (...a) => warnings.push(a.map(String).join(' '));
  let ok = false;
  try {
    ok = await tf.setBackend(backend);
    await tf.ready();
  } catch (e) {
    warnings.push(e.message);
  } finally {
    console.warn = warn;
  }
  if (!ok || tf.getBackend() !== backend) {
    return { error: `unavailable: ${(warnings.find((w) => w) || 'tf.setBackend returned false').split('\n')[0]}` };
  }
  const t0 = now();
  const model = await tf.loadGraphModel(modelUrl);
  const loadMs = now() - t0;
  let useAsync = false;
  const exec = async (feeds) => {
    if (!useAsync) {
      try {
        return model.execute(feeds, outputs);
      } catch (e) {
        if (!/executeAsync/.test(e.message)) throw e;
        useAsync = true; // control flow (a while loop): the async executor
      }
    }
    return model.executeAsync(feeds, outputs);
  };
  const run = async () => {
    const feeds = {};
    for (const x of inputs) feeds[x.tensor] = tf.tensor(x.data, x.shape, x.dtype);
    const out = await exec(feeds);
    const list = Array.isArray(out) ? out : [out];
    await Promise.all(list.map((t) => t.data()));
    tf.dispose(list);
    tf.dispose(Object.values(feeds));
  };
  const t1 = now();
  await run();
  const firstMs = now() - t1;
  const times = await steady(run, { runs, warmup, budgetMs });
  model.dispose();
  const threads = backend === 'wasm' && tf.wasm?.getThreadsCount ? tf.wasm.getThreadsCount() : null;
  return { backend: tf.getBackend(), loadMs, firstMs, times, threads, leakedTensors: tf.memory().numTensors };
}

// The wasm contestants (TF.js bundles and onnxruntime-web sessions) loaded side by side and timed
// round-robin, like the native runs: a slow phase of the machine hits all of them alike.
async function benchWasmInterleaved({ tfjs, onnx, rounds, batchMs, warmup }) {
  if (!(await useWasm())) return { error: `unavailable: the TF.js wasm backend did not start: ${wasmStarted.reason}` };
  const contestants = [];
  const results = {};
  for (const job of tfjs) {
    try {
      const t0 = now();
      const model = await tf.loadGraphModel(job.modelUrl);
      const loadMs = now() - t0;
      let useAsync = false;
      const run = async () => {
        const feeds = {};
        for (const x of job.inputs) feeds[x.tensor] = tf.tensor(x.data, x.shape, x.dtype);
        let out;
        if (!useAsync) {
          try {
            out = model.execute(feeds, job.outputs);
          } catch (e) {
            if (!/executeAsync/.test(e.message)) throw e;
            useAsync = true;
          }
        }
        if (useAsync) out = await model.executeAsync(feeds, job.outputs);
        const list = Array.isArray(out) ? out : [out];
        await Promise.all(list.map((t) => t.data()));
        tf.dispose(list);
        tf.dispose(Object.values(feeds));
      };
      const t1 = now();
      await run();
      results[job.key] = { backend: 'wasm', loadMs, firstMs: now() - t1, times: [], threads: tf.wasm.getThreadsCount() };
      contestants.push({ key: job.key, run });
    } catch (e) {
      results[job.key] = { error: `failed: ${e.message.split('\n')[0]}` };
    }
  }
  for (const job of onnx) {
    try {
      const t0 = now();
      const session = await ort.InferenceSession.create(job.modelUrl, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
      const loadMs = now() - t0;
      const run = async () => {
        const feeds = {};
        session.inputNames.forEach((name, i) => {
          const x = job.inputs[i];
          const data = x.dtype === 'int64' ? BigInt64Array.from(x.data.map(BigInt)) : Float32Array.from(x.data);
          feeds[name] = new ort.Tensor(x.dtype, data, x.shape);
        });
        const out = await session.run(feeds);
        const first = out[session.outputNames[0]];
        await (first.getData ? first.getData() : first.data);
      };
      const t1 = now();
      await run();
      results[job.key] = { backend: 'onnxruntime-web wasm', loadMs, firstMs: now() - t1, times: [], threads: ort.env.wasm.numThreads };
      contestants.push({ key: job.key, run });
    } catch (e) {
      results[job.key] = { error: `unavailable: ${e.message.split('\n')[0]}` };
    }
  }
  for (const c of contestants) for (let i = 0; i < warmup; i++) await c.run();
  for (let r = 0; r < rounds; r++) {
    const order = contestants.slice(r % contestants.length).concat(contestants.slice(0, r % contestants.length));
    for (const c of order) {
      const start = now();
      do {
        const t0 = now();
        await c.run();
        results[c.key].times.push(now() - t0);
      } while (now() - start < batchMs);
    }
  }
  return results;
}
