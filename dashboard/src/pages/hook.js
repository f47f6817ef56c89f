// One hook: the editor (Save = write + hot reload; the new generation, or the error at its line
// while the old code keeps serving), and beside it the Runner (never saves), settings, secrets
// (write-only) and the hook's recent runs.

import * as api from '../api.js';
import { h, clear, toast, confirmDialog, fmtMs, fmtTime, outcomeBadge, parseProblems } from '../dom.js';
import { createEditor, FACTS } from '../cm.js';
import { refreshGeneration } from '../gen.js';
import { resultView, showRecord } from '../record.js';
import { remove } from './hooks.js';
import { guardLeaving } from '../nav.js';

const payloadKey = (id) => `hookgate.payload.${id}`;
const history = new Map(); // hook id -> Runner results, newest first (this tab only)

export async function hookPage(main, id) {
  let hook = await api.getHook(id);
  let saved = hook.script || '';
  const trig = FACTS.triggers[hook.triggerId];

  const saveBtn = h('button.primary', { disabled: true, onclick: () => save(), dataset: { action: 'save' } }, 'Save');
  const state = h('span.save-state', { role: 'status' }, '');
  const problemsBox = h('div.problems');
  const editorHost = h('div.editor');
  const panel = h('div.panel-body');
  const enabled = h('input.switch', {
    type: 'checkbox',
    checked: hook.enabled,
    'aria-label': 'enabled',
    onchange: async (e) => {
      try {
        hook = await api.updateHook(hook.id, { enabled: e.target.checked });
        setState(`${hook.enabled ? 'Enabled' : 'Disabled'}`, 'ok');
        refreshGeneration();
      } catch (err) {
        e.target.checked = !e.target.checked;
        toast(err.message, 'error');
      }
    },
  });
  const title = h('h1', {}, hook.name);

  function setState(text, kind = '') {
    state.textContent = text;
    state.className = `save-state ${kind}`;
  }

  // Where the problems shown come from: 'save' and 'runner' are about the editor's text (a run
  // that loads clears them); 'reload' is about the file on disk (stays until a save).
  let problemsFrom = null;
  function showProblems(list, heading, from = 'reload') {
    const problems = parseProblems(list);
    problemsFrom = problems.length ? from : null;
    editor.problems(problems);
    if (!problems.length) return clear(problemsBox);
    clear(
      problemsBox,
      h(
        'div.banner.error',
        { role: 'alert' },
        h('strong', {}, heading),
        h(
          'ul',
          {},
          problems.map((p) =>
            h(
              'li',
              {},
              p.line
                ? h(
                    'button.link.mono',
                    {
                      onclick: () => {
                        const line = editor.view.state.doc.line(Math.min(p.line, editor.view.state.doc.lines));
                        editor.view.dispatch({ selection: { anchor: line.from }, scrollIntoView: true });
                        editor.focus();
                      },
                    },
                    `line ${p.line}${p.col ? `:${p.col}` : ''}`,
                  )
                : null,
              ' ',
              h('span.mono', {}, p.line ? p.message : p.text),
            ),
          ),
        ),
      ),
    );
  }

  const editor = createEditor(editorHost, {
    doc: saved,
    triggerId: hook.triggerId,
    onChange: (text) => {
      const dirty = text !== saved;
      saveBtn.disabled = !dirty;
      if (dirty) setState('Unsaved changes', 'dirty');
    },
    onSave: () => save(),
  });

  async function save() {
    if (editor.text === saved) return;
    saveBtn.disabled = true;
    setState('Saving…');
    const text = editor.text;
    try {
      hook = await api.updateHook(hook.id, { script: text });
      saved = text;
      const s = await refreshGeneration();
      setState(`Saved · generation ${s ? s.generation : '?'} in force`, 'ok');
      showProblems(hook.reloadProblems, 'The last reload was rejected:');
    } catch (e) {
      saveBtn.disabled = false;
      const s = await refreshGeneration();
      setState(`Not saved: the previous code keeps serving${s ? ` (generation ${s.generation})` : ''}`, 'error');
      showProblems([e.message], `Not saved (${e.status || 'error'}):`, 'save');
    }
  }

  // ---- the side panel's tabs ----
  const tabs = {
    Runner: () =>
      runnerTab(panel, hook, trig, () => editor.text, (msg) => {
        if (msg) showProblems([msg], 'The Runner could not load the script (nothing was saved):', 'runner');
        else if (problemsFrom === 'save' || problemsFrom === 'runner') showProblems([]);
      }),
    Settings: () => settingsTab(panel, hook, (h2) => {
      hook = h2;
      title.textContent = hook.name;
    }),
    Secrets: () => secretsTab(panel, hook),
    Runs: () => runsTab(panel, hook),
  };
  const tabBar = h('div.tabs', { role: 'tablist' });
  let current = 'Runner';
  function show(name) {
    current = name;
    for (const b of tabBar.children) b.setAttribute('aria-selected', String(b.textContent === name));
    clear(panel);
    tabs[name]();
  }
  for (const name of Object.keys(tabs)) tabBar.append(h('button.tab', { role: 'tab', onclick: () => show(name) }, name));

  clear(
    main,
    h(
      'div.hook-head',
      {},
      h('a.muted', { href: '#/hooks' }, 'Hooks'),
      h('span.muted', {}, '/'),
      h('code', {}, hook.triggerId),
      h('span.muted', {}, '/'),
      title,
      h('label.inline', {}, enabled, 'enabled'),
      h('span.muted.small.mono', { title: 'the file the hook is stored in' }, hook.file),
      h('div.spacer'),
      state,
      saveBtn,
    ),
    problemsBox,
    h('div.workbench', {}, h('div.editor-wrap', {}, editorHost, h('div.hint.small.muted', {}, 'Ctrl/⌘-S saves · Ctrl-Space completes ', h('code', {}, trig.args.map((a) => a.name).join(', ')), ' and the error classes')), h('div.panel', {}, tabBar, panel)),
  );
  show(current);
  showProblems(hook.reloadProblems, 'The last reload was rejected for this hook (the previous code keeps serving):');
  const s = await refreshGeneration();
  if (s) setState(`generation ${s.generation} in force`);
  editor.focus();
  const leave = (e) => {
    if (editor.text !== saved) {
      e.preventDefault();
      e.returnValue = '';
    }
  };
  window.addEventListener('beforeunload', leave);
  guardLeaving(() => editor.text !== saved);
  return () => {
    window.removeEventListener('beforeunload', leave);
    editor.view.destroy();
  };
}

