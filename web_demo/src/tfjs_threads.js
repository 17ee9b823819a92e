// TF.js wasm with the threads it is asked for.
//
// Why TF.js 4.22's wasm backend runs one thread on a 2-core machine even on a cross-origin isolated
// page: the threaded-SIMD binary does load (WASM_HAS_MULTITHREAD_SUPPORT is true, its 8 pthread
// workers start), but its C++ side caps the pool (tfjs-backend-wasm/src/cc/backend.cc):
//   num_cores = emscripten_num_logical_cores() / 2;   // "many x86-64 CPUs have 2 threads per core"
//   init_with_threads_count(n): count = min(max(n, 1), 8, num_cores)
// emscripten_num_logical_cores() is navigator.hardwareConcurrency, read once when the module's
// constructors run. With hardwareConcurrency 2, num_cores is 1, and setThreadsCount(2) is silently
// cut to 1 (getThreadsCount() says 1). The fix: while the backend initialises, and only then, the page
// reports hardwareConcurrency = 2 x the threads wanted, so the cap lets them through; the real value
// is restored right after. setThreadsCount() must come before the first tf.setBackend('wasm') (the
// pool is made once per page).

/** The number of logical cores the browser reports (navigator.hardwareConcurrency, at least 1). */
export function logicalCores() {
  return Math.max(1, Number(navigator.hardwareConcurrency) || 1);
}

/**
 * The demo's default wasm thread count: one core left to the page and the browser, at most 4. The
 * pool's threads include the page's main thread, and a worker that the OS does not schedule at once
 * stalls every op of a small model: on a shared 2-core machine, TF.js's mnist_cnn took 11 ms on 2
 * threads against 0.8 ms on 1 (tests/test_browser_runtime.py prints the ratio). ?threads=N overrides.
 */
export function defaultThreads() {
  return Math.max(1, Math.min(4, logicalCores() - 1));
}

/**
 * Start TF.js's wasm backend with `threads` threads (call once per page, before anything else starts
 * the wasm backend). Returns {ok, threads: what the backend reports, reason} and never throws for an
 * initialisation failure (TF.js reports those through console.warn, captured as `reason`).
 */
export async function startTfjsWasm(tf, threads) {
  if (tf?.wasm === undefined) return { ok: false, threads: 0, reason: 'the TF.js wasm backend script (tf-backend-wasm.min.js) is not loaded' };
  const wanted = Math.max(1, Math.floor(threads));
  tf.wasm.setThreadsCount(wanted);
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => warnings.push(args.map(String).join(' '));
  Object.defineProperty(navigator, 'hardwareConcurrency', { configurable: true, get: () => 2 * wanted });
  let ok = false;
  try {
    ok = await tf.setBackend('wasm');
    await tf.ready();
  } catch (e) {
    warnings.push(e.message);
  } finally {
    delete navigator.hardwareConcurrency; // the own property goes: Navigator.prototype's real getter again
    console.warn = warn;
  }
  if (!ok || tf.engine().backendName !== 'wasm') {
    const why = warnings.find((w) => w && !w.startsWith('Initialization of backend')) ?? warnings[0] ?? 'tf.setBackend returned false';
    return { ok: false, threads: 0, reason: why.split('\n')[0] };
  }
  return { ok: true, threads: tf.wasm.getThreadsCount(), reason: null };
}
