// The five model panels: digits (mnist_cnn), sentiment (imdb_lstm), GAN digits (mnist_gan),
// German -> English (translator) and the fitted line (linreg).

import { DrawingPad, MNIST_SIZE, paintGrey, toMnist } from './digits.js';
import { greedyDecode } from './greedy.js';
import { Panel, el } from './panel.js';
import { mulberry32, normalSamples } from './prng.js';
import { execute, loadPreprocessing, predict } from './runtime.js';
import { greedyDecodeTflite } from './tflite_bundle.js';
import { ImdbTokenizer, WordTokenizer } from './tokenizers.js';

const q = (root, role) => root.querySelector(`[data-role=${role}]`);

/** Submit on Ctrl+Enter / Cmd+Enter in a textarea. */
function submitOnCtrlEnter(textarea, fn) {
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      fn();
    }
  });
}

function only(outputs) {
  const values = Object.values(outputs);
  if (values.length !== 1) throw new Error(`expected one output, got ${Object.keys(outputs).join(', ')}`);
  return values[0];
}

// ---------------------------------------------------------------------------------------------

export class DigitPanel extends Panel {
  constructor(root, index) {
    super(root, 'mnist_cnn', index);
    this.canvas = q(root, 'pad');
    this.preview = q(root, 'preview');
    this.pad = new DrawingPad(this.canvas, { lineWidth: 20, onStroke: () => this.schedule(120) });
    q(root, 'clear').addEventListener('click', () => this.clear());
    this.chart = q(root, 'chart');
    this.result = q(root, 'result');
    this.renderBars(null, null);
  }

  clear() {
    this.pad.clear();
    paintGrey(this.preview, new Float32Array(MNIST_SIZE * MNIST_SIZE), MNIST_SIZE, MNIST_SIZE);
    this.renderBars(null, null);
    this.result.textContent = 'Draw a digit (0-9) in the box.';
    this.last = null;
    this.clearError();
  }

  async prepare(bundle) {
    const pre = await loadPreprocessing(bundle);
    const { width: w, height: h } = this.canvas;
    const img = toMnist(this.pad.grey(), w, h);
    if (img === null) {
      this.result.textContent = 'Draw a digit (0-9) in the box.';
      return null;
    }
    paintGrey(this.preview, img, MNIST_SIZE, MNIST_SIZE);
    // pixel (0..255) * scale + offset, as the model was trained: img holds pixel / 255.
    const scale = pre.scale ?? 1 / 255;
    const offset = pre.offset ?? 0;
    const data = Float32Array.from(img, (v) => v * 255 * scale + offset);
    return { image: { dtype: 'float32', shape: [1, MNIST_SIZE, MNIST_SIZE, 1], data }, labels: pre.labels };
  }

  async infer(ctx, input) {
    const { outputs, ms } = await predict(ctx, { image: input.image });
    let probs = Array.from(only(outputs).data);
    const sum = probs.reduce((a, b) => a + b, 0);
    if (probs.some((p) => p < 0) || Math.abs(sum - 1) > 0.05) { // logits: softmax them for display
      const mx = Math.max(...probs);
      const ex = probs.map((v) => Math.exp(v - mx));
      const z = ex.reduce((a, b) => a + b, 0);
      probs = ex.map((v) => v / z);
    }
    const top = probs.indexOf(Math.max(...probs));
    return { ms, probabilities: probs, label: top };
  }

  render(out, input) {
    const labels = input.labels ?? this.index.labels ?? out.probabilities.map((_, i) => String(i));
    this.renderBars(out.probabilities, labels);
    this.result.replaceChildren('Prediction: ', el('strong', { 'data-role': 'label', text: labels[out.label] }),
      ` (${(100 * out.probabilities[out.label]).toFixed(1)} %)`);
  }

  renderBars(probs, labels) {
    const rows = Array.from({ length: 10 }, (_, i) => {
      const p = probs ? probs[i] : 0;
      const best = probs && p === Math.max(...probs);
      return el('div', { class: `bar-row${best ? ' best' : ''}`, role: 'listitem' },
        el('span', { class: 'bar-label', text: labels ? labels[i] : String(i) }),
        el('span', { class: 'bar-track' }, el('span', { class: 'bar-fill', style: `width: ${(100 * p).toFixed(1)}%` })),
        el('span', { class: 'bar-value', text: probs ? `${(100 * p).toFixed(1)} %` : '' }));
    });
    this.chart.replaceChildren(...rows);
  }
}

// ---------------------------------------------------------------------------------------------

