// What every model panel shares: the framework / precision / runtime controls (built from
// index.json), lazy loading through runtime.withBundle, the artifact's facts from its manifest
// (size, load time, latency, parity verdict and metric) and an error box.
//
// The runtime control offers TF.js's backends (cpu, wasm, webgl, webgpu: they run the TF.js bundles)
// and LiteRT.js's accelerators (wasm, webgpu: they run the .tflite bundles, the files that ship to the
// Pi and to Android). One that cannot run here is disabled, with its reason beside it.

import {
  BACKENDS, BackendUnavailableError, activeBackend, backendProblem, isLiteRt, loadManifest, predict, runtimeLabel,
  targetOf, withBundle,
} from './runtime.js';
import { factRows } from './facts.js';
import { el, plain } from './dom.js';
import { browserName, compareSelfTest, loadSelfTest } from './selftest.js';

export const FRAMEWORKS = [['keras', 'Keras'], ['torch', 'PyTorch']];
/** Precisions by artifact: TF.js bundles (tfjs/<mode>) and .tflite bundles (tflite/<mode>). */
export const MODES_BY_TARGET = { tfjs: ['fp32', 'fp16', 'uint8'], tflite: ['fp32', 'fp16', 'dynamic', 'int8'] };
export const MODES = MODES_BY_TARGET.tfjs;
const RUNTIME_GROUPS = [['TF.js (TF.js bundles)', BACKENDS.filter((b) => !isLiteRt(b))],
  ['LiteRT.js (.tflite bundles)', BACKENDS.filter(isLiteRt)]];
const targetOfBundle = (b) => b.artifact_target ?? 'tfjs';
/** Self-test results by `${bundle}|${runtime}`: each bundle is proven once per runtime, the first time it loads. */
export const PROOFS = new Map();
const proofKey = (bundle, backend) => `${bundle}|${backend}`;

/** Run the bundle's self-test in `ctx`'s runtime (inside withBundle): the result for "Proven in this browser". */
async function proveHere(bundle, ctx) {
  const where = { runtime: ctx.backend, browser: browserName() };
  try {
    const test = await loadSelfTest(bundle, ctx.manifest);
    if (test === null) return { ...where, status: 'none' };
    const { outputs } = await predict(ctx, test.feeds);
    const cmp = compareSelfTest(outputs, test);
    return { ...where, status: cmp.ok ? 'pass' : 'fail', ...cmp, family: test.family, probes: test.probes, tolerance: test.tolerance };
  } catch (e) {
    return { ...where, status: 'error', error: e?.message ?? String(e) };
  }
}

export { el, formatBytes, formatMs, plain } from './dom.js';

/** The reason index.json gives for not deploying `model/framework/<target>/mode`, if any. */
function refusalReason(index, model, framework, mode, target = 'tfjs') {
  const hit = (index.refused ?? []).find((r) => {
    const [m, f, ...rest] = r.artifact.split('/');
    return m === model && f === framework && rest[rest.length - 1] === mode && (rest.length < 2 || rest[0] === target);
  });
  return hit?.reason ?? null;
}

export class Panel {
  /**
   * @param root the panel's <section> (holds [data-role=controls], [data-role=stats], [data-role=error])
   * @param model the model name in index.json
   * @param index the parsed index.json
   * @param {object} opts {onSelect: called after a selection change}
   */
  constructor(root, model, index) {
    this.root = root;
    this.model = model;
    this.index = index;
    this.bundles = index.bundles.filter((b) => b.model === model);
    this.used = false; // model files load on first use
    this.last = null; // details of the last successful run (for the page hooks and tests)
    this.pending = 0; // scheduled + queued runs
    this.timer = null;
    this.job = Promise.resolve();
    this.errorBox = root.querySelector('[data-role=error]');
    this.noteBox = root.querySelector('[data-role=notes]');
    this.statsBox = root.querySelector('[data-role=stats]');
    this.buildControls(root.querySelector('[data-role=controls]'));
  }

  // -- controls ------------------------------------------------------------------------------

