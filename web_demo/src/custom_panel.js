// The panel for your own models: every deployed bundle that no other panel claims (manifest task
// "custom", or a model with no panel of its own), driven by its manifest alone. Inputs come from an
// uploaded .npy (a model with one input) or .npz (arrays named as the manifest's inputs), or from an
// image for a 4-D image input; outputs are shown as arrays and, for class scores, as bars. The verdict
// shown is the bundle's own (facts.js), and a bundle that carries a self-test (manifest `self_test`:
// {file: "selftest.json", tolerance: {atol, rtol}}; the file holds the probe inputs and the outputs
// the deploy gate measured, format edgeproof.runtime._selftest) can run it here, in this runtime.

import { el } from './dom.js';
import { NpyError, parseNpy, parseNpz } from './npy.js';
import { Panel } from './panel.js';
import { loadManifest, loadPreprocessing, predict } from './runtime.js';
import { compareSelfTest, loadSelfTest } from './selftest.js';

const q = (root, role) => root.querySelector(`[data-role=${role}]`);
const MAX_SHOWN = 64;
const MAX_BARS = 100;

function describeTensor(b) {
  return `${b.name}: [${b.shape.map((d) => (d > 0 ? d : 'N')).join(', ')}] ${b.dtype}${b.layout ? ` ${b.layout}` : ''}`
    + `${b.canonical_layout && b.canonical_layout !== b.layout ? ` (give it ${b.canonical_layout})` : ''}`;
}

/** The image input a picture can feed: a 4-D NHWC input with 1 or 3 channels, else null. */
function imageInput(manifest) {
  if (manifest.inputs.length !== 1) return null;
  const b = manifest.inputs[0];
  const layout = b.canonical_layout ?? b.layout;
  if (b.shape.length !== 4 || layout !== 'NHWC') return null;
  const [h, w, c] = b.layout === 'NCHW' ? [b.shape[2], b.shape[3], b.shape[1]] : b.shape.slice(1);
  return h > 0 && w > 0 && (c === 1 || c === 3) ? { binding: b, h, w, c } : null;
}

/** An image file -> canonical NHWC float32 [1, h, w, c]: pixel * scale + offset (preprocessing.json). */
async function imageToInput(file, spec, pre) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    throw new Error(`${file.name} is not an image this browser can decode (${e.message})`);
  }
  const canvas = new OffscreenCanvas(spec.w, spec.h);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0, spec.w, spec.h);
  const rgba = ctx.getImageData(0, 0, spec.w, spec.h).data;
  const scale = pre?.scale ?? 1 / 255;
  const offset = pre?.offset ?? 0;
  const data = new Float32Array(spec.h * spec.w * spec.c);
  for (let i = 0; i < spec.h * spec.w; i++) {
    const [r, g, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]];
    if (spec.c === 1) data[i] = (0.299 * r + 0.587 * g + 0.114 * b) * scale + offset;
    else for (let k = 0; k < 3; k++) data[3 * i + k] = [r, g, b][k] * scale + offset;
  }
  return { [spec.binding.name]: { dtype: 'float32', shape: [1, spec.h, spec.w, spec.c], data } };
}

/** Arrays from a parsed .npy / .npz -> the manifest's inputs by name (one clear error otherwise). */
function feedsFrom(arrays, manifest, fileName) {
  const names = manifest.inputs.map((b) => b.name);
  if (Array.isArray(arrays)) { // one .npy
    if (names.length !== 1) throw new Error(`${manifest.model} takes ${names.length} inputs (${names.join(', ')}): upload an .npz with arrays of those names`);
    return { [names[0]]: arrays[0] };
  }
  const missing = names.filter((n) => !(n in arrays));
  if (missing.length) throw new Error(`${fileName} has no array named ${missing.join(', ')} (it has ${Object.keys(arrays).join(', ') || 'none'}); ${manifest.model} takes ${names.join(', ')}`);
  return Object.fromEntries(names.map((n) => [n, arrays[n]]));
}

export class CustomPanel extends Panel {
  /** @param claimed the models other panels show */
  constructor(root, index, claimed) {
    const mine = index.bundles.filter((b) => b.task === 'custom' || !claimed.includes(b.model));
    const models = [...new Set(mine.map((b) => b.model))].sort();
    super(root, models[0] ?? 'custom', { ...index, bundles: mine });
    this.mine = mine;
    this.fileInput = q(root, 'file');
    this.result = q(root, 'result');
    this.outputsBox = q(root, 'outputs');
    this.signatureBox = q(root, 'signature');
    this.selfTestButton = q(root, 'selftest');
    this.feeds = null;
    this.selfTesting = false;
    this.modelSelect = el('select', { id: 'custom-model', name: 'model' },
      models.map((m) => el('option', { value: m, text: m })));
    root.querySelector('[data-role=controls]').prepend(
      el('span', { class: 'control' }, el('label', { for: 'custom-model' }, 'Model'), this.modelSelect));
    this.modelSelect.addEventListener('change', () => this.chooseModel(this.modelSelect.value));
    this.fileInput.addEventListener('change', () => this.readFile());
    q(root, 'run').addEventListener('click', () => this.trigger());
    this.selfTestButton.addEventListener('click', () => { this.selfTesting = true; this.trigger(); });
    this.showSignature().catch((e) => this.showError(e));
  }

  chooseModel(model) {
    this.feeds = null;
    this.fileInput.value = '';
    this.setModel(model, this.mine.filter((b) => b.model === model));
  }

  selectionChanged() {
    super.selectionChanged();
    this.showSignature?.().catch((e) => this.showError(e));
  }

