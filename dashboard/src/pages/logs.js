// Live logs: the recent run records, then the live tail (server-sent events read with fetch, since
// EventSource cannot send a bearer header; resumed with Last-Event-ID). Filters by hook, point,
// outcome and text; pause; clear; download the shown records as JSON; click a run for its record.

import * as api from '../api.js';
import { h, clear, fmtMs, fmtTime, outcomeBadge, download, TRIGGERS } from '../dom.js';
import { showRecord } from '../record.js';

const KEEP = 2000;
const OUTCOMES = ['ok', 'error', 'denied', 'timeout', 'crash', 'overloaded'];

export async function logsPage(main) {
  const records = []; // newest first
  const seen = new Set();
  let paused = false;
  let held = [];
  const hooks = await api.listHooks().catch(() => []);

  const pill = h('span.pill.connecting', { role: 'status', dataset: { state: 'connecting' } }, 'connecting');
  const sel = (name, label, options) =>
    h('select', { name, 'aria-label': label, onchange: draw }, h('option', { value: '' }, label), options.map(([v, t]) => h('option', { value: v }, t)));
  const fHook = sel('hook', 'all hooks', hooks.map((x) => [x.id, `${x.triggerId}/${x.name}`]));
  const fPoint = sel('point', 'all points', TRIGGERS.map(([id]) => [id, id]));
  const fOutcome = sel('outcome', 'all outcomes', OUTCOMES.map((o) => [o, o]));
  const fText = h('input', { type: 'search', name: 'q', placeholder: 'text in an error or console line', oninput: draw });
  const pauseBtn = h('button', { onclick: () => togglePause(), dataset: { action: 'pause' } }, 'Pause');
  const count = h('span.muted.small');
  const tbody = h('tbody');
  const empty = h('p.empty');

  function matches(r) {
    if (fHook.value && r.hook_id !== fHook.value) return false;
    if (fPoint.value && r.point !== fPoint.value) return false;
    if (fOutcome.value && r.outcome !== fOutcome.value) return false;
    const q = fText.value.trim().toLowerCase();
    if (q) {
      const hay = [r.hook, r.error?.class, r.error?.message, ...(r.console || []).map((l) => l.message)].join('\n').toLowerCase();
      if (!hay.includes(q)) return false;
    }
    return true;
  }
  const shown = () => records.filter(matches);

  function rowOf(r) {
    return h(
      'tr.clickable',
      { onclick: () => showRecord(r), dataset: { run: r.id, hook: r.hook }, class: r.outcome === 'ok' || r.outcome === 'denied' ? '' : 'bad' },
      h('td.mono.small', {}, fmtTime(r.start)),
      h('td', {}, r.hook),
      h('td.small.muted', {}, r.point),
      h('td', {}, outcomeBadge(r.outcome)),
      h('td.num', {}, fmtMs(r.duration_ms)),
      h('td.small.ellipsis', {}, r.error ? `${r.error.class}: ${r.error.message}` : r.console?.length ? r.console[r.console.length - 1].message : ''),
    );
  }

  function draw() {
    const list = shown();
    clear(tbody, list.slice(0, 500).map(rowOf));
    count.textContent = `${list.length} of ${records.length} runs${held.length ? ` · ${held.length} held while paused` : ''}`;
    empty.textContent = records.length ? (list.length ? '' : 'No run matches the filters.') : 'Waiting for runs… make a request through hookgate.';
    empty.hidden = list.length > 0;
  }

  function add(r) {
    if (seen.has(r.id)) return;
    seen.add(r.id);
    records.unshift(r);
    if (records.length > KEEP) seen.delete(records.pop().id);
  }

  function togglePause() {
    paused = !paused;
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    pauseBtn.classList.toggle('active', paused);
    if (!paused) {
      held.forEach(add);
      held = [];
    }
    draw();
  }

  function setState(state, detail) {
    pill.dataset.state = state;
    pill.className = `pill ${state}`;
    pill.textContent = state === 'unavailable' ? `unavailable: ${detail || ''}` : state;
    pill.title = detail || '';
  }

  clear(
    main,
    h('div.page-head', {}, h('h1', {}, 'Live logs'), pill),
    h(
      'div.toolbar',
      {},
      fHook,
      fPoint,
      fOutcome,
      fText,
      h('div.spacer'),
      count,
      pauseBtn,
      h('button', { onclick: () => (records.splice(0), seen.clear(), (held = []), draw()), dataset: { action: 'clear' } }, 'Clear'),
      h('button', { onclick: () => download(`hookgate-runs-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, shown()), dataset: { action: 'download' } }, 'Download JSON'),
    ),
    h(
      'table.logs',
      {},
      h('thead', {}, h('tr', {}, ['Time', 'Hook', 'Point', 'Outcome', 'Waited', 'Error / last console line'].map((t) => h('th', {}, t)))),
      tbody,
    ),
    empty,
  );

  try {
    (await api.runs({ limit: 200 })).reverse().forEach(add);
  } catch (e) {
    if (api.isMissingRoute(e)) {
      setState('unavailable', 'runs API not mounted');
      draw();
      return null;
    }
  }
  draw();
  const tail = api.followRuns({
    since: records[0]?.id ?? null,
    onRun: (r) => {
      if (paused) held.push(r);
      else add(r);
      draw();
    },
    onMissed: (n) => {
      setState('live', `${n} runs were missed (the tail fell behind)`);
    },
    onState: setState,
  });
  return () => tail.stop();
}
