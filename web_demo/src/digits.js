// A drawing pad (mouse, pen and touch through pointer events) and the MNIST-style preprocessing of
// what was drawn: crop to the ink's bounding box, scale its longer side to 20 px with area
// averaging, and centre it by centre of mass in a 28x28 field (white digit on black, as in MNIST).

export const MNIST_SIZE = 28;
const BOX = 20; // MNIST digits fit a 20x20 box inside the 28x28 image
const INK = 0.1; // grey level (0..1) counted as ink when looking for the bounding box

/** A canvas to draw on in white over black. `onStroke` is called after each finished stroke. */
export class DrawingPad {
  constructor(canvas, { lineWidth = 20, onStroke = () => {} } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d', { willReadFrequently: true });
    this.lineWidth = lineWidth;
    this.onStroke = onStroke;
    this.drawing = null; // the active pointer id
    this.strokes = 0;
    this.clear();
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    for (const type of ['pointerup', 'pointercancel']) canvas.addEventListener(type, (e) => this.up(e));
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (this.canvas.width / r.width), (e.clientY - r.top) * (this.canvas.height / r.height)];
  }

  down(e) {
    if (this.drawing !== null || (e.pointerType === 'mouse' && e.button !== 0)) return;
    e.preventDefault();
    this.drawing = e.pointerId;
    try {
      this.canvas.setPointerCapture?.(e.pointerId); // keep the stroke when the finger leaves the box
    } catch {
      // a synthetic or already released pointer cannot be captured: draw without capture
    }
    const [x, y] = this.point(e);
    const c = this.ctx;
    c.fillStyle = '#fff';
    c.beginPath();
    c.arc(x, y, this.lineWidth / 2, 0, 2 * Math.PI);
    c.fill();
    this.last = [x, y];
  }

  move(e) {
    if (e.pointerId !== this.drawing) return;
    e.preventDefault();
    const events = e.getCoalescedEvents?.() ?? [];
    for (const ev of events.length ? events : [e]) {
      const [x, y] = this.point(ev);
      const c = this.ctx;
      c.strokeStyle = '#fff';
      c.lineWidth = this.lineWidth;
      c.lineCap = 'round';
      c.lineJoin = 'round';
      c.beginPath();
      c.moveTo(...this.last);
      c.lineTo(x, y);
      c.stroke();
      this.last = [x, y];
    }
  }

  up(e) {
    if (e.pointerId !== this.drawing) return;
    this.drawing = null;
    this.strokes += 1;
    this.onStroke();
  }

  clear() {
    this.ctx.fillStyle = '#000';
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.strokes = 0;
  }

  /** Grey levels in [0, 1], row-major, canvas.width x canvas.height. */
  grey() {
    const { width: w, height: h } = this.canvas;
    const rgba = this.ctx.getImageData(0, 0, w, h).data;
    const out = new Float32Array(w * h);
    for (let i = 0; i < w * h; i++) out[i] = (rgba[4 * i] + rgba[4 * i + 1] + rgba[4 * i + 2]) / 765;
    return out;
  }
}

/** Resample a w x h grey image to dw x dh by area averaging (each output pixel = mean of what it covers). */
export function resampleArea(src, w, h, dw, dh) {
  const axis = (n, dn) => {
    // For each output index: the source indices it overlaps and by how much.
    const step = n / dn;
    return Array.from({ length: dn }, (_, d) => {
      const a = d * step;
      const b = (d + 1) * step;
      const taps = [];
      for (let i = Math.floor(a); i < Math.min(n, Math.ceil(b)); i++) {
        const wgt = Math.min(b, i + 1) - Math.max(a, i);
        if (wgt > 0) taps.push([i, wgt / step]);
      }
      return taps;
    });
  };
  const xs = axis(w, dw);
  const ys = axis(h, dh);
  const rows = new Float32Array(h * dw);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < dw; x++) {
      let s = 0;
      for (const [i, wgt] of xs[x]) s += src[y * w + i] * wgt;
      rows[y * dw + x] = s;
    }
  }
  const out = new Float32Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      let s = 0;
      for (const [i, wgt] of ys[y]) s += rows[i * dw + x] * wgt;
      out[y * dw + x] = Math.min(1, s);
    }
  }
  return out;
}

/**
 * A drawing (grey levels in [0, 1], w x h) -> a 28x28 MNIST-like image (Float32Array of 784 in
 * [0, 1]), or null when nothing was drawn.
 */
export function toMnist(grey, w, h) {
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (grey[y * w + x] > INK) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const crop = new Float32Array(bw * bh);
  for (let y = 0; y < bh; y++) crop.set(grey.subarray((y0 + y) * w + x0, (y0 + y) * w + x0 + bw), y * bw);
  const scale = BOX / Math.max(bw, bh);
  const dw = Math.max(1, Math.round(bw * scale));
  const dh = Math.max(1, Math.round(bh * scale));
  const small = resampleArea(crop, bw, bh, dw, dh);
  // Centre of mass of the small image -> the centre of the 28x28 field (MNIST's mean is ~ (14, 14)).
  let m = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      const v = small[y * dw + x];
      m += v;
      mx += v * x;
      my += v * y;
    }
  }
  const ox = Math.round(14 - mx / m);
  const oy = Math.round(14 - my / m);
  const out = new Float32Array(MNIST_SIZE * MNIST_SIZE);
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      const tx = x + ox;
      const ty = y + oy;
      if (tx >= 0 && tx < MNIST_SIZE && ty >= 0 && ty < MNIST_SIZE) out[ty * MNIST_SIZE + tx] = small[y * dw + x];
    }
  }
  return out;
}

/** Paint a [0, 1] grey image (w x h) into a canvas of the same size. */
export function paintGrey(canvas, grey, w, h) {
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const v = Math.max(0, Math.min(255, Math.round(grey[i] * 255)));
    img.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}
