// The hooks page: the five points, each with its hooks in run order, enabled state, last outcome
// and p99 (from the run records, when the runs API is there), targeting, timeout, on_error; create
// from the point's starter code, reorder, enable/disable, rename, delete (with confirmation).

import * as api from '../api.js';
import { h, clear, toast, confirmDialog, formDialog, fmtMs, outcomeBadge, TRIGGERS } from '../dom.js';
import { FACTS } from '../cm.js';
import { refreshGeneration } from '../gen.js';
import { hookStats } from '../stats.js';

const NAME = '^[a-zA-Z0-9]([ \\-a-zA-Z0-9]*[a-zA-Z0-9])?$';

export async function hooksPage(main) {
  const [hooks, stats] = await Promise.all([api.listHooks(), hookStats().catch(() => null)]);
  const draw = () => render(main, hooks, stats, reload);
  async function reload() {
    hooks.splice(0, hooks.length, ...(await api.listHooks()));
    draw();
  }
  draw();
}

function render(main, hooks, stats, reload) {
  const sections = TRIGGERS.map(([id, title, sub]) => {
    const list = hooks.filter((x) => x.triggerId === id).sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
    return h(
      'section.point',
      { dataset: { trigger: id } },
      h(
        'div.point-head',
        {},
        h('h2', {}, title),
        h('code.muted', {}, id),
        h('span.muted.small', {}, sub),
        h('div.spacer'),
        h('button.small', { onclick: () => create(id, reload), dataset: { action: 'create' } }, '+ New hook'),
      ),
      list.length
        ? h(
            'table.hooks',
            {},
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['#', 'Hook', 'Enabled', 'Last run', 'p99', 'Calls', 'Targeting', 'Timeout', 'On error', ''].map((t) => h('th', {}, t)),
              ),
            ),
            h(
              'tbody',
              {},
              list.map((hook, i) => row(hook, i, list, stats, reload)),
            ),
          )
        : h('p.empty', {}, 'No hook at this point. ', h('span.muted', {}, 'New hooks start from Auth0\'s starter code.')),
    );
  });
  clear(
    main,
    h(
      'div.page-head',
      {},
      h('h1', {}, 'Hooks'),
      h(
        'p.muted',
        {},
        'Every enabled hook of a point runs, in this order. Changes are written to the files and hot-reloaded.',
        stats ? null : ' Run figures appear once the runs API is mounted.',
      ),
    ),
    sections,
  );
}

function row(hook, i, list, stats, reload) {
  const s = stats?.byHook.get(hook.id) || stats?.byHook.get(`${hook.triggerId}/${hook.name}`);
  const move = async (delta) => {
    const ids = list.map((x) => x.id);
    const j = i + delta;
    [ids[i], ids[j]] = [ids[j], ids[i]];
    try {
      await api.setOrder(hook.triggerId, ids);
      await reload();
      refreshGeneration();
    } catch (e) {
      toast(`Reorder failed: ${e.message}`, 'error');
    }
  };
  const toggle = h('input.switch', {
    type: 'checkbox',
    checked: hook.enabled,
    title: hook.enabled ? 'enabled: click to disable' : 'disabled: click to enable',
    'aria-label': `enable ${hook.name}`,
    onchange: async (e) => {
      e.target.disabled = true;
      try {
        await api.updateHook(hook.id, { enabled: e.target.checked });
        toast(`${hook.name} ${e.target.checked ? 'enabled' : 'disabled'}`);
        await reload();
        refreshGeneration();
      } catch (err) {
        e.target.checked = !e.target.checked;
        e.target.disabled = false;
        toast(err.message, 'error');
      }
    },
  });
  const targeting = [
    hook.clients?.length ? `clients: ${hook.clients.join(', ')}` : null,
    hook.routes?.length ? `routes: ${hook.routes.join(', ')}` : null,
  ].filter(Boolean);
  return h(
    'tr',
    { dataset: { hook: hook.name, id: hook.id }, class: hook.enabled ? '' : 'disabled' },
    h(
      'td.order',
      {},
      h('button.icon', { title: 'run earlier', disabled: i === 0, onclick: () => move(-1) }, '↑'),
      h('button.icon', { title: 'run later', disabled: i === list.length - 1, onclick: () => move(1) }, '↓'),
    ),
    h(
      'td.name',
      {},
      h('a', { href: `#/hooks/${encodeURIComponent(hook.id)}` }, hook.name),
      hook.kind === 'action' ? h('span.badge.kind-action', { title: 'an Auth0 Action: exports.onExecute… (event, api)' }, 'action') : null,
      hook.reloadProblems.length ? h('span.badge.o-error', { title: hook.reloadProblems.join('\n') }, 'reload error') : null,
      hook.dependencyProblems.length ? h('span.badge.o-timeout', { title: hook.dependencyProblems.join('\n') }, 'dependency') : null,
    ),
    h('td', {}, toggle),
    h('td', {}, s ? outcomeBadge(s.last) : h('span.muted', {}, '—')),
    h('td.num', {}, s ? fmtMs(s.p99) : '—'),
    h('td.num', {}, s ? String(s.calls) : '—'),
    h('td.small', {}, targeting.length ? targeting.join(' · ') : h('span.muted', {}, 'all')),
    h('td.num', {}, hook.timeoutMs ? fmtMs(hook.timeoutMs) : h('span.muted', {}, 'default')),
    h('td', {}, h(`span.tag.${hook.onError}`, {}, hook.onError)),
    h(
      'td.actions',
      {},
      h('button.link', { onclick: () => rename(hook, reload) }, 'Rename'),
      h('button.link.danger', { onclick: () => remove(hook, reload) }, 'Delete'),
    ),
  );
}

async function create(triggerId, reload) {
  const v = await formDialog(`New ${triggerId} hook`, [
    { name: 'name', label: 'Name', placeholder: 'add-claims', pattern: NAME, hint: 'letters, digits, spaces and dashes' },
    { name: 'state', label: 'State', options: ['enabled', 'disabled'], value: 'enabled' },
  ]);
  if (!v) return;
  try {
    const created = await api.createHook({
      name: v.name,
      triggerId,
      script: FACTS.triggers[triggerId].starter,
      enabled: v.state === 'enabled',
    });
    toast(`Created ${v.name} from the starter code`);
    refreshGeneration();
    location.hash = `#/hooks/${encodeURIComponent(created.id)}`;
  } catch (e) {
    toast(`Not created: ${e.message}`, 'error');
    await reload();
  }
}

async function rename(hook, reload) {
  const v = await formDialog(`Rename ${hook.name}`, [{ name: 'name', label: 'New name', value: hook.name, pattern: NAME }], 'Rename');
  if (!v || v.name === hook.name) return;
  try {
    await api.updateHook(hook.id, { name: v.name });
    toast(`Renamed to ${v.name}`);
    await reload();
  } catch (e) {
    toast(`Not renamed: ${e.message}`, 'error');
  }
}

export async function remove(hook, reload) {
  const ok = await confirmDialog(
    `Delete ${hook.name}?`,
    `This deletes ${hook.file || 'its file'} and its entry in hookgate.toml, and the secrets stored through the API. Requests stop running it at the next generation.`,
  );
  if (!ok) return false;
  try {
    await api.deleteHook(hook.id);
    toast(`Deleted ${hook.name}`);
    refreshGeneration();
    await reload?.();
    return true;
  } catch (e) {
    toast(`Not deleted: ${e.message}`, 'error');
    return false;
  }
}
