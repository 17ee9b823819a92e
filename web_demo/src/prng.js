// A seeded standard-normal generator: mulberry32 (32-bit state) + Box-Muller. Same seed -> same numbers
// in every browser, so a GAN seed always shows the same digits for the same bundle.

/** Uniform floats in (0, 1) from a 32-bit integer seed. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296; // never exactly 0 or 1
  };
}

/** n samples of N(0, 1) as a Float32Array, from `seed`. */
export function normalSamples(seed, n) {
  const uniform = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const theta = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}
