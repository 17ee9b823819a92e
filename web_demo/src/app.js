// The demo page: reads index.json, builds the five panels and exposes window.edgeproof, a small
// hook for tests and for the curious (runBundle runs any bundle on canonical inputs).

import { el, formatBytes } from './panel.js';
import { DigitPanel, GanPanel, LinregPanel, SentimentPanel, TranslatorPanel } from './panels.js';
import {
  BACKENDS, activeBackend, backendProblem, drained, loadIndex, loadManifest, predict, tf, withBundle,
} from './runtime.js';
import { ImdbTokenizer, WordTokenizer } from './tokenizers.js';

const PANELS = [
  ['mnist_cnn', DigitPanel], ['imdb_lstm', SentimentPanel], ['mnist_gan', GanPanel],
  ['translator', TranslatorPanel], ['linreg', LinregPanel],
];

/** A panel that cannot start still shows why, in its own error box. */
function panelFailed(root, model, e) {
  const box = root.querySelector('[data-role=error]');
  box.textContent = `${model}: ${e.message}`;
  box.className = 'message error';
  box.hidden = false;
}

function showEnvironment(index) {
  const box = document.getElementById('environment');
  const backends = BACKENDS.map((b) => {
    const why = backendProblem(b);
    return el('li', { class: why ? 'off' : 'on', title: why }, el('strong', { text: b }), why ? `: unavailable (${why})` : ': available');
  });
  const total = index.bundles.reduce((s, b) => s + (b.bytes ?? 0), 0);
  box.replaceChildren(
    el('p', {}, `TF.js ${tf.version.tfjs}, served from this site (no CDN). `,
      `${index.bundles.length} bundles deployed (${formatBytes(total)} in all), ${index.refused?.length ?? 0} refused by the deploy gate. `,
      'Models load only when you use a panel.'),
    el('ul', { class: 'backends', 'aria-label': 'TF.js backends' }, backends));
}

async function main() {
  const index = await loadIndex();
  showEnvironment(index);
  const panels = {};
  for (const [model, Klass] of PANELS) {
    const root = document.getElementById(`panel-${model}`);
    try {
      panels[model] = new Klass(root, index);
      if (panels[model].bundles.length === 0) {
        const why = (index.refused ?? []).filter((r) => r.artifact.startsWith(`${model}/`)).map((r) => `${r.artifact}: ${r.reason}`);
        throw new Error(`no bundle of this model is deployed${why.length ? `; refused: ${why.join('; ')}` : ''}`);
      }
      panels[model].showFacts();
    } catch (e) {
      panelFailed(root, model, e);
    }
  }
  return { index, panels };
}

const started = main();

/** Canonical inputs {name: {dtype, shape, data: Array}} -> {output name: {shape, data: Array}}. */
async function runBundle(bundle, backend, inputs) {
  const result = await withBundle(bundle, backend, async (ctx) => {
    const { outputs, ms } = await predict(ctx, inputs);
    return { outputs, ms, backend: ctx.backend };
  });
  hook.lastRun = { bundle, backend: result.backend, ms: result.ms };
  return Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, { shape: v.shape, data: Array.from(v.data) }]));
}

const hook = {
  ready: started.then(() => true),
  runBundle,
  lastRun: null,
  manifest: loadManifest,
  activeBackend,
  backendProblem,
  tokenizers: { ImdbTokenizer, WordTokenizer },
  panels: {},
  /** Resolves when no panel run and no TF.js job is pending. */
  async idle() {
    const { panels } = await started;
    for (;;) {
      await Promise.all(Object.values(panels).map((p) => p.idle()));
      await drained();
      if (Object.values(panels).every((p) => p.pending === 0)) return;
    }
  },
};
window.edgeproof = hook;

started.then(({ panels }) => {
  Object.assign(hook.panels, panels);
  document.body.dataset.ready = 'true';
}).catch((e) => {
  const box = document.getElementById('page-error');
  box.textContent = `The demo could not start: ${e.message}`;
  box.hidden = false;
  for (const root of document.querySelectorAll('section.panel')) panelFailed(root, root.dataset.model, e);
  document.body.dataset.ready = 'error';
});
