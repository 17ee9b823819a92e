// Greedy decoding for a TF.js translator graph model, shared by Node (verify/_tfjs_runner.mjs)
// and the browser demo. Signature: (source ids [N, L] int32, target prefix ids [N, L] int32)
// -> logits [N, L, V] float32. Matches edgeproof.train._evaluate.greedy_decode id for id.

/**
 * Run the model once on [a, L] source and target tensors; return argmax(logits[:, t, :]) as
 * an Int32Array of length a. The slice and argmax happen inside TF.js: logits never reach JS.
 */
async function nextIds(tf, model, feeds, outputName, t, useAsync) {
  let ids;
  if (useAsync) {
    const logits = await model.executeAsync(feeds, outputName);
    try {
      ids = tf.tidy(() => pickStep(tf, logits, t));
    } finally {
      tf.dispose(logits);
    }
  } else {
    ids = tf.tidy(() => pickStep(tf, model.execute(feeds, outputName), t));
  }
  try {
    return await ids.data();
  } finally {
    ids.dispose();
  }
}

/** argmax over the vocabulary of logits[:, t, :] -> int32 [a]. */
function pickStep(tf, logits, t) {
  if (Array.isArray(logits)) throw new Error('greedyDecode: outputName must name exactly one output');
  if (logits.rank !== 3) throw new Error(`greedyDecode: logits must be [N, L, V], got [${logits.shape}]`);
  const [a, , v] = logits.shape;
  return tf.argMax(tf.reshape(tf.slice(logits, [0, t, 0], [a, 1, v]), [a, v]), -1);
}

/** Rows `rows` of a row-major [*, len] Int32Array, packed into a new Int32Array. */
function gatherRows(buf, rows, len) {
  const out = new Int32Array(rows.length * len);
  rows.forEach((r, i) => out.set(buf.subarray(r * len, (r + 1) * len), i * len));
  return out;
}

/**
 * Greedy-decode one chunk of m rows: src and the returned target are row-major [m, L].
 * Only rows that have not emitted EOS are run (the batch is compacted as rows finish).
 */
async function decodeChunk(tf, model, src, m, o) {
  const L = o.maxLen;
  const tgt = new Int32Array(m * L);
  for (let i = 0; i < m; i++) tgt[i * L] = o.bos;
  let active = Array.from({ length: m }, (_, i) => i);
  let srcT = null;
  try {
    for (let t = 0; t < L - 1 && active.length > 0; t++) {
      if (srcT === null) srcT = tf.tensor2d(gatherRows(src, active, L), [active.length, L], 'int32');
      const tgtT = tf.tensor2d(gatherRows(tgt, active, L), [active.length, L], 'int32');
      let ids;
      try {
        ids = await nextIds(tf, model, { [o.sourceName]: srcT, [o.targetName]: tgtT }, o.outputName, t, o.useAsync);
      } finally {
        tgtT.dispose();
      }
      const still = [];
      active.forEach((row, k) => {
        tgt[row * L + t + 1] = ids[k];
        if (ids[k] !== o.eos) still.push(row);
      });
      if (still.length !== active.length) {
        srcT.dispose();
        srcT = null;
      }
      active = still;
    }
  } finally {
    if (srcT !== null) srcT.dispose();
  }
  return tgt;
}

/**
 * Greedy decoding at a fixed maximum length.
 * @param tf the TF.js namespace
 * @param model a tf.GraphModel: (source [N, L] int32, target prefix [N, L] int32) -> logits [N, L, V]
 * @param sourceIds Int32Array of n * maxLen source ids, row-major
 * @param opts {n, maxLen, bos, eos, sourceName, targetName, outputName, batchSize = 64, useAsync = false}
 *   (useAsync: run the model with executeAsync instead of execute)
 * @returns Int32Array of n * (maxLen - 1): the generated ids without BOS; EOS kept, 0 after it
 */
export async function greedyDecode(tf, model, sourceIds, opts) {
  const o = { batchSize: 64, useAsync: false, ...opts };
  const { n, maxLen: L, batchSize } = o;
  if (!(sourceIds instanceof Int32Array)) throw new Error('greedyDecode: sourceIds must be an Int32Array');
  if (!(n >= 0 && L >= 1 && sourceIds.length === n * L)) {
    throw new Error(`greedyDecode: sourceIds has ${sourceIds.length} ids, expected n * maxLen = ${n} * ${L}`);
  }
  if (!(batchSize >= 1)) throw new Error(`greedyDecode: batchSize must be >= 1, got ${batchSize}`);
  const out = new Int32Array(n * (L - 1));
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const tgt = await decodeChunk(tf, model, sourceIds.subarray(start * L, (start + m) * L), m, o);
    for (let i = 0; i < m; i++) out.set(tgt.subarray(i * L + 1, (i + 1) * L), (start + i) * (L - 1));
  }
  return out;
}
