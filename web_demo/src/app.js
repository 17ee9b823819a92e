// The demo page: reads index.json, builds the five model panels and the panel for your own models,
// and exposes window.edgeproof, a small hook for tests and for the curious (runBundle runs any bundle
// on canonical inputs, on any runtime; timeBundle times it there).

import { CustomPanel } from './custom_panel.js';
import { el, formatBytes } from './panel.js';
import { DigitPanel, GanPanel, LinregPanel, SentimentPanel, TranslatorPanel } from './panels.js';
import {
  BACKENDS, THREADS, activeBackend, backendProblem, drained, loadIndex, loadManifest, predict, probeBackends, runtimeLabel,
  tf, wasmThreads, withBundle,
} from './runtime.js';
import { ImdbTokenizer, WordTokenizer } from './tokenizers.js';
import { parseNpy, parseNpz } from './npy.js';

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
  const tflite = index.bundles.filter((b) => b.artifact_target === 'tflite').length;
  box.replaceChildren(
    el('p', {}, `TF.js ${tf.version.tfjs} and LiteRT.js, served from this site (no CDN). `,
      `${index.bundles.length} bundles deployed (${tflite} .tflite, ${index.bundles.length - tflite} TF.js; ${formatBytes(total)} in all), `
      + `${index.refused?.length ?? 0} refused by the deploy gate. Models load only when you use a panel.`),
    el('p', { 'data-role': 'threads' }, `CPU threads for wasm: ${THREADS} `
      + `(${globalThis.crossOriginIsolated ? 'the page is cross-origin isolated: wasm threads allowed' : 'the page is NOT cross-origin isolated: wasm runs on one thread; the server must send COOP/COEP headers'}; `
      + 'change with ?threads=N).'),
    el('ul', { class: 'backends', 'aria-label': 'Runtimes' }, backends));
}

async function main() {
  const index = await loadIndex();
  await probeBackends();
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
  const root = document.getElementById('panel-custom');
  try {
    panels.custom = new CustomPanel(root, index, PANELS.map(([m]) => m));
    if (panels.custom.mine.length === 0) {
      for (const role of ['controls', 'notes', 'signature']) root.querySelector(`[data-role=${role}]`).hidden = true;
      root.querySelector('[data-role=file]').disabled = true;
      root.querySelector('[data-role=run]').disabled = true;
      root.querySelector('[data-role=result]').textContent = 'No bundle of your own is deployed: `edgeproof convert --source '
        + 'your_model.onnx ...` then `edgeproof deploy --target web` adds it here.';
    } else {
      panels.custom.showFacts();
    }
  } catch (e) {
    panelFailed(root, 'custom', e);
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

/** Time `bundle` on `backend` as a panel runs it (binding included): median and all times in ms. */
async function timeBundle(bundle, backend, inputs, repeats = 20, warmup = 3) {
  return withBundle(bundle, backend, async (ctx) => {
    for (let i = 0; i < warmup; i++) await predict(ctx, inputs);
    const times = [];
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      await predict(ctx, inputs);
      times.push(performance.now() - t0);
    }
    const s = [...times].sort((a, b) => a - b);
    const median = s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    return { backend: ctx.backend, median_ms: median, times_ms: times };
  });
}

const hook = {
  ready: started.then(() => true),
  runBundle,
  timeBundle,
  lastRun: null,
  threads: THREADS,
  wasmThreads,
  runtimeLabel,
  npy: { parseNpy, parseNpz },
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
