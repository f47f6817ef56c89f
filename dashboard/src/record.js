// How a run is shown: a run record (live logs, a hook's runs) or a Runner result. Both have an
// outcome, an error or a response, console lines, outbound requests and durations.

import { h, fmtMs, fmtTime, outcomeBadge } from './dom.js';

export function consoleView(lines, truncated) {
  if (!lines?.length) return h('p.muted.small', {}, 'No console output.');
  return h(
    'div.console',
    {},
    lines.map((l) =>
      h(`div.line.l-${l.level || 'info'}`, {}, h('span.at', {}, l.at_ms !== undefined ? `+${Number(l.at_ms).toFixed(1)}ms` : ''), h('span.lvl', {}, l.level || ''), h('span.msg', {}, l.message)),
    ),
    truncated ? h('div.line.muted', {}, '… lines dropped or cut ([hooks] max_log_bytes)') : null,
  );
}

export function requestsView(reqs, omitted) {
  if (!reqs?.length) return h('p.muted.small', {}, 'No outbound request.');
  return h(
    'table.requests',
    {},
    h('thead', {}, h('tr', {}, ['Method', 'URL', 'Result', 'Time'].map((t) => h('th', {}, t)))),
    h(
      'tbody',
      {},
      reqs.map((r) =>
        h(
          'tr',
          {},
          h('td', {}, r.method),
          h('td.url', { title: (r.hops || []).join(' → ') }, r.url),
          h('td', {}, r.error ? h('span.err', {}, r.error) : h(`span.status.s${String(r.status)[0]}`, {}, String(r.status ?? '—'))),
          h('td.num', {}, fmtMs(r.duration_ms)),
        ),
      ),
    ),
    omitted ? h('caption', {}, `${omitted} more not kept`) : null,
  );
}

export function resultView(r) {
  return h(
    'div.result',
    {},
    h(
      'div.result-head',
      {},
      outcomeBadge(r.outcome),
      h('span', { title: 'until cb' }, fmtMs(r.duration_ms)),
      r.ran_ms !== undefined ? h('span.muted.small', { title: 'until the event loop was done' }, `ran ${fmtMs(r.ran_ms)}`) : null,
      r.cpu_ms !== undefined ? h('span.muted.small', {}, `cpu ${fmtMs(r.cpu_ms)}`) : null,
    ),
    r.error
      ? h('div.error-box', {}, h('strong', {}, r.error.class || 'Error'), ': ', r.error.message, r.user_message ? h('div.small', {}, `user message: ${r.user_message}`) : null)
      : null,
    r.response !== undefined ? h('div', {}, h('h4', {}, 'cb result'), h('pre.json', {}, JSON.stringify(r.response, null, 2))) : null,
    h('h4', {}, `Console (${r.console?.length || 0})`),
    consoleView(r.console, r.console_truncated),
    h('h4', {}, `Outbound requests (${r.requests?.length || 0})`),
    requestsView(r.requests, r.requests_omitted),
  );
}

/** The whole record of a run, in a side drawer. */
export function showRecord(rec) {
  document.querySelector('aside.drawer')?.remove();
  const facts = [
    ['Record', `#${rec.id}`],
    ['Hook', rec.hook],
    ['Hook id', rec.hook_id],
    ['Point', rec.point],
    ['Started', fmtTime(rec.start)],
    ['Route', rec.route],
    ['Client', rec.client_id],
    ['Request', rec.request_id],
    ['Outbox event', rec.event_id],
    ['Generation', rec.generation],
  ].filter(([, v]) => v !== null && v !== undefined && v !== '');
  const drawer = h(
    'aside.drawer',
    { role: 'dialog', 'aria-label': `run ${rec.id}` },
    h('div.drawer-head', {}, h('h3', {}, `Run #${rec.id}`), h('div.spacer'), h('button.icon', { title: 'close', onclick: () => drawer.remove() }, '✕')),
    h('dl.facts', {}, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])),
    resultView(rec),
    h('details', {}, h('summary', {}, 'Raw JSON'), h('pre.json', {}, JSON.stringify(rec, null, 2))),
  );
  document.body.append(drawer);
  const esc = (e) => {
    if (e.key === 'Escape') {
      drawer.remove();
      document.removeEventListener('keydown', esc);
    }
  };
  document.addEventListener('keydown', esc);
}
