// Builds the dashboard into ../src/admin/dashboard/ (committed; src/admin/dashboard.rs embeds it):
//   index.html.gz, app.js.gz, app.css.gz  — minified, gzipped (hookgate serves them as they are to
//   browsers that accept gzip, which all do, and inflates them for the rest).
// Two inputs besides src/: ../types/*.d.ts (the hook arguments; parsed here into the facts the
// editor's completion reads, so the editor and a team's VS Code read the same declarations) and
// ../src/hooks/starters/*.js (Auth0's starter code, which the Rust side embeds too).
//
//   npm ci && node build.mjs          (from dashboard/)
//   node build.mjs --check            builds in memory and exits 1 if the committed files differ
//                                     (tests/dashboard_e2e.rs runs it: sources and bundle in step)
import { build } from 'esbuild';
import { readFileSync, writeFileSync, mkdirSync, readdirSync, existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const out = join(root, 'src', 'admin', 'dashboard');
const TRIGGERS = [
  ['credentials-exchange', 'CredentialsExchange'],
  ['pre-user-registration', 'PreUserRegistration'],
  ['post-user-registration', 'PostUserRegistration'],
  ['post-change-password', 'PostChangePassword'],
  ['send-phone-message', 'SendPhoneMessage'],
];

// ---- the .d.ts facts -------------------------------------------------------------------------
// The declarations are written one member a line with its `/** doc */` above it (types/common.d.ts
// says so); this reads exactly that style: interfaces' members, `type Hook = (a: T, ...) => void`,
// and global `declare class` / `declare function` / `declare var`.
function docBefore(lines, i) {
  const l = (lines[i - 1] || '').trim();
  const m = l.match(/^\/\*\*\s*(.*?)\s*\*\/$/);
  return m ? m[1] : '';
}

function parseInterfaces(text) {
  const lines = text.split('\n');
  const types = {};
  let current = null;
  let depth = 0;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const start = line.match(/^interface (\w+)\s*\{$/);
    if (start) {
      current = { name: start[1], doc: docBefore(lines, i), members: [] };
      depth = 1;
      return;
    }
    if (!current) return;
    if (depth === 1) {
      const m = line.match(/^(\w+)(\??):\s*(.+);$/);
      if (m) current.members.push({ name: m[1], optional: m[2] === '?', type: m[3], doc: docBefore(lines, i) });
    }
    depth += (line.match(/\{/g) || []).length - (line.match(/\}/g) || []).length;
    if (depth === 0) {
      types[current.name] = current;
      current = null;
    }
  });
  return types;
}

function splitParams(list) {
  // Split `a: T, b: string[] | undefined` at top-level commas.
  const params = [];
  let depth = 0;
  let cur = '';
  for (const ch of list) {
    if ('<({['.includes(ch)) depth++;
    if ('>)}]'.includes(ch)) depth--;
    if (ch === ',' && depth === 0) {
      params.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) params.push(cur);
  return params.map((p) => {
    const [name, ...type] = p.split(':');
    return { name: name.trim(), type: type.join(':').trim() };
  });
}

// The Runner's default payloads, from src/hooks/contract.rs (`default_payload`): each `json!({...})`
// there is JSON but for trailing commas and the `connection_context` variable. Read from the Rust
// so the dashboard shows exactly what `hookgate test` and the API's Runner default to.
const RUST_NAMES = {
  'credentials-exchange': 'CredentialsExchange',
  'pre-user-registration': 'PreUserRegistration',
  'post-user-registration': 'PostUserRegistration',
  'post-change-password': 'PostChangePassword',
  'send-phone-message': 'SendPhoneMessage',
};
function jsonAfter(text, at) {
  const start = text.indexOf('{', at);
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === '{') depth++;
    if (text[i] === '}' && --depth === 0) return text.slice(start, i + 1);
  }
  throw new Error('unbalanced json! in contract.rs');
}
function defaultPayloads() {
  const rust = readFileSync(join(root, 'src', 'hooks', 'contract.rs'), 'utf8');
  const body = rust.slice(rust.indexOf('pub fn default_payload'));
  const conn = jsonAfter(body, body.indexOf('let connection_context = json!('));
  const out = {};
  for (const [id, variant] of Object.entries(RUST_NAMES)) {
    const at = body.indexOf(`Trigger::${variant} => json!(`);
    if (at < 0) throw new Error(`contract.rs: no default payload for ${variant}`);
    const text = jsonAfter(body, at)
      .replace(/"context":\s*connection_context/, `"context": ${conn}`)
      .replace(/,(\s*[}\]])/g, '$1');
    out[id] = JSON.parse(text);
  }
  return out;
}

