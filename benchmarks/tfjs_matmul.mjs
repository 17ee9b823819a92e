// Why the PyTorch translator's TF.js graph was slow on wasm: a broadcasting batch matmul
// ([B, L, K] x [K, N], what onnx2tf emits for a Linear) against the same product as one 2-D MatMul
// (what convert/_tfjs.py::flatten_weight_batch_matmuls rewrites it into).
// Run from the repository root: node benchmarks/tfjs_matmul.mjs [wasm|cpu]
import { createRequire } from 'node:module';

const webRequire = createRequire(new URL('../web_demo/package.json', import.meta.url));
const tf = webRequire('@tensorflow/tfjs');
webRequire('@tensorflow/tfjs-backend-wasm');
const backend = process.argv[2] || 'wasm';
await tf.setBackend(backend);
await tf.ready();

const [B, L, K, N, REPEATS] = [32, 30, 512, 8000, 5];
const x3 = tf.randomNormal([B, L, K]);
const x2 = x3.reshape([B * L, K]);
const w = tf.randomNormal([K, N]);
const bias = tf.randomNormal([N]);

async function medianMs(f) {
  for (let i = 0; i < 2; i++) { const y = f(); await y.data(); y.dispose(); }
  const times = [];
  for (let i = 0; i < REPEATS; i++) {
    const start = performance.now();
    const y = f();
    await y.data();
    y.dispose();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(REPEATS / 2)];
}

const rows = [
  ['[B, L, K] x [K, N] batch matmul (broadcast)', () => tf.matMul(x3, w)],
  ['[B*L, K] x [K, N] matmul', () => tf.matMul(x2, w)],
  ['[B*L, K] x [K, N] fused matmul + bias', () => tf.fused.matMul({ a: x2, b: w, bias })],
];
const results = {};
for (const [name, f] of rows) results[name] = await medianMs(f);
const base = results[rows[1][0]];
console.log(`TF.js ${tf.version.tfjs} on ${tf.getBackend()}, B=${B} L=${L} K=${K} N=${N}, median of ${REPEATS}`);
for (const [name] of rows) console.log(`${name}: ${results[name].toFixed(1)} ms (${(results[name] / base).toFixed(2)}x the 2-D matmul)`);
