// A bounded reader for the parts of a .tflite flatbuffer that LiteRT.js needs pinned, and the one
// rewrite it needs: LiteRT.js 2.5.3 checks an input buffer against the tensor's `shape_signature`
// literally, so a model whose batch dimension is dynamic (-1, what the TFLite converter writes for
// Keras models) refuses every concrete input ("TensorBuffer ranked tensor type Float32[1, 28, 28, 1]
// does not match expected ranked tensor type Float32[-1, 28, 28, 1]"). The TFLite interpreter
// (ai-edge-litert, tflite-runtime) allocates such a tensor at its static `shape` (batch 1) unless it is
// resized; pinDynamicDims() gives LiteRT.js the same for the model's inputs and outputs: each -1 in
// their shape_signature becomes the tensor's static dimension, written in place in a copy of the bytes
// (same length, same ops and weights). Every offset is bounds-checked: a truncated or malformed file
// is a TfliteFormatError.
//
// Schema (tensorflow/compiler/mlir/lite/schema/schema.fbs): Model {version 0, operator_codes 1,
// subgraphs 2, ...}; SubGraph {tensors 0, inputs 1, outputs 2, ...}; Tensor {shape 0, type 1, buffer 2,
// name 3, quantization 4, is_variable 5, sparsity 6, shape_signature 7, ...}.

export class TfliteFormatError extends Error {
  constructor(message) {
    super(message);
    this.name = 'TfliteFormatError';
  }
}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  need(pos, size, what) {
    if (!Number.isInteger(pos) || pos < 0 || pos + size > this.bytes.byteLength) {
      throw new TfliteFormatError(`not a complete .tflite file: ${what} at byte ${pos} lies outside its ${this.bytes.byteLength} bytes (truncated or not a TFLite flatbuffer)`);
    }
  }

  u16(pos, what) { this.need(pos, 2, what); return this.view.getUint16(pos, true); }
  u32(pos, what) { this.need(pos, 4, what); return this.view.getUint32(pos, true); }
  i32(pos, what) { this.need(pos, 4, what); return this.view.getInt32(pos, true); }

  /** Position of field `index` of the table at `table`, or null when the field is absent. */
  field(table, index, what) {
    const vtable = table - this.i32(table, `${what} table`);
    const vsize = this.u16(vtable, `${what} vtable`);
    const slot = 4 + 2 * index;
    if (slot + 2 > vsize) return null;
    const off = this.u16(vtable + slot, `${what} vtable entry`);
    return off === 0 ? null : table + off;
  }

  /** Follow the uoffset stored at `pos`. */
  deref(pos, what) {
    return pos + this.u32(pos, what);
  }

  /** [start, length] of the vector referenced by field `index` of `table` (null when absent). */
  vector(table, index, elementSize, what) {
    const at = this.field(table, index, what);
    if (at === null) return null;
    const vec = this.deref(at, what);
    const length = this.u32(vec, `${what} length`);
    this.need(vec + 4, length * elementSize, what);
    return [vec + 4, length];
  }
}

/** Check the flatbuffer header; returns a Reader and the root (Model) table position. */
function open(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new TfliteFormatError('a .tflite model must be given as bytes (Uint8Array)');
  if (bytes.byteLength < 8) throw new TfliteFormatError(`not a .tflite file: ${bytes.byteLength} bytes`);
  const ident = String.fromCharCode(...bytes.subarray(4, 8));
  if (ident !== 'TFL3') throw new TfliteFormatError(`not a .tflite file: file identifier ${JSON.stringify(ident)}, expected "TFL3"`);
  const r = new Reader(bytes);
  return { r, model: r.deref(0, 'root table') };
}

/** Walk every tensor of every subgraph: fn(reader, tensorTable, subgraphIndex, tensorIndex). */
function eachTensor(bytes, fn) {
  const { r, model } = open(bytes);
  const subgraphs = r.vector(model, 2, 4, 'Model.subgraphs');
  if (subgraphs === null || subgraphs[1] === 0) throw new TfliteFormatError('not a valid .tflite file: the model has no subgraph');
  for (let s = 0; s < subgraphs[1]; s++) {
    const sg = r.deref(subgraphs[0] + 4 * s, 'SubGraph');
    const tensors = r.vector(sg, 0, 4, 'SubGraph.tensors');
    if (tensors === null) continue;
    for (let t = 0; t < tensors[1]; t++) fn(r, r.deref(tensors[0] + 4 * t, 'Tensor'), s, t);
  }
}

/**
 * A copy of `bytes` in which each -1 in the shape_signature of the main subgraph's input and output
 * tensors is replaced by the tensor's static shape; returns {bytes, pinned: dimensions pinned}. Only
 * the model's inputs and outputs: those are what LiteRT.js checks buffers against. Tensors inside the
 * graph keep their signature (pinning a WHILE body's tensors too made LiteRT.js 2.5.3 return wrong
 * numbers for onnx2tf's LSTM loop: 2e-19 where the interpreter gives 0.52). Throws TfliteFormatError.
 */