  buildControls(box) {
    const id = (name) => `${this.model}-${name}`;
    this.frameworkSelect = el('select', { id: id('framework'), name: 'framework' });
    this.modeSelect = el('select', { id: id('mode'), name: 'mode' });
    this.backendSelect = el('select', { id: id('backend'), name: 'backend' });
    for (const [value] of FRAMEWORKS) this.frameworkSelect.append(el('option', { value }));
    this.labelFrameworks();
    for (const [label, backends] of RUNTIME_GROUPS) {
      const group = el('optgroup', { label });
      for (const backend of backends) group.append(el('option', { value: backend }));
      this.backendSelect.append(group);
    }
    this.labelRuntimes();
    box.append(
      el('span', { class: 'control' }, el('label', { for: id('framework') }, 'Framework'), this.frameworkSelect),
      el('span', { class: 'control' }, el('label', { for: id('mode') }, 'Precision'), this.modeSelect),
      el('span', { class: 'control' }, el('label', { for: id('backend') }, 'Runtime'), this.backendSelect),
    );
    const first = this.bundles.find((b) => b.framework === 'keras') ?? this.bundles[0];
    this.frameworkSelect.value = first ? first.framework : 'keras';
    this.backendSelect.value = this.bundles.some((b) => targetOfBundle(b) === 'tfjs') || !this.bundles.length ? 'wasm' : 'litertjs-wasm';
    this.fillModes();
    this.frameworkSelect.addEventListener('change', () => { this.fillModes(); this.selectionChanged(); });
    this.modeSelect.addEventListener('change', () => this.selectionChanged());
    this.backendSelect.addEventListener('change', () => { this.fillModes(); this.selectionChanged(); });
  }

  labelFrameworks() {
    for (const o of this.frameworkSelect.options) {
      const has = this.bundles.some((b) => b.framework === o.value);
      const label = FRAMEWORKS.find(([v]) => v === o.value)[1];
      o.disabled = !has;
      o.textContent = has ? label : `${label} (not deployed)`;
    }
  }

  /** Show `model` (one of several a panel offers) with `bundles`: every control is refilled. */
  setModel(model, bundles) {
    this.model = model;
    this.bundles = bundles;
    this.labelFrameworks();
    const first = bundles.find((b) => b.framework === 'keras') ?? bundles[0];
    if (first && !bundles.some((b) => b.framework === this.frameworkSelect.value)) this.frameworkSelect.value = first.framework;
    this.labelRuntimes();
    if (this.runtimeProblem(this.backendSelect.value) !== null) {
      const ok = [...this.backendSelect.options].find((o) => !o.disabled);
      if (ok) this.backendSelect.value = ok.value;
    }
    this.fillModes();
    this.selectionChanged();
  }

  /** Why `backend` cannot run this panel's model here (null: it can). */
  runtimeProblem(backend) {
    const why = backendProblem(backend);
    if (why !== null) return why;
    const target = targetOf(backend);
    if (!this.bundles.some((b) => targetOfBundle(b) === target)) {
      return `no ${target === 'tflite' ? '.tflite' : 'TF.js'} bundle of ${this.model} is deployed`;
    }
    return null;
  }

  /** Runtime options: their labels, and disabled with the reason where they cannot run here. */
  labelRuntimes() {
    for (const o of this.backendSelect.options) {
      const why = this.runtimeProblem(o.value);
      const name = isLiteRt(o.value) ? `LiteRT.js ${o.value.slice(9)}` : o.value;
      o.disabled = why !== null;
      o.title = why ?? '';
      o.textContent = why ? `${name} (unavailable)` : name;
    }
  }

  /** The precisions of the artifacts the chosen runtime runs. */
  get modes() {
    return MODES_BY_TARGET[targetOf(this.backendSelect.value)];
  }

  /** Precision options for the chosen framework and runtime: deployed ones enabled, the others disabled with why. */
  fillModes() {
    const framework = this.frameworkSelect.value;
    const target = targetOf(this.backendSelect.value);
    const previous = this.modeSelect.value;
    this.modeSelect.replaceChildren();
    for (const mode of this.modes) {
      const has = this.bundles.some((b) => b.framework === framework && b.mode === mode && targetOfBundle(b) === target);
      const why = has ? null : refusalReason(this.index, this.model, framework, mode, target);
      this.modeSelect.append(el('option', {
        value: mode, disabled: !has, title: why, text: has ? mode : `${mode} (${why ? 'refused' : 'not deployed'})`,
      }));
    }
    const enabled = [...this.modeSelect.options].filter((o) => !o.disabled).map((o) => o.value);
    this.modeSelect.value = enabled.includes(previous) ? previous : (enabled[0] ?? this.modes[0]);
    this.showNotes();
  }

