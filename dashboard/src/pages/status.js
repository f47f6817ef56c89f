// Status: the generation in force, the last rejected change (file:line), the upstream's
// reachability, the outbox, and per-hook latency and error rate from the recent run records.

import * as api from '../api.js';
import { h, clear, fmtMs, ago, parseProblems } from '../dom.js';
import { hookStats } from '../stats.js';

export async function statusPage(main) {
  const [s, stats] = await Promise.all([api.status(), hookStats().catch(() => null)]);
  const rejectedNow = s.lastError && (!s.lastSuccess || s.lastError.at >= s.lastSuccess);
  const card = (title, cls, ...body) => h(`div.card${cls ? `.${cls}` : ''}`, {}, h('h3', {}, title), ...body);
  clear(
    main,
    h('div.page-head', {}, h('h1', {}, 'Status')),
    h(
      'div.cards',
      {},
      card(
        'Generation in force',
        '',
        h('div.big', { dataset: { generation: s.generation } }, String(s.generation)),
        h('p.small.muted', {}, `${s.reloads} reloads · ${s.rejected} rejected · last reload ${ago(s.lastSuccess)}`),
        s.restartRequired.length ? h('p.small.warn-text', {}, `restart required for: ${s.restartRequired.join(', ')}`) : null,
      ),
      card(
        'Last rejected change',
        rejectedNow ? 'bad' : '',
        s.lastError
          ? [
              h('p.small.muted', {}, `${ago(s.lastError.at)} · rejected as a whole; the generation above kept serving`),
              h('ul.problems-list', {}, parseProblems(s.lastError.problems).map((p) => h('li.mono.small', {}, p.text))),
            ]
          : h('p.muted', {}, 'None since start.'),
      ),
      card(
        'Upstream',
        s.upstream.reachable ? 'good' : 'bad',
        h('div.big', {}, s.upstream.reachable ? 'reachable' : 'unreachable'),
        h('p.small.mono', {}, s.upstream.address || ''),
        s.upstream.error ? h('p.small.err-text', {}, s.upstream.error) : null,
      ),
      card('Outbox', '', h('div.big', {}, s.outbox.open ? 'open' : 'closed'), h('p.small.mono', {}, s.outbox.path || ''), h('a.small', { href: '#/outbox' }, 'Pending and dead events →')),
    ),
    s.dependencyProblems.length
      ? h(
          'div.banner.error',
          {},
          h('strong', {}, 'Hooks whose npm dependencies are missing or at another major version'),
          h(
            'ul',
            {},
            s.dependencyProblems.map((d) => h('li', {}, h('a', { href: `#/hooks/${encodeURIComponent(d.id)}` }, d.name), ': ', d.problems.join('; '))),
          ),
          h('p.small', {}, 'Run npm install in the hooks folder: hookgate installs nothing.'),
        )
      : null,
    h('p.small.muted.mono', {}, `config ${s.config} · hooks ${s.hooksDir}`),
    h('h2', {}, 'Per hook'),
    stats
      ? stats.byHook.size
        ? h(
            'table.per-hook',
            {},
            h('thead', {}, h('tr', {}, ['Hook', 'Point', 'Calls', 'p50', 'p99', 'Error rate', 'By outcome', 'Last'].map((t) => h('th', {}, t)))),
            h(
              'tbody',
              {},
              [...stats.byHook.values()].map((x) =>
                h(
                  'tr',
                  {},
                  h('td', {}, x.hook),
                  h('td.small.muted', {}, x.point),
                  h('td.num', {}, String(x.calls)),
                  h('td.num', {}, fmtMs(x.p50)),
                  h('td.num', {}, fmtMs(x.p99)),
                  h('td.num', { class: x.errorRate > 0 ? 'err-text' : '' }, `${(x.errorRate * 100).toFixed(1)} %`),
                  h('td.small', {}, Object.entries(x.outcomes).map(([o, n]) => `${o} ${n}`).join(' · ')),
                  h('td', {}, h(`span.badge.o-${x.last}`, {}, x.last)),
                ),
              ),
            ),
          )
        : h('p.empty', {}, 'No run recorded yet.')
      : h('p.muted', {}, 'skipped: runs API not mounted'),
    stats ? h('p.small.muted', {}, `From the newest ${stats.sample} run records. Full histograms: the admin listener's /metrics.`) : null,
  );
}