export function pinDynamicDims(bytes) {
  const out = new Uint8Array(bytes); // a copy: the caller's bytes (checked by sha256) stay as they are
  const view = new DataView(out.buffer);
  const { r, model } = open(out);
  const subgraphs = r.vector(model, 2, 4, 'Model.subgraphs');
  if (subgraphs === null || subgraphs[1] === 0) throw new TfliteFormatError('not a valid .tflite file: the model has no subgraph');
  const sg = r.deref(subgraphs[0], 'SubGraph');
  const tensors = r.vector(sg, 0, 4, 'SubGraph.tensors') ?? [0, 0];
  const ios = [1, 2].flatMap((field) => {
    const v = r.vector(sg, field, 4, 'SubGraph inputs/outputs');
    return v === null ? [] : Array.from({ length: v[1] }, (_, i) => r.i32(v[0] + 4 * i, 'SubGraph inputs/outputs'));
  });
  let pinned = 0;
  for (const t of new Set(ios)) {
    if (t < 0 || t >= tensors[1]) throw new TfliteFormatError(`not a valid .tflite file: subgraph input/output ${t} of ${tensors[1]} tensors`);
    const tensor = r.deref(tensors[0] + 4 * t, 'Tensor');
    const sig = r.vector(tensor, 7, 4, 'Tensor.shape_signature');
    if (sig === null) continue;
    const shape = r.vector(tensor, 0, 4, 'Tensor.shape');
    for (let i = 0; i < sig[1]; i++) {
      const pos = sig[0] + 4 * i;
      if (view.getInt32(pos, true) !== -1) continue;
      const fixed = shape !== null && shape[1] === sig[1] ? view.getInt32(shape[0] + 4 * i, true) : 1;
      view.setInt32(pos, fixed > 0 ? fixed : 1, true);
      pinned += 1;
    }
  }
  return { bytes: out, pinned };
}

function readString(r, table, index, what) {
  const at = r.field(table, index, what);
  if (at === null) return null;
  const s = r.deref(at, what);
  const n = r.u32(s, `${what} length`);
  r.need(s + 4, n, what);
  return new TextDecoder().decode(r.bytes.subarray(s + 4, s + 4 + n));
}

function tensorNames(r, model, subgraphIndex) {
  const subgraphs = r.vector(model, 2, 4, 'Model.subgraphs');
  const sg = r.deref(subgraphs[0] + 4 * subgraphIndex, 'SubGraph');
  const tensors = r.vector(sg, 0, 4, 'SubGraph.tensors') ?? [0, 0];
  const names = [];
  for (let t = 0; t < tensors[1]; t++) names.push(readString(r, r.deref(tensors[0] + 4 * t, 'Tensor'), 3, 'Tensor.name') ?? '');
  const ios = (index, what) => {
    const v = r.vector(sg, index, 4, what);
    return v === null ? [] : Array.from({ length: v[1] }, (_, i) => r.i32(v[0] + 4 * i, what));
  };
  return { names, inputs: ios(1, 'SubGraph.inputs'), outputs: ios(2, 'SubGraph.outputs') };
}

/**
 * Check that every weight buffer lies inside the file, and describe the model's first signature:
 * {key, inputs: [{name, tensor}], outputs: [...]} where `name` is the signature's name for the tensor
 * (what LiteRT.js reports) and `tensor` the tensor's own name (what the TFLite interpreter and the
 * manifest use). Without a SignatureDef the subgraph's inputs/outputs are listed by tensor name.
 */
export function describe(bytes) {
  const { r, model } = open(bytes);
  countTensors(bytes);
  const buffers = r.vector(model, 4, 4, 'Model.buffers');
  if (buffers !== null) {
    for (let b = 0; b < buffers[1]; b++) {
      const buffer = r.deref(buffers[0] + 4 * b, 'Buffer');
      r.vector(buffer, 0, 1, `Buffer ${b} data`);
      const offAt = r.field(buffer, 1, 'Buffer.offset');
      const sizeAt = r.field(buffer, 2, 'Buffer.size');
      if (offAt !== null && sizeAt !== null) {
        const offset = Number(r.view.getBigUint64(offAt, true));
        const size = Number(r.view.getBigUint64(sizeAt, true));
        r.need(offset, size, `Buffer ${b} (external data)`);
      }
    }
  }
  const sigs = r.vector(model, 7, 4, 'Model.signature_defs');
  if (sigs === null || sigs[1] === 0) {
    const { names, inputs, outputs } = tensorNames(r, model, 0);
    const list = (ids) => ids.map((i) => ({ name: names[i], tensor: names[i] }));
    return { key: null, inputs: list(inputs), outputs: list(outputs) };
  }
  const sig = r.deref(sigs[0], 'SignatureDef');
  const subgraphAt = r.field(sig, 4, 'SignatureDef.subgraph_index');
  const subgraph = subgraphAt === null ? 0 : r.u32(subgraphAt, 'SignatureDef.subgraph_index');
  const { names } = tensorNames(r, model, subgraph);
  const maps = (index, what) => {
    const v = r.vector(sig, index, 4, what);
    if (v === null) return [];
    return Array.from({ length: v[1] }, (_, i) => {
      const map = r.deref(v[0] + 4 * i, what);
      const tAt = r.field(map, 1, 'TensorMap.tensor_index');
      const t = tAt === null ? 0 : r.u32(tAt, 'TensorMap.tensor_index');
      if (t >= names.length) throw new TfliteFormatError(`not a valid .tflite file: ${what} names tensor ${t} of ${names.length}`);
      return { name: readString(r, map, 0, 'TensorMap.name'), tensor: names[t] };
    });
  };
  return { key: readString(r, sig, 2, 'SignatureDef.signature_key'), inputs: maps(0, 'SignatureDef.inputs'), outputs: maps(1, 'SignatureDef.outputs') };
}

/** The number of tensors in the model's subgraphs (a cheap whole-file structure check). */
export function countTensors(bytes) {
  let n = 0;
  eachTensor(bytes, () => { n += 1; });
  return n;
}