// ---- Runner: runs the editor's text, never saves ----
function runnerTab(panel, hook, trig, script, onLoadError) {
  const defaults = JSON.stringify(trig.payload, null, 2);
  const payload = h('textarea.code', { spellcheck: false, rows: 9, name: 'payload', 'aria-label': 'payload' });
  payload.value = localStorage.getItem(payloadKey(hook.id)) || defaults;
  payload.addEventListener('input', () => localStorage.setItem(payloadKey(hook.id), payload.value));
  const secrets = h('textarea.code', { spellcheck: false, rows: 2, name: 'secrets', placeholder: 'NAME=value (one a line; this run only, not stored)' });
  const out = h('div.run-out');
  const list = history.get(hook.id) || [];
  history.set(hook.id, list);
  const hist = h('ol.history');
  const drawHistory = () =>
    clear(
      hist,
      list.map((r, i) =>
        h(
          'li',
          {},
          h(
            'button.link',
            { onclick: () => clear(out, resultView(r.result)) },
            outcomeBadge(r.result.outcome),
            ` ${fmtTime(r.at)} · ${fmtMs(r.result.duration_ms)}`,
            i === 0 ? h('span.muted', {}, ' (latest)') : null,
          ),
        ),
      ),
    );
  const runBtn = h(
    'button.primary',
    {
      dataset: { action: 'run' },
      onclick: async () => {
        let p;
        try {
          p = JSON.parse(payload.value);
        } catch (e) {
          return clear(out, h('div.banner.error', {}, `The payload is not JSON: ${e.message}`));
        }
        const sec = {};
        for (const line of secrets.value.split('\n')) {
          const i = line.indexOf('=');
          if (i > 0) sec[line.slice(0, i).trim()] = line.slice(i + 1);
        }
        runBtn.disabled = true;
        clear(out, h('p.muted', {}, 'Running…'));
        try {
          const result = await api.testRun({
            triggerId: hook.triggerId,
            script: script(),
            payload: p,
            secrets: sec,
            name: hook.name.replace(/[^A-Za-z0-9_-]+/g, '-'),
          });
          onLoadError(null); // it loaded: problems of an earlier attempt no longer apply
          list.unshift({ at: Date.now(), result });
          list.splice(20);
          drawHistory();
          clear(out, resultView(result));
        } catch (e) {
          if (e.status === 400) onLoadError(e.message);
          clear(
            out,
            h('div.banner.error', {}, api.isMissingRoute(e) ? 'skipped: the Runner (POST /api/hookgate/hooks/test) is not mounted on this hookgate' : e.message),
          );
        } finally {
          runBtn.disabled = false;
        }
      },
    },
    '▶ Run',
  );
  clear(
    panel,
    h('p.small.muted', {}, 'Runs the code in the editor with this payload. It never saves: the file and the hook serving requests stay as they are.'),
    h(
      'div.row',
      {},
      h('h4', {}, 'Payload'),
      h('div.spacer'),
      h(
        'button.link.small',
        {
          onclick: () => {
            payload.value = defaults;
            localStorage.removeItem(payloadKey(hook.id));
          },
        },
        'Reset to default',
      ),
    ),
    payload,
    h('details', {}, h('summary.small', {}, 'Secrets for this run'), secrets),
    h('div.row', {}, runBtn, h('span.muted.small', {}, 'arguments: ', trig.args.map((a) => a.name).join(', '))),
    out,
    h('h4', {}, 'History'),
    hist,
  );
  drawHistory();
  if (list[0]) clear(out, resultView(list[0].result));
}

