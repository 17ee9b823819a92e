// What every model panel shares: the framework / precision / backend controls (built from
// index.json), lazy loading through runtime.withBundle, the artifact's facts from its manifest
// (size, load time, latency, parity verdict and metric) and an error box.

import {
  BACKENDS, BackendUnavailableError, activeBackend, backendProblem, loadManifest, modelBytes, withBundle,
} from './runtime.js';

export const FRAMEWORKS = [['keras', 'Keras'], ['torch', 'PyTorch']];
export const MODES = ['fp32', 'fp16', 'uint8'];

export function formatBytes(n) {
  if (n == null) return '?';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(2)} MB`;
}

export function formatMs(ms) {
  if (ms == null) return '–';
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(0)} ms`;
}

function formatNumber(v) {
  if (v == null || Number.isNaN(v)) return '?';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null) node.append(c);
  return node;
}

/** A JSON-friendly copy for the page hooks: typed arrays -> arrays; class instances (tokenizers...) left out. */
export function plain(value) {
  if (ArrayBuffer.isView(value)) return Array.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    if (Object.getPrototypeOf(value) !== Object.prototype) return undefined;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]).filter(([, v]) => v !== undefined));
  }
  return value;
}

/** The reason index.json gives for not deploying `model/framework/*mode`, if any. */
function refusalReason(index, model, framework, mode) {
  const hit = (index.refused ?? []).find((r) => {
    const [m, f, ...rest] = r.artifact.split('/');
    return m === model && f === framework && rest[rest.length - 1] === mode;
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
    for (const [value, label] of FRAMEWORKS) {
      const has = this.bundles.some((b) => b.framework === value);
      this.frameworkSelect.append(el('option', { value, disabled: !has, text: has ? label : `${label} (not deployed)` }));
    }
    for (const backend of BACKENDS) {
      const why = backendProblem(backend);
      this.backendSelect.append(el('option', { value: backend, disabled: why !== null, title: why, text: why ? `${backend} (unavailable)` : backend }));
    }
    box.append(
      el('span', { class: 'control' }, el('label', { for: id('framework') }, 'Framework'), this.frameworkSelect),
      el('span', { class: 'control' }, el('label', { for: id('mode') }, 'Precision'), this.modeSelect),
      el('span', { class: 'control' }, el('label', { for: id('backend') }, 'Backend'), this.backendSelect),
    );
    const first = this.bundles.find((b) => b.framework === 'keras') ?? this.bundles[0];
    this.frameworkSelect.value = first ? first.framework : 'keras';
    this.backendSelect.value = 'wasm';
    this.fillModes();
    this.frameworkSelect.addEventListener('change', () => { this.fillModes(); this.selectionChanged(); });
    this.modeSelect.addEventListener('change', () => this.selectionChanged());
    this.backendSelect.addEventListener('change', () => this.selectionChanged());
  }

  /** Precision options for the chosen framework: deployed ones enabled, the others disabled with why. */
  fillModes() {
    const framework = this.frameworkSelect.value;
    const previous = this.modeSelect.value;
    this.modeSelect.replaceChildren();
    for (const mode of MODES) {
      const has = this.bundles.some((b) => b.framework === framework && b.mode === mode);
      const why = has ? null : refusalReason(this.index, this.model, framework, mode);
      this.modeSelect.append(el('option', {
        value: mode, disabled: !has, title: why, text: has ? mode : `${mode} (${why ? 'refused' : 'not deployed'})`,
      }));
    }
    const enabled = [...this.modeSelect.options].filter((o) => !o.disabled).map((o) => o.value);
    this.modeSelect.value = enabled.includes(previous) ? previous : (enabled[0] ?? MODES[0]);
    this.showNotes();
  }

  /** Notes under the controls: refused precisions with their reasons, an unavailable backend. */
  showNotes() {
    const framework = this.frameworkSelect.value;
    const notes = [];
    for (const mode of MODES) {
      if (this.bundles.some((b) => b.framework === framework && b.mode === mode)) continue;
      const why = refusalReason(this.index, this.model, framework, mode);
      notes.push(`${mode}: ${why ? `refused by the deploy gate: ${why}` : 'not deployed (no TF.js artifact passed verification)'}`);
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
    if (framework !== undefined) {
      this.frameworkSelect.value = framework;
      this.fillModes();
    }
    if (mode !== undefined) this.modeSelect.value = mode;
    if (backend !== undefined) this.backendSelect.value = backend;
    const s = this.selection;
    if ((framework && s.framework !== framework) || (mode && s.mode !== mode) || (backend && s.backend !== backend)) {
      throw new Error(`${this.model}: cannot select ${JSON.stringify({ framework, mode, backend })}: not offered (${JSON.stringify(s)} stays)`);
    }
    this.selectionChanged();
    return this.idle();
  }

  /** The bundle folder for the current framework and precision (null when none is deployed). */
  bundle() {
    const { framework, mode } = this.selection;
    return this.bundles.find((b) => b.framework === framework && b.mode === mode)?.bundle ?? null;
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
      this.showError(new Error(`no ${this.model} bundle is deployed for ${this.selection.framework} ${this.selection.mode}`));
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
        const out = await this.infer(ctx, input);
        return { out, bundle, backend: ctx.backend, active: activeBackend(), loadMs: ctx.loadMs, fresh: ctx.fresh, manifest: ctx.manifest };
      });
      this.render(result.out, input, result);
      this.last = plain({ bundle, backend: result.backend, input, ...result.out });
      this.showFacts(result);
      this.clearError();
      this.setStatus('');
    } catch (e) {
      this.setStatus('');
      if (e instanceof BackendUnavailableError) {
        // Say so, offer the option no more, and run on wasm instead.
        for (const o of this.backendSelect.options) {
          if (o.value === e.backend) {
            o.disabled = true;
            o.textContent = `${e.backend} (unavailable)`;
            o.title = e.reason;
          }
        }
        this.backendSelect.value = 'wasm';
        this.showNotes();
        this.showError(new Error(`${e.message}. Switched this panel to wasm.`), 'warning');
        if (e.backend !== 'wasm') {
          this.pending += 1;
          this.job = this.job.then(() => this.runOnce()).finally(() => { this.pending -= 1; });
        }
        return;
      }
      this.showError(e);
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
    const v = manifest.verdict ?? {};
    const m = manifest.metric ?? {};
    const budget = v.budget ?? {};
    const limits = [
      budget.max_abs_error != null && `max |Δ| ≤ ${formatNumber(budget.max_abs_error)}`,
      budget.min_cosine != null && `cosine ≥ ${budget.min_cosine}`,
      budget.max_metric_drop != null && `${m.name ?? 'metric'} drop ≤ ${formatNumber(budget.max_metric_drop)}`,
      budget.min_top1_agreement != null && `top-1 agreement ≥ ${formatNumber(budget.min_top1_agreement)}`,
    ].filter(Boolean).join(', ');
    const status = (v.status ?? 'unknown').toLowerCase();
    const verdict = el('span', { class: `verdict verdict-${status}`, text: status.toUpperCase() });
    const here = run && run.bundle === bundle;
    const rows = [
      ['Bundle', el('code', { text: bundle })],
      ['Size', `${formatBytes(modelBytes(manifest))} (model.json + weights, ${manifest.mode})`],
      ['Load', here ? `${formatMs(run.loadMs)}${run.fresh ? '' : ' (at first use; cached since)'}` : 'not loaded yet (loads on first use)'],
      ['Inference', here ? `${formatMs(run.out.ms)}${run.fresh ? ' (first run: includes TF.js warm-up)' : ''}` : '–'],
      ['Backend', here ? el('strong', { 'data-role': 'active-backend', text: run.active }) : `${this.selection.backend} (selected)`],
      ['Parity', el('span', {}, verdict, v.runtime ? ` on ${v.runtime}` : '',
        manifest.override ? ` (OVERRIDE: ${manifest.override.reason})` : '')],
      ['Metric', `${m.name ?? '?'}: ${formatNumber(m.reference)} → ${formatNumber(m.artifact)} `
        + `(reference → artifact${m.test_examples ? `, ${m.test_examples} test examples` : ''})`],
      ['Budget', limits || '–'],
    ];
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
