// The bundle's golden self-test, in the browser: probe inputs and the outputs the deploy gate measured
// for THIS artifact (selftest.json, format edgeproof.runtime._selftest), re-run in the runtime the page
// uses. Every panel runs it when a bundle first loads in a runtime (panel.js) and shows the result as
// "Proven in this browser" beside the gate's verdict (facts.js); a swapped or corrupted model fails it.
// The comparison is edgeproof.runtime._selftest's: an element is within tolerance when
// |actual - expected| <= atol + rtol * |expected|; a self-test passes when at most outlier_fraction
// of the elements are not and none is further than outlier_atol (both 0 by default).

const WIRE = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array, int8: Int8Array };
const MAX_BYTES = 16 * 1024 * 1024;
// Which recorded outputs a runtime compares with: LiteRT.js runs ai-edge-litert's kernels; the TF.js
// backends compare with the outputs the gate measured with TF.js (family "tfjs").
const FAMILIES = { tflite: ['ai_edge_litert', 'tflite_runtime'], tfjs: ['tfjs'] };

/** A self-test tensor {dtype, shape, data: base64 of little-endian bytes} -> {dtype, shape, data}. */
export function decodeWire(w, where) {
  const Arr = WIRE[w?.dtype] ?? (w?.dtype === 'int64' ? BigInt64Array : undefined);
  if (Arr === undefined || !Array.isArray(w.shape) || typeof w.data !== 'string') throw new Error(`${where}: not a tensor this page can read (${w?.dtype})`);
  const raw = atob(w.data);
  const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  const size = w.shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== size * Arr.BYTES_PER_ELEMENT) throw new Error(`${where}: ${bytes.length} bytes for ${w.dtype} [${w.shape}]`);
  const data = new Arr(bytes.buffer);
  if (Arr !== BigInt64Array) return { dtype: w.dtype, shape: w.shape, data };
  if (data.some((v) => v < -2147483648n || v > 2147483647n)) throw new Error(`${where}: int64 values outside int32`);
  return { dtype: 'int32', shape: w.shape, data: Int32Array.from(data, Number) };
}

const num = (v) => (Number.isFinite(Number(v)) ? Number(v) : 0);

/**
 * The bundle's self-test, fetched and checked: {feeds, expected, family, tolerance}; null when the
 * manifest names none. Throws a one-line error for a file that is not a self-test.
 */
export async function loadSelfTest(bundle, manifest) {
  const test = manifest.self_test;
  if (test == null) return null;
  if (typeof test?.file !== 'string' || test.file.includes('/') || test.file.includes('..')) throw new Error(`${bundle}: manifest self_test names no file in the bundle`);
  const response = await fetch(`${bundle}/${test.file}`);
  if (!response.ok) throw new Error(`cannot fetch the self-test ${bundle}/${test.file}: HTTP ${response.status}`);
  const text = await response.text();
  if (text.length > MAX_BYTES) throw new Error(`${bundle}/${test.file} is over 16 MB: not a self-test`);
  let json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${bundle}/${test.file} is not JSON: ${e.message}`);
  }
  if (json?.format !== 'edgeproof-selftest' || json.format_version !== 1) throw new Error(`${bundle}/${test.file} is not an edgeproof self-test (format version 1)`);
  const decode = (group, where) => Object.fromEntries(Object.entries(group ?? {}).map(([k, w]) => [k, decodeWire(w, `${test.file} ${where} ${k}`)]));
  const feeds = decode(json.inputs, 'inputs');
  const missing = manifest.inputs.map((b) => b.name).filter((n) => !(n in feeds));
  if (missing.length) throw new Error(`${bundle}/${test.file} has no probe for input ${missing.join(', ')}`);
  const outs = json.outputs ?? {};
  const flat = Object.values(outs).every((v) => typeof v?.dtype === 'string');
  const wanted = FAMILIES[manifest.artifact_target ?? 'tfjs'] ?? [];
  const family = flat ? null : (wanted.find((f) => f in outs) ?? Object.keys(outs)[0]);
  const t = test.tolerance ?? {};
  return {
    feeds, expected: decode(flat ? outs : outs[family], `outputs ${family ?? ''}`), family, probes: feeds[manifest.inputs[0].name].shape[0],
    tolerance: { atol: num(t.atol), rtol: num(t.rtol), outlierFraction: num(t.outlier_fraction), outlierAtol: num(t.outlier_atol) },
  };
}

/** Outputs {name: {data}} against a loaded self-test: {ok, maxErr, outside, total, missing}. */
export function compareSelfTest(outputs, test) {
  const { atol, rtol, outlierFraction, outlierAtol } = test.tolerance;
  let maxErr = 0;
  let outside = 0; // elements beyond atol + rtol * |expected|
  let total = 0;
  let missing = false;
  for (const [name, want] of Object.entries(test.expected)) {
    const got = outputs[name]?.data;
    if (got === undefined || got.length !== want.data.length) {
      missing = true;
      continue;
    }
    for (let i = 0; i < want.data.length; i++) {
      const err = Math.abs(Number(got[i]) - Number(want.data[i]));
      if (!(err <= atol + rtol * Math.abs(Number(want.data[i])))) outside += 1; // NaN counts as outside
      maxErr = Number.isNaN(err) ? Infinity : Math.max(maxErr, err);
      total += 1;
    }
  }
  const ok = !missing && total > 0 && (outside === 0 || (outside <= outlierFraction * total && maxErr <= outlierAtol));
  return { ok, maxErr, outside, total, missing };
}

/** "Chromium 131" / "Firefox 128" / "Safari 17": the browser this page runs in, from its user agent. */
export function browserName() {
  const brands = globalThis.navigator?.userAgentData?.brands ?? [];
  const brand = brands.find((b) => !/not.?a.?brand/i.test(b.brand) && b.brand !== 'Chromium') ?? brands.find((b) => b.brand === 'Chromium');
  if (brand) return `${brand.brand} ${brand.version}`;
  const ua = globalThis.navigator?.userAgent ?? '';
  const hit = ua.match(/(HeadlessChrome|Edg|Firefox|Chrome|Version)\/(\d+)/);
  if (!hit) return 'this browser';
  const name = { HeadlessChrome: 'Headless Chrome', Edg: 'Edge', Version: 'Safari' }[hit[1]] ?? hit[1];
  return `${name} ${hit[2]}`;
}
