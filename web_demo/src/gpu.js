// Whether this browser can give a WebGPU device (for TF.js's webgpu backend and LiteRT.js's webgpu
// accelerator). Asked once per page; the answer is the reason it cannot, or null.

let answer = null;

/** Why WebGPU cannot be used here (a sentence), or null when an adapter exists. */
export function webgpuProblem() {
  if (answer === null) answer = ask();
  return answer;
}

async function ask() {
  if (globalThis.navigator?.gpu === undefined) {
    return 'WebGPU is not exposed by this browser (navigator.gpu is undefined; it needs a secure context and a browser with WebGPU)';
  }
  let adapter;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch (e) {
    return `navigator.gpu.requestAdapter() failed: ${e.message}`;
  }
  if (adapter === null) {
    return 'no WebGPU adapter: navigator.gpu.requestAdapter() returned null (no usable GPU; '
      + 'headless Chromium on a machine without a GPU has none)';
  }
  return null;
}
