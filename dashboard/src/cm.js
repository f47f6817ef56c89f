// The code editor: CodeMirror 6 with JavaScript highlighting, completion of the hook's arguments
// and the trigger's globals, and the problems of the last failed save or reload shown at their
// line. Completion is a small hand-written source over facts extracted at build time from
// types/*.d.ts (dashboard/build.mjs), not a TypeScript worker: the same declarations a team's
// VS Code reads, at a few KB instead of a few MB.

import { EditorState, Compartment } from '@codemirror/state';
import {
  EditorView,
  keymap,
  lineNumbers,
  highlightActiveLine,
  highlightActiveLineGutter,
  drawSelection,
  highlightSpecialChars,
} from '@codemirror/view';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { syntaxHighlighting, defaultHighlightStyle, bracketMatching, indentOnInput, foldGutter } from '@codemirror/language';
import { javascript } from '@codemirror/lang-javascript';
import { autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap } from '@codemirror/autocomplete';
import { lintGutter, setDiagnostics } from '@codemirror/lint';
import { searchKeymap, highlightSelectionMatches } from '@codemirror/search';

/* global __HOOK_FACTS__ */
export const FACTS = __HOOK_FACTS__;

const COMMON = [
  { label: 'console', type: 'variable', detail: 'log, info, warn, error → the run record' },
  { label: 'module', type: 'variable', detail: 'module.exports = function (...) {}' },
  { label: 'require', type: 'function', detail: "require('axios@0.19.2')" },
  { label: 'JSON', type: 'variable' },
  { label: 'Promise', type: 'class' },
  { label: 'Buffer', type: 'class' },
  { label: 'fetch', type: 'function' },
];

/** The hook function's own parameter names (a hook may call them anything), by position. */
function paramNames(doc) {
  const m = doc.match(/module\.exports\s*=\s*(?:async\s+)?function\s*\w*\s*\(([^)]*)\)/);
  return m ? m[1].split(',').map((s) => s.trim()) : [];
}

/** A type expression → the interface it names (after `| undefined`, `?`), or null. */
function named(types, type) {
  const t = String(type)
    .split('|')
    .map((s) => s.trim())
    .find((s) => s !== 'undefined' && s !== 'null');
  return t && types[t] ? types[t] : null;
}

function completionSource(triggerId) {
  const trig = FACTS.triggers[triggerId];
  return (ctx) => {
    const word = ctx.matchBefore(/[\w$]+(?:\s*\.\s*[\w$]*)*|\.\s*[\w$]*/);
    if (!word) return ctx.explicit ? { from: ctx.pos, options: globals(trig, ctx.state.doc.toString()) } : null;
    const parts = word.text.split('.').map((s) => s.trim());
    if (parts.length === 1) {
      if (word.from === word.to && !ctx.explicit) return null;
      return { from: word.from, options: globals(trig, ctx.state.doc.toString()), validFor: /^[\w$]*$/ };
    }
    // a.b.c| : walk from the argument a names (by its position in the hook's signature).
    const params = paramNames(ctx.state.doc.toString());
    const pos = params.indexOf(parts[0]);
    const arg = pos >= 0 ? trig.args[pos] : trig.args.find((a) => a.name === parts[0]);
    if (!arg) return null;
    let iface = named(trig.types, arg.type);
    for (const p of parts.slice(1, -1)) {
      const m = iface && iface.members.find((x) => x.name === p);
      iface = m ? named(trig.types, m.type) : null;
      if (!iface) return null;
    }
    if (!iface) return null;
    const last = parts[parts.length - 1];
    return {
      from: word.to - last.length,
      validFor: /^[\w$]*$/,
      options: iface.members.map((m) => ({
        label: m.name,
        type: named(trig.types, m.type) ? 'namespace' : 'property',
        detail: m.type,
        info: m.doc || undefined,
      })),
    };
  };
}

function globals(trig, doc) {
  const params = paramNames(doc);
  const args = trig.args.map((a, i) => ({
    label: params[i] || a.name,
    type: 'variable',
    detail: a.type,
    info: `argument ${i + 1} of ${trig.namespace}.Hook`,
    boost: 2,
  }));
  return [...args, ...FACTS.globals.map((g) => ({ ...g, boost: 1 })), ...COMMON];
}

const theme = EditorView.theme({
  '&': { height: '100%', fontSize: '13px', background: '#fff' },
  '&.cm-focused': { outline: 'none' },
  '.cm-scroller': { fontFamily: 'var(--mono)', lineHeight: '1.55' },
  '.cm-gutters': { background: 'var(--code-gutter)', border: 'none', color: 'var(--muted)' },
  '.cm-activeLine': { background: 'var(--code-active)' },
  '.cm-activeLineGutter': { background: 'var(--code-active)' },
  '.cm-tooltip-autocomplete ul li[aria-selected]': { background: 'var(--accent)' },
});

/**
 * A hook editor. `onChange(text)` on every edit; `problems([{line, col, message}])` marks lines.
 */
export function createEditor(host, { doc, triggerId, onChange, onSave }) {
  const lint = new Compartment();
  // In a shadow root: CodeMirror then installs its styles as constructed stylesheets, which the
  // page's CSP (style-src 'self', no 'unsafe-inline') allows; in the document it would add
  // <style> elements, which that CSP refuses. CSS variables (the page's colours) still reach it.
  const root = host.attachShadow({ mode: 'open' });
  const view = new EditorView({
    parent: root,
    root,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        foldGutter(),
        highlightSpecialChars(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        highlightActiveLine(),
        highlightActiveLineGutter(),
        highlightSelectionMatches(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        javascript(),
        autocompletion({ override: [completionSource(triggerId)], activateOnTyping: true }),
        lint.of(lintGutter()),
        keymap.of([
          { key: 'Mod-s', preventDefault: true, run: () => (onSave(), true) },
          ...closeBracketsKeymap,
          ...defaultKeymap,
          ...searchKeymap,
          ...historyKeymap,
          ...completionKeymap,
          indentWithTab,
        ]),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) onChange(u.state.doc.toString());
        }),
        theme,
      ],
    }),
  });
  return {
    view,
    get text() {
      return view.state.doc.toString();
    },
    setText(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    problems(list) {
      const doc = view.state.doc;
      const diagnostics = list
        .filter((p) => p.line > 0)
        .map((p) => {
          const line = doc.line(Math.min(Math.max(p.line, 1), doc.lines));
          const from = Math.min(line.from + Math.max((p.col || 1) - 1, 0), line.to);
          return { from, to: Math.max(from, line.to), severity: 'error', message: p.message, source: p.file || 'hookgate' };
        });
      view.dispatch(setDiagnostics(view.state, diagnostics));
    },
    focus() {
      view.focus();
    },
  };
}
