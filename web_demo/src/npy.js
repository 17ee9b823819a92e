// NumPy .npy and .npz files, read in the page for the user-model panel. Treated as hostile: sizes are
// bounded, and anything but a plain C-order little-endian array of float32 / int32 / int64 / uint8 /
// int8 is refused with one sentence saying what and what to do.
//
// .npy (format versions 1 and 2): "\x93NUMPY", major, minor, a header length (uint16 in v1, uint32 in
// v2), a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (1, 28, 28, 1), },
// then the raw data. .npz: a zip of .npy files (np.savez: stored; np.savez_compressed: deflate).

export class NpyError extends Error {
  constructor(message) {
    super(message);
    this.name = 'NpyError';
  }
}

export const MAX_BYTES = 256 * 1024 * 1024;
const MAX_ENTRIES = 64;
const DTYPES = {
  '<f4': ['float32', Float32Array], '<i4': ['int32', Int32Array], '<i8': ['int64', BigInt64Array],
  '|u1': ['uint8', Uint8Array], '|i1': ['int8', Int8Array], '<u1': ['uint8', Uint8Array], '<i1': ['int8', Int8Array],
};
const FIX = 'save it with numpy as a C-order little-endian float32, int32, int64, uint8 or int8 array '
  + '(np.save("x.npy", np.ascontiguousarray(x, dtype=np.float32)))';

function parseHeader(text, what) {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new NpyError(`${what}: the .npy header has no descr / fortran_order / shape: not a NumPy array file`);
  }
  if (!(descr in DTYPES)) {
    const why = descr.startsWith('>') ? 'big-endian' : `dtype ${descr}`;
    throw new NpyError(`${what}: ${why} is not supported; ${FIX}`);
  }
  if (fortran === 'True') throw new NpyError(`${what}: Fortran-order arrays are not supported; ${FIX}`);
  const dims = shapeText.split(',').map((d) => d.trim()).filter((d) => d !== '');
  if (!dims.every((d) => /^\d+$/.test(d))) throw new NpyError(`${what}: shape (${shapeText}) is not a tuple of sizes`);
  return { descr, shape: dims.map(Number) };
}

/**
 * One .npy file (ArrayBuffer or Uint8Array) -> {dtype, shape, data}: data is a Float32Array,
 * Int32Array, Uint8Array or Int8Array; int64 values become an Int32Array when they all fit (else an
 * NpyError). `what` names the file in messages.
 */
export function parseNpy(buffer, what = 'the .npy file') {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  if (bytes.byteLength > MAX_BYTES) throw new NpyError(`${what} is over ${MAX_BYTES >> 20} MB`);
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (bytes.byteLength < 10 || magic.some((b, i) => bytes[i] !== b)) throw new NpyError(`${what} is not a .npy file (no \\x93NUMPY magic)`);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen;
  let start;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2) {
    if (bytes.byteLength < 12) throw new NpyError(`${what} is truncated`);
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new NpyError(`${what}: .npy format version ${major} is not supported (versions 1 and 2 are); ${FIX}`);
  }
  if (start + headerLen > bytes.byteLength) throw new NpyError(`${what} is truncated inside its header`);
  const header = new TextDecoder('latin1').decode(bytes.subarray(start, start + headerLen));
  const { descr, shape } = parseHeader(header, what);
  const [dtype, Arr] = DTYPES[descr];
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const need = count * Arr.BYTES_PER_ELEMENT;
  if (bytes.byteLength - offset !== need) {
    throw new NpyError(`${what}: shape (${shape}) ${dtype} needs ${need} data bytes, the file has ${bytes.byteLength - offset}`);
  }
  const copy = bytes.slice(offset, offset + need); // aligned, and detached from the caller's buffer
  let data = new Arr(copy.buffer);
  if (dtype === 'int64') {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const v = data[i];
      if (v < -2147483648n || v > 2147483647n) throw new NpyError(`${what}: int64 value ${v} does not fit in int32, which the browser runtimes take`);
      out[i] = Number(v);
    }
    data = out;
  }
  return { dtype: dtype === 'int64' ? 'int32' : dtype, shape, data };
}

async function inflateRaw(bytes, size, what) {
  if (typeof DecompressionStream === 'undefined') throw new NpyError(`${what} is compressed and this browser cannot inflate it; save with np.savez (not savez_compressed)`);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  const reader = stream.getReader();
  const out = new Uint8Array(size);
  let at = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.length > size) throw new NpyError(`${what} inflates to more than the ${size} bytes its zip entry declares`);
    out.set(value, at);
    at += value.length;
  }
  if (at !== size) throw new NpyError(`${what} inflates to ${at} bytes, its zip entry declares ${size}`);
  return out;
}

/** An .npz (zip of .npy) -> {name: {dtype, shape, data}} (names without ".npy"). */
export async function parseNpz(buffer, what = 'the .npz file') {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  if (bytes.byteLength > MAX_BYTES) throw new NpyError(`${what} is over ${MAX_BYTES >> 20} MB`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let p = bytes.byteLength - 22; p >= Math.max(0, bytes.byteLength - 22 - 65535); p--) {
    if (view.getUint32(p, true) === 0x06054b50) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) throw new NpyError(`${what} is not a zip archive (.npz): no end-of-central-directory record`);
  const entries = view.getUint16(eocd + 10, true);
  let p = view.getUint32(eocd + 16, true);
  if (entries > MAX_ENTRIES) throw new NpyError(`${what} holds ${entries} arrays; at most ${MAX_ENTRIES} are read`);
  const arrays = {};
  for (let i = 0; i < entries; i++) {
    if (p + 46 > bytes.byteLength || view.getUint32(p, true) !== 0x02014b50) throw new NpyError(`${what}: damaged zip directory`);
    const method = view.getUint16(p + 10, true);
    const csize = view.getUint32(p + 20, true);
    const usize = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const skip = view.getUint16(p + 30, true) + view.getUint16(p + 32, true);
    const local = view.getUint32(p + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + skip;
    if (csize === 0xffffffff || usize === 0xffffffff) throw new NpyError(`${what}: ZIP64 archives are not supported`);
    if (!name.endsWith('.npy') || name.includes('/') || name.includes('\\')) throw new NpyError(`${what}: entry ${JSON.stringify(name)} is not a top-level .npy array`);
    if (usize > MAX_BYTES) throw new NpyError(`${what}: ${name} is over ${MAX_BYTES >> 20} MB`);
    if (local + 30 > bytes.byteLength || view.getUint32(local, true) !== 0x04034b50) throw new NpyError(`${what}: damaged zip entry ${name}`);
    const dataAt = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    if (dataAt + csize > bytes.byteLength) throw new NpyError(`${what}: ${name} is truncated`);
    const raw = bytes.subarray(dataAt, dataAt + csize);
    let npy;
    if (method === 0) npy = raw;
    else if (method === 8) npy = await inflateRaw(raw, usize, `${what}: ${name}`);
    else throw new NpyError(`${what}: ${name} uses zip compression method ${method}; save with np.savez or np.savez_compressed`);
    arrays[name.slice(0, -4)] = parseNpy(npy, `${what}: ${name}`);
  }
  return arrays;
}