function facts() {
  const types = join(root, 'types');
  const common = readFileSync(join(types, 'common.d.ts'), 'utf8');
  const commonLines = common.split('\n');
  const globals = [];
  commonLines.forEach((raw, i) => {
    let m = raw.match(/^declare class (\w+) extends \w+ \{/);
    if (m) {
      const ctor = (commonLines[i + 1] || '').trim().match(/^constructor\((.*)\);$/);
      globals.push({ label: m[1], type: 'class', detail: `new ${m[1]}(${ctor ? ctor[1] : ''})`, info: docBefore(commonLines, i) });
    }
    m = raw.match(/^declare (?:var|function) (\w+)(.*);$/);
    if (m) globals.push({ label: m[1], type: raw.includes('function') ? 'function' : 'variable', detail: m[2].replace(/^:\s*/, ''), info: docBefore(commonLines, i) });
  });
  const shared = parseInterfaces(common);
  const payloads = defaultPayloads();
  const triggers = {};
  for (const [id, ns] of TRIGGERS) {
    const text = readFileSync(join(types, `${id}.d.ts`), 'utf8');
    const hook = text.match(/type Hook = \((.*)\) => void;/);
    if (!hook) throw new Error(`types/${id}.d.ts: no \`type Hook = (...) => void;\``);
    triggers[id] = {
      namespace: ns,
      args: splitParams(hook[1]),
      types: { ...shared, ...parseInterfaces(text) },
      payload: payloads[id],
      starter: readFileSync(join(root, 'src', 'hooks', 'starters', `${id}.js`), 'utf8'),
    };
  }
  return { globals, triggers };
}

// ---- bundle ----------------------------------------------------------------------------------
mkdirSync(out, { recursive: true });
const data = facts();
const js = await build({
  entryPoints: [join(here, 'src', 'main.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  write: false,
  legalComments: 'none',
  define: { __HOOK_FACTS__: JSON.stringify(data) },
});
const css = await build({
  entryPoints: [join(here, 'src', 'app.css')],
  bundle: true,
  minify: true,
  write: false,
  loader: { '.css': 'css' },
});
const html = readFileSync(join(here, 'src', 'index.html'), 'utf8').replace(/\n\s*/g, '\n');

const check = process.argv.includes('--check');
const stale = [];
const sizes = {};
for (const [name, body] of [
  ['index.html', Buffer.from(html)],
  ['app.js', Buffer.from(js.outputFiles[0].contents)],
  ['app.css', Buffer.from(css.outputFiles[0].contents)],
]) {
  // mtime 0 in the gzip header: the same sources give the same bytes (no churn in git).
  const gz = gzipSync(body, { level: 9 });
  gz.writeUInt32LE(0, 4);
  const file = join(out, `${name}.gz`);
  if (check) {
    if (!existsSync(file) || !readFileSync(file).equals(gz)) stale.push(`src/admin/dashboard/${name}.gz`);
  } else writeFileSync(file, gz);
  sizes[name] = { raw: body.length, gzip: gz.length };
}
for (const f of readdirSync(out)) if (!f.endsWith('.gz')) throw new Error(`unexpected ${f} in ${out}`);
console.log(JSON.stringify(sizes));
if (stale.length) {
  console.error(`not built from the current sources: ${stale.join(', ')} (run: cd dashboard && npm ci && node build.mjs)`);
  process.exit(1);
}