  /** The chosen bundle's inputs and outputs, what it accepts, and its self-test button. */
  async showSignature() {
    const bundle = this.bundle();
    if (bundle === null || this.signatureBox === undefined) return;
    const manifest = await loadManifest(bundle);
    const image = imageInput(manifest);
    this.signatureBox.replaceChildren(
      el('div', {}, 'Inputs: ', el('code', { text: manifest.inputs.map(describeTensor).join('; ') })),
      el('div', {}, 'Outputs: ', el('code', { text: manifest.outputs.map(describeTensor).join('; ') })),
      el('div', { class: 'muted', text: `Upload ${manifest.inputs.length === 1 ? 'an .npy or ' : ''}an .npz `
        + `(arrays named ${manifest.inputs.map((b) => b.name).join(', ')})${image ? `, or an image (drawn at ${image.w}×${image.h}, ${image.c === 1 ? 'grey' : 'RGB'})` : ''}.` }));
    this.selfTestButton.hidden = !manifest.self_test?.file;
  }

  async readFile() {
    const file = this.fileInput.files?.[0];
    this.feeds = null;
    if (!file) return;
    const bundle = this.bundle();
    try {
      const manifest = await loadManifest(bundle);
      if (/\.(npy|npz)$/i.test(file.name)) {
        const buffer = await file.arrayBuffer();
        const arrays = /\.npy$/i.test(file.name) ? [parseNpy(buffer, file.name)] : await parseNpz(buffer, file.name);
        this.feeds = feedsFrom(arrays, manifest, file.name);
      } else {
        const spec = imageInput(manifest);
        if (spec === null) throw new Error(`${manifest.model} has no 4-D image input: upload an .npy or .npz instead of ${file.name}`);
        this.feeds = await imageToInput(file, spec, await loadPreprocessing(bundle).catch(() => null));
      }
      this.clearError(true);
      this.trigger();
    } catch (e) {
      this.showError(e instanceof NpyError ? e : new Error(e.message));
    }
  }

  async prepare(bundle) {
    const manifest = await loadManifest(bundle);
    if (this.selfTesting) {
      this.selfTesting = false;
      return this.selfTest(bundle, manifest);
    }
    if (this.feeds === null) {
      this.result.textContent = 'Choose an input file first.';
      return null;
    }
    return { feeds: this.feeds };
  }

  /** The bundle's self-test: its probe inputs, the gate's outputs and tolerance (selftest.js). */
  async selfTest(bundle, manifest) {
    const test = await loadSelfTest(bundle, manifest);
    if (test === null) throw new Error(`${bundle} carries no self-test`);
    return test;
  }

  async infer(ctx, input) {
    const { outputs, ms } = await predict(ctx, input.feeds);
    return { ms, outputs, task: ctx.manifest.task, labels: ctx.manifest.labels ?? null };
  }

  render(out, input) {
    const blocks = Object.entries(out.outputs).map(([name, v]) => this.renderOutput(name, v, out.task, out.labels));
    this.outputsBox.replaceChildren(...blocks);
    if (input.expected) {
      const { atol, rtol } = input.tolerance;
      const { ok, maxErr, outside, total, missing } = compareSelfTest(out.outputs, input);
      this.result.replaceChildren(el('strong', { 'data-role': 'selftest-result', class: ok ? 'pos' : 'neg', text: ok ? 'Self-test passed' : 'Self-test FAILED' }),
        ` in this runtime: max |Δ| ${maxErr.toExponential(2)} against the deploy gate's outputs${input.family ? ` (${input.family})` : ''}, `
        + `${outside} of ${total} elements outside atol ${atol} + rtol ${rtol} × |expected|${missing ? '; an output is missing' : ''}`);
    } else {
      this.result.textContent = `Ran ${Object.keys(out.outputs).length} output(s) in ${out.ms.toFixed(2)} ms.`;
    }
  }

  renderOutput(name, v, task, labels) {
    const values = Array.from(v.data);
    const shown = values.slice(0, MAX_SHOWN).map((x) => Number(x.toPrecision(5)));
    const block = el('div', { class: 'output', 'data-output': name },
      el('div', {}, el('strong', { text: name }), ` [${v.shape.join(', ')}]`),
      el('code', { class: 'array', 'data-role': 'array', text: `[${shown.join(', ')}${values.length > MAX_SHOWN ? ', …' : ''}]` }));
    const k = v.shape[v.shape.length - 1];
    if (v.shape.length === 2 && k >= 2 && k <= MAX_BARS && (task === 'classification' || task === 'custom')) {
      let p = values.slice(0, k);
      const isProb = p.every((x) => x >= 0 && x <= 1) && Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-3;
      if (!isProb) {
        const m = Math.max(...p);
        const e = p.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        p = e.map((x) => x / z);
      }
      const best = p.indexOf(Math.max(...p));
      block.append(el('div', { class: 'muted', text: isProb ? 'class scores (first row)' : 'softmax of the scores (first row)' }),
        el('div', { class: 'bars', role: 'list', 'data-role': 'bars' }, p.map((x, i) => el('div', { class: `bar-row${i === best ? ' best' : ''}`, role: 'listitem' },
          el('span', { class: 'bar-label', text: labels?.length === k ? String(labels[i]) : String(i) }),
          el('span', { class: 'bar-track' }, el('span', { class: 'bar-fill', style: `width: ${(100 * x).toFixed(1)}%` })),
          el('span', { class: 'bar-value', text: `${(100 * x).toFixed(1)} %` })))));
    }
    return block;
  }
}
