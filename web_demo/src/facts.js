// The facts a panel shows about the artifact it runs, all from that bundle's own manifest: its size,
// load time and latency (after a run), the runtime and threads, and the verdicts: the deploy gate's
// parity verdict for this very bundle (a TF.js bundle's or a .tflite bundle's: never another's), and,
// where the manifest carries one, the verdict for the browser runtime selected (`browser_verdicts`,
// keyed by runtime id: "litertjs-wasm", "tfjs-wasm", ...; a runtime that could not run it says why).

import { formatBytes, formatMs, formatNumber, el } from './dom.js';
import { THREADS, isLiteRt, modelBytes, runtimeLabel, wasmThreads } from './runtime.js';
import { litertRefusal } from './tflite_bundle.js';

/** The runtime id used by verdict rows: litertjs-<accelerator> or tfjs-<backend>. */
export const verdictKey = (backend) => (isLiteRt(backend) ? backend : `tfjs-${backend}`);

function badge(status) {
  const s = (status ?? 'unknown').toLowerCase();
  return el('span', { class: `verdict verdict-${s}`, text: s.toUpperCase() });
}

/** The verdict for `backend` from the manifest's browser_verdicts, as a node (null when there is none). */
function browserVerdict(manifest, backend, bundle) {
  const refused = isLiteRt(backend) ? litertRefusal(bundle, backend.slice(9)) : null;
  const row = manifest.browser_verdicts?.[verdictKey(backend)] ?? (refused ? { status: 'unsupported', reason: refused } : null);
  if (row == null) return null;
  const detail = row.status === 'unsupported' || row.status === 'fail' ? `: ${row.reason ?? 'no reason given'}`
    : row.max_abs_error != null ? ` (max |Δ| ${formatNumber(row.max_abs_error)})` : '';
  return el('span', { 'data-role': 'runtime-verdict' }, badge(row.status), ` in ${runtimeLabel(backend)}${detail}`);
}

/** "Proven in this browser": the bundle's self-test as run here when it first loaded (panel.js PROOFS). */
function proofNode(manifest, proof, backend) {
  const muted = (text) => el('span', { 'data-role': 'browser-proof', 'data-status': proof?.status ?? 'pending', class: 'muted', text });
  if (!manifest.self_test) return muted('this bundle carries no self-test (deploy it again to add one)');
  if (proof == null) return muted(`its self-test runs when the model first loads in ${runtimeLabel(backend)}`);
  const where = ` on ${runtimeLabel(proof.runtime)} in ${proof.browser}`;
  if (proof.status === 'error') {
    return el('span', { 'data-role': 'browser-proof', 'data-status': 'error' }, badge('fail'), `${where}: the self-test could not run: ${proof.error}`);
  }
  if (proof.status === 'none') return muted('this bundle carries no self-test');
  const t = proof.tolerance;
  const detail = `: max |Δ| ${formatNumber(proof.maxErr)} against the deploy gate's outputs${proof.family ? ` (${proof.family})` : ''}`
    + ` on ${proof.probes} probe${proof.probes === 1 ? '' : 's'}, ${proof.outside} of ${proof.total} elements outside `
    + `${formatNumber(t.atol)} + ${formatNumber(t.rtol)} × |expected|${proof.missing ? '; an output is missing' : ''}`;
  const text = proof.status === 'pass' ? 'PROVEN' : 'FAILED';
  return el('span', { 'data-role': 'browser-proof', 'data-status': proof.status },
    el('span', { class: `verdict verdict-${proof.status}`, text }), `${where}${detail}`);
}

/** The CPU threads of the last run (what the runtime reported), or the page's setting before a run. */
function threadsOf(backend, run) {
  if (run?.threads != null) return run.threads;
  if (backend === 'wasm') return wasmThreads()?.threads ?? THREADS;
  return null;
}

/** [label, value] rows for the stats box. `run` is the last run of this bundle (or null). */
export function factRows(manifest, { bundle, run, backend, proof = null }) {
  const v = manifest.verdict ?? {};
  const m = manifest.metric ?? {};
  const budget = v.budget ?? {};
  const limits = [
    budget.max_abs_error != null && `max |Δ| ≤ ${formatNumber(budget.max_abs_error)}`,
    budget.min_cosine != null && `cosine ≥ ${budget.min_cosine}`,
    budget.max_metric_drop != null && `${m.name ?? 'metric'} drop ≤ ${formatNumber(budget.max_metric_drop)}`,
    budget.min_top1_agreement != null && `top-1 agreement ≥ ${formatNumber(budget.min_top1_agreement)}`,
  ].filter(Boolean).join(', ');
  const tflite = (manifest.artifact_target ?? 'tfjs') === 'tflite';
  const files = tflite ? manifest.model_file : 'model.json + weights';
  const active = run ? run.active : backend;
  const threads = threadsOf(active, run);
  const here = browserVerdict(manifest, active, bundle);
  return [
    ['Bundle', el('code', { text: bundle })],
    ['Size', `${formatBytes(modelBytes(manifest))} (${files}, ${manifest.mode})`],
    ['Load', run ? `${formatMs(run.loadMs)}${run.fresh ? '' : ' (at first use; cached since)'}` : 'not loaded yet (loads on first use)'],
    ['Inference', run ? `${formatMs(run.out.ms)}${run.fresh ? ' (first run: includes warm-up)' : ''}` : '–'],
    ['Backend', run
      ? el('span', {}, el('strong', { 'data-role': 'active-backend', text: run.active }),
        ` (${runtimeLabel(run.active)}${threads ? `, ${threads} thread${threads > 1 ? 's' : ''}` : ''})`)
      : `${backend} (selected)`],
    ['Parity', el('span', { 'data-role': 'verdict' }, badge(v.status), v.runtime ? ` on ${v.runtime}` : '',
      manifest.override ? ` (OVERRIDE: ${manifest.override.reason})` : '')],
    ['In this runtime', here ?? el('span', { 'data-role': 'runtime-verdict', class: 'muted',
      text: `not checked in ${runtimeLabel(active)} by the deploy gate; the parity verdict above is ${v.runtime ? `from ${v.runtime}` : 'the bundle\'s'}` })],
    ['Proven in this browser', proofNode(manifest, proof, active)],
    ['Metric', `${m.name ?? '?'}: ${formatNumber(m.reference)} → ${formatNumber(m.artifact)} `
      + `(reference → artifact${m.test_examples ? `, ${m.test_examples} test examples` : ''})`],
    ['Budget', limits || '–'],
  ];
}
