// The dashboard's shell: sign-in, the top bar (pages, the generation in force), and hash routing
// (`#/hooks`, `#/hooks/<id>`, `#/logs`, `#/outbox`, `#/status`). Pages live in pages/; every API
// call goes through api.js.

import * as api from './api.js';
import { h, clear, toast } from './dom.js';
import { hooksPage } from './pages/hooks.js';
import { hookPage } from './pages/hook.js';
import { logsPage } from './pages/logs.js';
import { outboxPage } from './pages/outbox.js';
import { statusPage } from './pages/status.js';
import { genBadge, refreshGeneration } from './gen.js';
import { mayLeave, clearGuard } from './nav.js';

const app = document.getElementById('app');
let cleanup = null;
// While the sign-in form checks a token, its 401 is the form's to show (not a sign-out).
let signingIn = false;

function signIn(message) {
  cleanup?.();
  cleanup = null;
  const input = h('input', {
    type: 'password',
    name: 'token',
    autocomplete: 'off',
    placeholder: 'admin token',
    required: true,
    autofocus: true,
  });
  const error = h('p.error', { role: 'alert' }, message || '');
  const form = h(
    'form.signin',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        api.auth.set(input.value.trim());
        signingIn = true;
        try {
          await api.status();
          signingIn = false;
          route();
        } catch (err) {
          signingIn = false;
          api.auth.clear();
          error.textContent =
            err.status === 401 ? 'That token is not one of [[admin.token]].' : err.status === 403 ? `This token cannot read hooks: ${err.message}` : err.message;
        }
      },
    },
    h('div.brand.big', {}, 'hookgate'),
    h('p.muted', {}, 'Sign in with a management API token from ', h('code', {}, '[[admin.token]]'), '.'),
    input,
    h('button.primary', { type: 'submit' }, 'Sign in'),
    error,
    h(
      'p.small.muted',
      {},
      'The token stays in this tab (sessionStorage) and is sent as a bearer header, never in a URL.',
    ),
  );
  clear(app, h('main.center', {}, form));
  input.focus();
}

function shell(active) {
  const link = (href, label) => h('a', { href, class: active === href ? 'active' : '' }, label);
  return h(
    'header.top',
    {},
    h('a.brand', { href: '#/hooks' }, 'hookgate'),
    h('nav', {}, link('#/hooks', 'Hooks'), link('#/logs', 'Live logs'), link('#/outbox', 'Outbox'), link('#/status', 'Status')),
    h('div.spacer'),
    genBadge,
    h(
      'button.link',
      {
        onclick: () => {
          api.auth.clear();
          signIn('Signed out.');
        },
      },
      'Sign out',
    ),
  );
}

// The hash shown, to go back to when leaving is cancelled.
let shownHash = null;

async function route() {
  if (!api.auth.token) return signIn();
  if (location.hash !== shownHash && !mayLeave()) {
    history.replaceState(null, '', shownHash);
    return;
  }
  clearGuard();
  shownHash = location.hash;
  // A record drawer or a dialog belongs to the page it was opened on.
  document.querySelectorAll('aside.drawer, dialog').forEach((el) => el.remove());
  cleanup?.();
  cleanup = null;
  const hash = location.hash || '#/hooks';
  const [, page, id] = hash.match(/^#\/([\w-]+)(?:\/(.+))?/) || [null, 'hooks'];
  const main = h('main');
  const active = `#/${page}`;
  clear(app, shell(active), main);
  refreshGeneration();
  const pages = {
    hooks: () => (id ? hookPage(main, decodeURIComponent(id)) : hooksPage(main)),
    logs: () => logsPage(main),
    outbox: () => outboxPage(main),
    status: () => statusPage(main),
  };
  try {
    cleanup = (await (pages[page] || pages.hooks)()) || null;
    performance.mark('hookgate:page-ready');
  } catch (e) {
    if (e.status === 401) return;
    clear(main, h('div.banner.error', {}, `Could not load this page: ${e.message}`));
  }
}

api.whenUnauthorized(() => {
  if (signingIn) return;
  api.auth.clear();
  signIn('Your token was refused (401). Sign in again.');
});
window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (e) => toast(String(e.reason?.message || e.reason), 'error'));
route();