  /** Notes under the controls: refused precisions with their reasons, unavailable runtimes with theirs. */
  showNotes() {
    const framework = this.frameworkSelect.value;
    const target = targetOf(this.backendSelect.value);
    const notes = [];
    for (const mode of this.modes) {
      if (this.bundles.some((b) => b.framework === framework && b.mode === mode && targetOfBundle(b) === target)) continue;
      const why = refusalReason(this.index, this.model, framework, mode, target);
      const what = target === 'tflite' ? '.tflite' : 'TF.js';
      notes.push(`${mode}: ${why ? `refused by the deploy gate: ${why}` : `not deployed (no ${what} artifact passed verification)`}`);
    }
    const other = target === 'tflite' ? 'tfjs' : 'tflite';
    for (const r of this.index.refused ?? []) { // the other runtime family's refusals, said once too
      const [m, f, t, mode] = r.artifact.split('/');
      if (m === this.model && f === framework && t === other && mode) {
        notes.push(`${other === 'tflite' ? '.tflite (LiteRT.js)' : 'TF.js'} ${mode}: refused by the deploy gate: ${r.reason}`);
      }
    }
    for (const backend of BACKENDS) {
      const why = backendProblem(backend);
      if (why) notes.push(`${backend}: unavailable in this browser: ${why}`);
    }
    this.noteBox.replaceChildren(...notes.map((n) => el('li', { text: n })));
    this.noteBox.hidden = notes.length === 0;
  }

  get selection() {
    return { framework: this.frameworkSelect.value, mode: this.modeSelect.value, backend: this.backendSelect.value };
  }

  /** Set any of {framework, mode, backend} as a user would; resolves when the panel is idle again. */
  async select({ framework, mode, backend } = {}) {
    if (backend !== undefined) this.backendSelect.value = backend;
    if (framework !== undefined) this.frameworkSelect.value = framework;
    if (backend !== undefined || framework !== undefined) this.fillModes();
    if (mode !== undefined) this.modeSelect.value = mode;
    const s = this.selection;
    if ((framework && s.framework !== framework) || (mode && s.mode !== mode) || (backend && s.backend !== backend)) {
      throw new Error(`${this.model}: cannot select ${JSON.stringify({ framework, mode, backend })}: not offered (${JSON.stringify(s)} stays)`);
    }
    this.selectionChanged();
    return this.idle();
  }

  /** The bundle folder for the current framework and precision (null when none is deployed): the plain cell's,
   * else a variant's (another route, e.g. litert-torch, or a repair) when only that one passed. */
  bundle() {
    const { framework, mode, backend } = this.selection;
    const target = targetOf(backend);
    const matches = this.bundles.filter((b) => b.framework === framework && b.mode === mode && targetOfBundle(b) === target);
    return (matches.find((b) => !b.variant) ?? matches[0])?.bundle ?? null;
  }

  selectionChanged() {
    this.clearError(true);
    this.showFacts();
    if (this.used) this.trigger();
  }

  // -- running -------------------------------------------------------------------------------

  /** Queue a run of the panel's model on its current input (loading the model first if needed). */
  trigger() {
    this.used = true;
    this.pending += 1;
    this.job = this.job.then(() => this.runOnce()).finally(() => { this.pending -= 1; });
    return this.job;
  }

