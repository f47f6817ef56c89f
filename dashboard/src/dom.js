// Small DOM helpers. Everything is built with elements and text nodes (never innerHTML with data),
// so a hook name, a console line or an error message is always text, never markup; and no inline
// style attributes, which the page's CSP (style-src 'self') would refuse.

export function h(tag, props, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'class') el.className += ` ${v}`;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && k !== 'list' && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const toasts = () => document.getElementById('toasts');
export function toast(message, kind = 'info') {
  const t = h(`div.toast.${kind}`, { role: kind === 'error' ? 'alert' : 'status' }, message);
  toasts().append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 3500);
}

/** A modal confirmation; resolves true when confirmed. */
export function confirmDialog(title, text, confirmLabel = 'Delete') {
  return new Promise((resolve) => {
    const dlg = h(
      'dialog.confirm',
      {},
      h('h3', {}, title),
      h('p', {}, text),
      h(
        'div.row.end',
        {},
        h('button', { type: 'button', onclick: () => dlg.close('no') }, 'Cancel'),
        h('button.danger', { type: 'button', onclick: () => dlg.close('yes') }, confirmLabel),
      ),
    );
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'yes');
      dlg.remove();
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** A modal with a form; resolves with the form's values or null. */
export function formDialog(title, fields, submitLabel = 'Create') {
  return new Promise((resolve) => {
    const inputs = fields.map((f) =>
      f.options
        ? h('select', { name: f.name }, f.options.map((o) => h('option', { value: o, selected: o === f.value }, o)))
        : h('input', { name: f.name, value: f.value || '', placeholder: f.placeholder || '', required: true, pattern: f.pattern }),
    );
    const form = h(
      'form',
      { method: 'dialog' },
      h('h3', {}, title),
      fields.map((f, i) => h('label', {}, h('span', {}, f.label), inputs[i], f.hint ? h('small', {}, f.hint) : null)),
      h(
        'div.row.end',
        {},
        h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'),
        h('button.primary', { type: 'submit', value: 'ok' }, submitLabel),
      ),
    );
    const dlg = h('dialog', {}, form);
    dlg.addEventListener('close', () => {
      const ok = dlg.returnValue === 'ok';
      resolve(ok ? Object.fromEntries(fields.map((f, i) => [f.name, inputs[i].value.trim()])) : null);
      dlg.remove();
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

export const fmtMs = (ms) =>
  ms === null || ms === undefined || Number.isNaN(ms) ? '—' : ms < 10 ? `${ms.toFixed(1)} ms` : ms < 10000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;

export function fmtTime(value) {
  if (value === null || value === undefined) return '—';
  const d = typeof value === 'number' ? new Date(value) : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const today = new Date().toDateString() === d.toDateString();
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  return today ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

export function ago(unixSeconds) {
  if (!unixSeconds) return 'never';
  const s = Math.max(0, Math.round(Date.now() / 1000 - unixSeconds));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export const outcomeBadge = (outcome) => h(`span.badge.o-${outcome || 'none'}`, {}, outcome || 'no runs');

/** Problems like `…/hooks/credentials-exchange/x.js:3:7: SyntaxError: …` (several joined by `; `
 * or newlines) → [{file, line, col, message}]. */
export function parseProblems(texts) {
  const out = [];
  for (const text of [].concat(texts || [])) {
    for (const part of String(text).split(/;\s+(?=\S+\.js:\d)|\n\s*/)) {
      const m = part.match(/([^\s:;]*\.js):(\d+)(?::(\d+))?:?\s*(.*)$/);
      if (m) out.push({ file: m[1], line: Number(m[2]), col: m[3] ? Number(m[3]) : 1, message: m[4] || part, text: part.trim() });
      else if (part.trim()) out.push({ file: '', line: 0, col: 0, message: part.trim(), text: part.trim() });
    }
  }
  return out;
}

export function download(name, data) {
  const blob = new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' });
  const a = h('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  setTimeout(() => {
    URL.revokeObjectURL(a.href);
    a.remove();
  }, 0);
}

export const TRIGGERS = [
  ['credentials-exchange', 'Credentials exchange', 'POST /oauth/token, client credentials · blocking'],
  ['pre-user-registration', 'Pre user registration', 'signup · blocking'],
  ['post-user-registration', 'Post user registration', 'after signup · outbox'],
  ['post-change-password', 'Post change password', 'after a password change · outbox'],
  ['send-phone-message', 'Send phone message', 'MFA SMS/voice webhook · blocking'],
];

/** p-quantile of numbers (nearest rank). */
export function quantile(values, p) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
}