// ---- Settings: name, order, targeting, timeout, on_error ----
function settingsTab(panel, hook, changed) {
  const list = (v) => (v || []).join(', ');
  const f = {
    name: h('input', { name: 'name', value: hook.name }),
    order: h('input', { name: 'order', type: 'number', value: String(hook.order) }),
    clients: h('input', { name: 'clients', value: list(hook.clients), placeholder: 'all clients' }),
    routes: h('input', { name: 'routes', value: list(hook.routes), placeholder: 'all routes of the point' }),
    timeoutMs: h('input', { name: 'timeout_ms', type: 'number', min: '1', value: hook.timeoutMs ? String(hook.timeoutMs) : '', placeholder: 'default ([hooks] timeout_ms)' }),
    onError: h('select', { name: 'on_error' }, ['deny', 'allow'].map((o) => h('option', { value: o, selected: o === hook.onError }, o))),
  };
  const split = (s) => {
    const items = s.split(',').map((x) => x.trim()).filter(Boolean);
    return items.length ? items : null;
  };
  const form = h(
    'form.settings',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        const patch = {
          order: Number(f.order.value),
          clients: split(f.clients.value),
          routes: split(f.routes.value),
          timeoutMs: f.timeoutMs.value ? Number(f.timeoutMs.value) : null,
          onError: f.onError.value,
        };
        if (f.name.value.trim() !== hook.name) patch.name = f.name.value.trim();
        try {
          const next = await api.updateHook(hook.id, patch);
          changed(next);
          toast('Settings saved');
          refreshGeneration();
        } catch (err) {
          toast(`Not saved: ${err.message}`, 'error');
        }
      },
    },
    h('label', {}, h('span', {}, 'Name'), f.name),
    h('label', {}, h('span', {}, 'Order'), f.order, h('small', {}, 'lower runs first')),
    h('label', {}, h('span', {}, 'Clients'), f.clients, h('small', {}, 'client ids, comma-separated; empty: every client')),
    h('label', {}, h('span', {}, 'Routes'), f.routes, h('small', {}, 'route names; empty: every route of the point')),
    h('label', {}, h('span', {}, 'Timeout (ms)'), f.timeoutMs),
    h('label', {}, h('span', {}, 'On error'), f.onError, h('small', {}, 'a timeout or crash: deny the request, or allow it as if the hook had not run')),
    h('div.row', {}, h('button.primary', { type: 'submit' }, 'Save settings')),
  );
  clear(
    panel,
    form,
    h(
      'div.danger-zone',
      {},
      h('h4', {}, 'Delete this hook'),
      h('p.small.muted', {}, 'Deletes the file, its entry and its stored secrets.'),
      h(
        'button.danger',
        {
          onclick: async () => {
            if (await remove(hook)) location.hash = '#/hooks';
          },
        },
        'Delete…',
      ),
    ),
  );
}