/** A panel with a text box, example buttons, Ctrl+Enter, and per-bundle tokenizers. */
class TextPanel extends Panel {
  constructor(root, model, index) {
    super(root, model, index);
    this.text = q(root, 'text');
    this.result = q(root, 'result');
    this.tokensBox = q(root, 'tokens');
    this.tokenizers = new Map();
    q(root, 'run').addEventListener('click', () => this.trigger());
    submitOnCtrlEnter(this.text, () => this.trigger());
    for (const b of root.querySelectorAll('[data-example]')) {
      b.addEventListener('click', () => { this.text.value = b.dataset.example; this.trigger(); });
    }
  }
}

export class SentimentPanel extends TextPanel {
  constructor(root, index) {
    super(root, 'imdb_lstm', index);
  }

  async tokenizer(bundle) {
    if (!this.tokenizers.has(bundle)) {
      const pre = await loadPreprocessing(bundle);
      this.tokenizers.set(bundle, { tok: new ImdbTokenizer(pre.tokenizer), labels: pre.labels ?? ['negative', 'positive'] });
    }
    return this.tokenizers.get(bundle);
  }

  async prepare(bundle) {
    const { tok, labels } = await this.tokenizer(bundle);
    const text = this.text.value;
    if (text.trim() === '') throw new Error('Type a movie review first.');
    const { ids, dropped, words } = tok.idsWithDropped(text);
    const padded = Array.from(ids.slice(-tok.maxlen));
    const tokens = new Int32Array(tok.maxlen);
    tokens.set(padded, tok.maxlen - padded.length);
    return { tokens, dropped, words, labels, truncated: ids.length > tok.maxlen };
  }

  async infer(ctx, input) {
    const { outputs, ms } = await predict(ctx, { tokens: { dtype: 'int32', shape: [1, input.tokens.length], data: input.tokens } });
    const p = only(outputs).data[0];
    return { ms, positive: p, ids: Array.from(input.tokens) };
  }

  render(out, input) {
    const positive = out.positive >= 0.5;
    const label = input.labels[positive ? 1 : 0];
    this.result.replaceChildren(
      el('strong', { 'data-role': 'label', class: positive ? 'pos' : 'neg', text: label }),
      ` — P(positive) = `, el('span', { 'data-role': 'probability', text: out.positive.toFixed(4) }),
      el('meter', { min: 0, max: 1, value: out.positive, 'aria-label': 'probability that the review is positive' }));
    const known = input.words.length - input.dropped.length;
    const ids = out.ids.filter((i) => i !== 0);
    let summary = `${input.words.length} words, ${known} in the IMDb index`;
    if (input.dropped.length) summary += `; dropped: ${input.dropped.slice(0, 8).join(', ')}${input.dropped.length > 8 ? '…' : ''}`;
    if (input.truncated) summary += ` (kept the last ${out.ids.length} ids)`;
    this.tokensBox.replaceChildren(el('summary', { text: summary }), el('code', { text: `[${ids.join(', ')}]` }));
  }
}

// ---------------------------------------------------------------------------------------------

export class GanPanel extends Panel {
  constructor(root, index) {
    super(root, 'mnist_gan', index);
    this.seed = q(root, 'seed');
    this.grid = q(root, 'grid');
    q(root, 'run').addEventListener('click', () => this.trigger());
    q(root, 'random').addEventListener('click', () => {
      this.seed.value = String(Math.floor(Math.random() * 100000));
      this.trigger();
    });
    this.seed.addEventListener('change', () => this.trigger());
    const ctx = this.grid.getContext('2d');
    ctx.fillStyle = '#111';
    ctx.fillRect(0, 0, this.grid.width, this.grid.height);
  }

  async prepare(bundle) {
    const pre = await loadPreprocessing(bundle);
    const seed = Number(this.seed.value);
    if (!Number.isInteger(seed) || seed < 0) throw new Error(`the seed must be a whole number >= 0, got ${JSON.stringify(this.seed.value)}`);
    const dim = pre.latent_dim ?? 100;
    return { seed, pre, z: { dtype: 'float32', shape: [16, dim], data: normalSamples(seed, 16 * dim) } };
  }

  async infer(ctx, input) {
    const { outputs, ms } = await predict(ctx, { z: input.z });
    return { ms, images: only(outputs).data };
  }