  /** trigger() after `delayMs` of quiet (e.g. after the last of several quick strokes). */
  schedule(delayMs = 150) {
    if (this.timer != null) clearTimeout(this.timer);
    else this.pending += 1;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pending -= 1;
      this.trigger();
    }, delayMs);
  }

  /** Resolves when every scheduled and queued run of this panel has finished. */
  async idle() {
    while (this.pending > 0) {
      await this.job;
      if (this.pending > 0) await new Promise((r) => setTimeout(r, 20));
    }
  }

  async runOnce() {
    const bundle = this.bundle();
    if (bundle === null) {
      const { framework, mode, backend } = this.selection;
      this.showError(new Error(`no ${this.model} bundle for ${runtimeLabel(backend)} is deployed for ${framework} ${mode}`));
      return;
    }
    const { backend } = this.selection;
    this.root.setAttribute('aria-busy', 'true');
    this.setStatus(`running ${bundle} on ${backend}…`);
    try {
      const input = await this.prepare(bundle);
      if (input === null) {
        this.setStatus('');
        this.clearError();
        return;
      }
      const result = await withBundle(bundle, backend, async (ctx) => {
        const key = proofKey(bundle, ctx.backend);
        if (!PROOFS.has(key)) PROOFS.set(key, await proveHere(bundle, ctx)); // first load in this runtime
        const out = await this.infer(ctx, input);
        return {
          out, bundle, backend: ctx.backend, active: activeBackend(), loadMs: ctx.loadMs, fresh: ctx.fresh,
          manifest: ctx.manifest, threads: ctx.threads,
        };
      });
      this.render(result.out, input, result);
      this.last = plain({ bundle, backend: result.backend, input, ...result.out, proof: PROOFS.get(proofKey(bundle, result.backend)) });
      this.showFacts(result);
      this.clearError();
      this.setStatus('');
    } catch (e) {
      this.setStatus('');
      if (e instanceof BackendUnavailableError) {
        // Say so, offer the option no more, and run on wasm (TF.js's, or LiteRT.js's) instead.
        const fallback = isLiteRt(e.backend) && e.backend !== 'litertjs-wasm' ? 'litertjs-wasm' : 'wasm';
        this.labelRuntimes();
        this.backendSelect.value = fallback;
        this.fillModes();
        this.showError(new Error(`${e.message}. Switched this panel to ${fallback}.`), 'warning');
        if (e.backend !== fallback && this.runtimeProblem(fallback) === null) {
          this.pending += 1;
          this.job = this.job.then(() => this.runOnce()).finally(() => { this.pending -= 1; });
        }
        return;
      }
      this.showError(e);
      this.showFacts(); // e.g. LiteRT.js's reason it cannot run this bundle, in "In this runtime"
    } finally {
      this.root.removeAttribute('aria-busy');
    }
  }

  /** Panel input -> what infer() needs (null: nothing to run yet). May throw a user-facing error. */
  async prepare(_bundle) {
    return {};
  }

  /** Run the model (inside withBundle); returns {ms, ...} for render(). */
  async infer(_ctx, _input) {
    throw new Error('not implemented');
  }

  render(_out, _input, _meta) {}

  // -- facts and messages --------------------------------------------------------------------

  setStatus(text) {
    const s = this.root.querySelector('[data-role=status]');
    if (s) s.textContent = text;
  }

  /** The artifact's facts: from the manifest at once, plus load time / latency / backend after a run. */
  async showFacts(run = null) {
    const bundle = this.bundle();
    if (bundle === null) {
      this.statsBox.replaceChildren(el('dt', { text: 'Bundle' }), el('dd', { text: 'none deployed for this selection' }));
      return;
    }
    this.factsSeq = (this.factsSeq ?? 0) + 1;
    const seq = this.factsSeq;
    let manifest;
    try {
      manifest = await loadManifest(bundle);
    } catch (e) {
      this.showError(e);
      return;
    }
    if (seq !== this.factsSeq) return; // a later call (a new selection or run) shows its facts
    const here = run && run.bundle === bundle;
    const backend = here ? run.backend : this.selection.backend;
    const proof = PROOFS.get(proofKey(bundle, backend)) ?? null;
    const rows = factRows(manifest, { bundle, run: here ? run : null, backend: this.selection.backend, proof });
    this.statsBox.replaceChildren(...rows.flatMap(([k, val]) => [el('dt', { text: k }), el('dd', {}, val)]));
    this.statsBox.dataset.bundle = bundle;
    if (here) this.statsBox.dataset.backend = run.active;
    else delete this.statsBox.dataset.backend;
  }

  showError(e, kind = 'error') {
    console.debug(`[${this.model}]`, e);
    this.errorBox.textContent = e?.message ?? String(e);
    this.errorBox.className = kind === 'warning' ? 'message warning' : 'message error';
    this.errorBox.hidden = false;
  }

  /** Hide the error box; a backend warning stays until the selection changes (`all`). */
  clearError(all = false) {
    if (!all && this.errorBox.classList.contains('warning')) return;
    this.errorBox.hidden = true;
    this.errorBox.textContent = '';
    this.errorBox.className = 'message';
  }
}