// ---- Secrets: names listed, values write-only ----
async function secretsTab(panel, hook) {
  const body = h('div');
  clear(panel, h('p.small.muted', {}, 'Values are write-only: hookgate never sends them back. Hooks read them as ', h('code', {}, 'context.webtask.secrets.NAME'), '.'), body);
  const draw = async () => {
    let names;
    try {
      names = await api.secretNames(hook.id);
    } catch (e) {
      return clear(body, h('div.banner.error', {}, e.message));
    }
    const name = h('input', { name: 'secret-name', placeholder: 'NAME', pattern: '^[A-Za-z0-9_-]+$', required: true });
    const value = h('input', { name: 'secret-value', type: 'password', placeholder: 'value', autocomplete: 'new-password', required: true });
    clear(
      body,
      names.length
        ? h(
            'table.secrets',
            {},
            h(
              'tbody',
              {},
              names.map((n) => {
                const v = h('input', { type: 'password', placeholder: 'new value', autocomplete: 'new-password' });
                return h(
                  'tr',
                  {},
                  h('td.mono', {}, n),
                  h('td.muted', {}, '••••••'),
                  h('td', {}, v),
                  h(
                    'td.actions',
                    {},
                    h(
                      'button.small',
                      {
                        onclick: async () => {
                          if (!v.value) return v.focus();
                          try {
                            await api.changeSecret(hook.id, n, v.value);
                            toast(`${n} changed`);
                            draw();
                          } catch (e) {
                            toast(e.message, 'error');
                          }
                        },
                      },
                      'Change',
                    ),
                    h(
                      'button.link.danger',
                      {
                        onclick: async () => {
                          if (!(await confirmDialog(`Delete secret ${n}?`, `${hook.name} will no longer see context.webtask.secrets.${n}.`))) return;
                          try {
                            await api.deleteSecret(hook.id, n);
                            toast(`${n} deleted`);
                            draw();
                          } catch (e) {
                            toast(e.message, 'error');
                          }
                        },
                      },
                      'Delete',
                    ),
                  ),
                );
              }),
            ),
          )
        : h('p.empty', {}, 'No secret.'),
      h(
        'form.row.add-secret',
        {
          onsubmit: async (e) => {
            e.preventDefault();
            try {
              await api.addSecret(hook.id, name.value.trim(), value.value);
              toast(`${name.value.trim()} added`);
              draw();
            } catch (err) {
              toast(err.message, 'error');
            }
          },
        },
        name,
        value,
        h('button.primary', { type: 'submit' }, 'Add'),
      ),
    );
  };
  draw();
}

// ---- Runs: this hook's recent run records ----
async function runsTab(panel, hook) {
  clear(panel, h('p.muted', {}, 'Loading…'));
  let records;
  try {
    records = await api.runs({ hook: hook.id, limit: 50 });
  } catch (e) {
    return clear(panel, h('p.muted', {}, api.isMissingRoute(e) ? 'skipped: runs API not mounted' : e.message));
  }
  clear(
    panel,
    records.length
      ? h(
          'table.runs',
          {},
          h(
            'tbody',
            {},
            records.map((r) =>
              h(
                'tr.clickable',
                { onclick: () => showRecord(r) },
                h('td.mono.small', {}, fmtTime(r.start)),
                h('td', {}, outcomeBadge(r.outcome)),
                h('td.num', {}, fmtMs(r.duration_ms)),
                h('td.small.ellipsis', {}, r.error ? `${r.error.class}: ${r.error.message}` : r.console?.[0]?.message || ''),
              ),
            ),
          ),
        )
      : h('p.empty', {}, 'No run recorded yet.'),
    h('p', {}, h('a', { href: '#/logs' }, 'Live logs →')),
  );
}