  render(out, input) {
    const scale = input.pre.output_scale ?? 127.5;
    const offset = input.pre.output_offset ?? 127.5;
    const [h, w] = input.pre.output_shape ?? [28, 28];
    const ctx = this.grid.getContext('2d');
    this.grid.width = 4 * w;
    this.grid.height = 4 * h;
    const img = ctx.createImageData(4 * w, 4 * h);
    for (let k = 0; k < 16; k++) {
      const gx = (k % 4) * w;
      const gy = Math.floor(k / 4) * h;
      for (let i = 0; i < h * w; i++) {
        const v = Math.max(0, Math.min(255, Math.round(out.images[k * h * w + i] * scale + offset)));
        const p = 4 * ((gy + Math.floor(i / w)) * 4 * w + gx + (i % w));
        img.data[p] = img.data[p + 1] = img.data[p + 2] = v;
        img.data[p + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    this.grid.setAttribute('aria-label', `16 digits generated from seed ${input.seed}`);
    q(this.root, 'result').textContent = `16 digits from seed ${input.seed}: z ~ N(0, 1) by mulberry32 + Box-Muller, `
      + `pixel = output × ${scale} + ${offset}.`;
  }
}

// ---------------------------------------------------------------------------------------------

export class TranslatorPanel extends TextPanel {
  constructor(root, index) {
    super(root, 'translator', index);
  }

  async tokenizer(bundle) {
    if (!this.tokenizers.has(bundle)) {
      const pre = await loadPreprocessing(bundle);
      this.tokenizers.set(bundle, {
        src: new WordTokenizer(pre.source_tokenizer), tgt: new WordTokenizer(pre.target_tokenizer),
        maxLen: pre.max_len ?? 32, bos: pre.bos ?? 2, eos: pre.eos ?? 3,
      });
    }
    return this.tokenizers.get(bundle);
  }

  async prepare(bundle) {
    const t = await this.tokenizer(bundle);
    const text = this.text.value;
    if (text.trim() === '') throw new Error('Type a German sentence first.');
    const sourceIds = t.src.encode(text, { maxLen: t.maxLen, bos: false, eos: true });
    const tokens = WordTokenizer.tokenize(text);
    const unknown = tokens.filter((tok) => !t.src.ids_.has(tok));
    return { ...t, sourceIds, tokens, unknown };
  }

  async infer(ctx, input) {
    if (ctx.kind === 'tflite') return this.inferTflite(ctx, input);
    const { manifest, entry, tf } = ctx;
    const name = (list, canon) => list.find((b) => b.name === canon)?.tensor ?? list[0].tensor;
    const opts = {
      n: 1, maxLen: input.maxLen, bos: input.bos, eos: input.eos,
      sourceName: name(manifest.inputs, 'source_ids'), targetName: name(manifest.inputs, 'target_ids'),
      outputName: name(manifest.outputs, 'logits'),
    };
    // execute() decides execute vs executeAsync once per model; greedyDecode takes the decision.
    if (entry.useAsync === null) {
      const probe = { [opts.sourceName]: tf.tensor2d(input.sourceIds, [1, input.maxLen], 'int32'),
        [opts.targetName]: tf.tensor2d(new Int32Array(input.maxLen), [1, input.maxLen], 'int32') };
      try {
        tf.dispose(await execute(entry, probe, [opts.outputName]));
      } finally {
        tf.dispose(Object.values(probe));
      }
    }
    const t0 = performance.now();
    const ids = await greedyDecode(tf, ctx.model, input.sourceIds, { ...opts, useAsync: entry.useAsync });
    const ms = performance.now() - t0;
    const out = Array.from(ids);
    const tokens = input.tgt.decodeTokens(out);
    return { ms, ids: out, sourceIds: Array.from(input.sourceIds), tokens, text: WordTokenizer.detokenize(tokens) };
  }

  /** The same greedy decoding on LiteRT.js: one model run per output token. */
  async inferTflite(ctx, input) {
    const t0 = performance.now();
    const ids = await greedyDecodeTflite(ctx, input.sourceIds, input);
    const ms = performance.now() - t0;
    const out = Array.from(ids);
    const tokens = input.tgt.decodeTokens(out);
    return { ms, ids: out, sourceIds: Array.from(input.sourceIds), tokens, text: WordTokenizer.detokenize(tokens) };
  }

  render(out, input) {
    this.result.replaceChildren(el('span', { class: 'muted', text: 'English: ' }),
      el('span', { 'data-role': 'translation', lang: 'en', text: out.text || '(empty translation)' }));
    const src = out.sourceIds.filter((i) => i !== 0);
    const tgt = out.ids.slice(0, out.ids.indexOf(input.eos) >= 0 ? out.ids.indexOf(input.eos) + 1 : out.ids.length);
    this.tokensBox.replaceChildren(
      el('summary', {
        text: `${input.tokens.length} source tokens`
          + `${input.unknown.length ? `, unknown (<unk>): ${input.unknown.join(', ')}` : ''}; ${out.tokens.length} English tokens`,
      }),
      el('div', {}, 'source ids: ', el('code', { text: `[${src.join(', ')}]` })),
      el('div', {}, 'output ids: ', el('code', { text: `[${tgt.join(', ')}]` })));
  }
}

// ---------------------------------------------------------------------------------------------

const PLOT = { w: 480, h: 300, left: 44, right: 12, top: 12, bottom: 36, xmax: 10, ymax: 40 };
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

/** 60 points of the training data's law: x ~ U(0, 10), y = 2.5 x + 5 + N(0, 2^2) (fixed seeds). */
export function samplePoints(seed = 7, n = 60) {
  const uniform = mulberry32(seed);
  const noise = normalSamples(seed + 1, n);
  return Array.from({ length: n }, (_, i) => {
    const x = 10 * uniform();
    return [x, 2.5 * x + 5 + 2 * noise[i]];
  });
}

export class LinregPanel extends Panel {
  constructor(root, index) {
    super(root, 'linreg', index);
    this.plot = q(root, 'plot');
    this.result = q(root, 'result');
    this.points = samplePoints();
    q(root, 'run').addEventListener('click', () => this.trigger());
    this.draw(null);
  }

  async prepare() {
    const xs = Array.from({ length: 41 }, (_, i) => i * 0.25);
    return { xs, x: { dtype: 'float32', shape: [xs.length, 1], data: Float32Array.from(xs) } };
  }

  async infer(ctx, input) {
    const { outputs, ms } = await predict(ctx, { x: input.x });
    const ys = Array.from(only(outputs).data);
    return { ms, xs: input.xs, ys };
  }

  render(out) {
    this.draw(out);
    const b = out.ys[0];
    const a = (out.ys[out.ys.length - 1] - b) / 10;
    this.result.replaceChildren('Fitted by the model: ', el('strong', { 'data-role': 'fit', text: `y ≈ ${a.toFixed(3)} x + ${b.toFixed(3)}` }),
      ' (data law: y = 2.5 x + 5 + noise)');
  }

  draw(fit) {
    const { w, h, left, right, top, bottom, xmax, ymax } = PLOT;
    const sx = (x) => left + (x / xmax) * (w - left - right);
    const sy = (y) => h - bottom - (y / ymax) * (h - top - bottom);
    const nodes = [svg('rect', { x: left, y: top, width: w - left - right, height: h - top - bottom, class: 'plot-bg' })];
    for (let x = 0; x <= xmax; x += 2) {
      nodes.push(svg('line', { x1: sx(x), x2: sx(x), y1: sy(0), y2: sy(ymax), class: 'grid' }));
      nodes.push(svg('text', { x: sx(x), y: h - bottom + 16, 'text-anchor': 'middle', class: 'tick' }, String(x)));
    }
    for (let y = 0; y <= ymax; y += 10) {
      nodes.push(svg('line', { x1: sx(0), x2: sx(xmax), y1: sy(y), y2: sy(y), class: 'grid' }));
      nodes.push(svg('text', { x: left - 6, y: sy(y) + 4, 'text-anchor': 'end', class: 'tick' }, String(y)));
    }
    nodes.push(svg('text', { x: (left + w - right) / 2, y: h - 4, 'text-anchor': 'middle', class: 'axis' }, 'x'));
    nodes.push(svg('text', { x: 12, y: (top + h - bottom) / 2, 'text-anchor': 'middle', class: 'axis' }, 'y'));
    for (const [x, y] of this.points) nodes.push(svg('circle', { cx: sx(x), cy: sy(Math.max(0, Math.min(ymax, y))), r: 3, class: 'point' }));
    if (fit) {
      const pts = fit.xs.map((x, i) => `${sx(x).toFixed(1)},${sy(fit.ys[i]).toFixed(1)}`).join(' ');
      nodes.push(svg('polyline', { points: pts, class: 'fit' }));
    }
    const lx = left + 10;
    nodes.push(svg('circle', { cx: lx + 5, cy: top + 14, r: 3, class: 'point' }));
    nodes.push(svg('text', { x: lx + 14, y: top + 18, class: 'legend' }, 'samples of the data law'));
    if (fit) {
      nodes.push(svg('line', { x1: lx, x2: lx + 10, y1: top + 32, y2: top + 32, class: 'fit' }));
      nodes.push(svg('text', { x: lx + 14, y: top + 36, class: 'legend' }, 'model output at x = 0…10'));
    }
    this.plot.replaceChildren(...nodes);
  }
}
