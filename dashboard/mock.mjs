// A stand-in management API with made-up data, for working on the page without a hookgate:
//   node build.mjs && node mock.mjs [port]     then open http://127.0.0.1:<port>/dashboard/ (token: dev)
// It serves the built files from ../src/admin/dashboard/ and answers the routes api.js calls, in
// the shapes hookgate answers them (kept loosely in step by hand; the real check is
// tests/dashboard_e2e.rs). Not used by hookgate or its tests.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'admin', 'dashboard');
const port = Number(process.argv[2] || 8099);
let generation = 7;
let nextRun = 1;
const now = () => Math.floor(Date.now() / 1000);
const hooks = [
  { id: 'hk-1', name: 'add-claims', triggerId: 'credentials-exchange', enabled: true, order: 10, clients: null, routes: ['token'], timeout_ms: 2000, on_error: 'deny', secrets: ['API_KEY'], script: "module.exports = function (client, scope, audience, context, cb) {\n  var access_token = { scope: scope };\n  access_token['https://hookgate.example/tier'] = client.metadata.tier || 'free';\n  cb(null, access_token);\n};\n" },
  { id: 'hk-2', name: 'trim-scopes', triggerId: 'credentials-exchange', enabled: false, order: 20, clients: ['m2m-post'], routes: null, timeout_ms: null, on_error: 'allow', secrets: [], script: 'module.exports = function (client, scope, audience, context, cb) { cb(null, { scope: scope }); };\n' },
  { id: 'hk-3', name: 'add-metadata', triggerId: 'pre-user-registration', enabled: true, order: 0, clients: null, routes: null, timeout_ms: null, on_error: 'deny', secrets: [], script: 'module.exports = function (user, context, cb) { cb(null, { user: {} }); };\n' },
  { id: 'hk-4', name: 'notify', triggerId: 'post-user-registration', enabled: true, order: 0, clients: null, routes: null, timeout_ms: 5000, on_error: 'deny', secrets: ['NOTIFY_URL'], script: 'module.exports = function (user, context, cb) { cb(); };\n' },
  { id: 'hk-5', name: 'send-sms', triggerId: 'send-phone-message', enabled: true, order: 0, clients: null, routes: null, timeout_ms: null, on_error: 'deny', secrets: ['SMS_API_URL', 'SMS_API_KEY'], script: 'module.exports = function (recipient, text, context, cb) { cb(null, {}); };\n' },
];
const runs = [];
function record(h, outcome = Math.random() < 0.85 ? 'ok' : 'error') {
  const r = {
    id: nextRun++, hook_id: h.id, hook: `${h.triggerId}/${h.name}`, point: h.triggerId, route: 'token',
    request_id: `req-${Math.random().toString(16).slice(2, 10)}`, event_id: null, client_id: 'm2m-post',
    start: new Date().toISOString(), duration_ms: 0.4 + Math.random() * 6, ran_ms: 1, cpu_ms: 0.3, outcome,
    error: outcome === 'error' ? { class: 'Error', message: 'upstream CRM answered 503' } : null,
    console: [{ level: 'info', at_ms: 0.2, message: `ran for m2m-post` }], console_truncated: false,
    requests: [{ method: 'GET', url: 'https://crm.example/api?key=REDACTED', host: 'crm.example', status: outcome === 'ok' ? 200 : 503, error: null, duration_ms: 3.1 }],
    requests_omitted: 0, generation,
  };
  runs.unshift(r);
  runs.splice(1000);
  return r;
}
for (let i = 0; i < 40; i++) record(hooks[i % 3 === 0 ? 2 : 0]);
const outbox = [
  { seq: 41, state: 'dead', due_ms: null, event: { id: 'ev-8f2c', trigger: 'post-user-registration', route: 'signup', client_id: 'spa', args: [], created_ms: Date.now() - 3600e3, attempts: 10, done_hooks: [], last_error: 'post-user-registration/notify: Error: notify answered 503' } },
  { seq: 57, state: 'pending', due_ms: Date.now() + 8000, event: { id: 'ev-91aa', trigger: 'post-change-password', route: 'change-password', client_id: null, args: [], created_ms: Date.now() - 20e3, attempts: 2, done_hooks: [], last_error: 'post-change-password/notify: timed out after 5000 ms' } },
];
const subscribers = new Set();
setInterval(() => {
  const r = record(hooks[Math.random() < 0.5 ? 0 : 2]);
  for (const s of subscribers) s.write(`id: ${r.id}\nevent: run\ndata: ${JSON.stringify(r)}\n\n`);
}, 1500);

const send = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body === undefined ? '' : JSON.stringify(body));
};
const readBody = (req) => new Promise((r) => { let b = ''; req.on('data', (c) => (b += c)); req.on('end', () => r(b ? JSON.parse(b) : null)); });
const native = (h) => ({ ...h, file: `/srv/hookgate/hooks/${h.triggerId}/${h.name}.js`, kind: 'hook', dependencies: {}, dependency_problems: [], reload_problems: [] });

createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  const files = { '/dashboard/': ['index.html', 'text/html'], '/dashboard/app.js': ['app.js', 'text/javascript'], '/dashboard/app.css': ['app.css', 'text/css'] };
  if (files[p]) {
    res.writeHead(200, { 'content-type': files[p][1], 'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" });
    return res.end(gunzipSync(readFileSync(join(dist, `${files[p][0]}.gz`))));
  }
  if (req.headers.authorization !== 'Bearer dev') return send(res, 401, { statusCode: 401, error: 'Unauthorized', message: 'Invalid token', errorCode: 'invalid_token' });
  const body = ['POST', 'PATCH', 'DELETE'].includes(req.method) ? await readBody(req) : null;
  let m;
  if (p === '/api/hookgate/status') return send(res, 200, { config: '/srv/hookgate/hookgate.toml', hooks_dir: '/srv/hookgate/hooks', reload: { generation, hooks: hooks.length, successes: generation - 1, failures: 1, last_success_unix: now() - 300, last_error: { at_unix: now() - 900, problems: ['/srv/hookgate/hooks/credentials-exchange/add-claims.js:3:44: SyntaxError: unexpected token in expression'], note: '' }, restart_required: false }, upstream: { address: '127.0.0.1:3000', reachable: true }, outbox: { open: true, path: '/srv/hookgate/hookgate-outbox.redb' } });
  if (p === '/api/hookgate/hooks' && req.method === 'GET') return send(res, 200, hooks.map(native));
  if (p === '/api/hookgate/hooks/order') {
    body.ids.forEach((id, i) => (hooks.find((h) => h.id === id).order = i * 10));
    generation++;
    return send(res, 200, hooks.map(native));
  }
  if (p === '/api/hookgate/hooks/test') {
    if (/=\s*;/.test(body.script)) return send(res, 400, { statusCode: 400, error: 'Bad Request', message: 'runner.js:3:46: SyntaxError: unexpected token' });
    return send(res, 200, { outcome: 'ok', response: { scope: ['read:users'], 'https://hookgate.example/tier': 'free' }, console: [{ level: 'info', at_ms: 0.3, message: 'tier of Test Application: free' }], console_truncated: false, requests: [], requests_omitted: 0, duration_ms: 1.8, ran_ms: 2.1, cpu_ms: 0.9 });
  }
  if ((m = p.match(/^\/api\/hookgate\/hooks\/([^/]+)$/))) {
    const h = hooks.find((x) => x.id === m[1]);
    if (!h) return send(res, 404, { statusCode: 404, error: 'Not Found', message: 'The hook does not exist.', errorCode: 'inexistent_hook' });
    if (req.method === 'PATCH') {
      if (body.script && /=\s*;/.test(body.script)) {
        const line = body.script.split('\n').findIndex((l) => /=\s*;/.test(l)) + 1;
        return send(res, 400, { statusCode: 400, error: 'Bad Request', message: `/srv/hookgate/hooks/${h.triggerId}/${h.name}.js:${line}:46: SyntaxError: unexpected token in expression: ';'`, errorCode: 'invalid_body' });
      }
      for (const [k, v] of Object.entries(body)) h[k] = v;
      generation++;
    }
    return send(res, 200, native(h));
  }
  if (p === '/api/v2/hooks' && req.method === 'POST') {
    const h = { id: `hk-${hooks.length + 1}`, order: 100, clients: null, routes: null, timeout_ms: null, on_error: 'deny', secrets: [], ...body };
    hooks.push(h);
    generation++;
    return send(res, 201, h);
  }
  if ((m = p.match(/^\/api\/v2\/hooks\/([^/]+)$/)) && req.method === 'DELETE') {
    hooks.splice(hooks.findIndex((h) => h.id === m[1]), 1);
    generation++;
    return send(res, 204);
  }
  if ((m = p.match(/^\/api\/v2\/hooks\/([^/]+)\/secrets$/))) {
    const h = hooks.find((x) => x.id === m[1]);
    if (req.method === 'GET') return send(res, 200, Object.fromEntries(h.secrets.map((s) => [s, '_VALUE_NOT_SHOWN_'])));
    if (req.method === 'POST') h.secrets.push(...Object.keys(body));
    if (req.method === 'DELETE') h.secrets = h.secrets.filter((s) => !body.includes(s));
    return send(res, req.method === 'DELETE' ? 204 : 201, req.method === 'DELETE' ? undefined : {});
  }
  if (p === '/api/hookgate/outbox') return send(res, 200, outbox.filter((e) => !url.searchParams.get('state') || e.state === url.searchParams.get('state')));
  if ((m = p.match(/^\/api\/hookgate\/outbox\/(\d+)\/retry$/))) {
    const e = outbox.find((x) => x.seq === Number(m[1]));
    e.state = 'pending';
    e.due_ms = Date.now();
    return send(res, 200, { retried: e.seq });
  }
  if ((m = p.match(/^\/api\/hookgate\/outbox\/(\d+)$/))) {
    outbox.splice(outbox.findIndex((x) => x.seq === Number(m[1])), 1);
    return send(res, 204);
  }
  if (p === '/api/hookgate/runs/stream') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    const after = Number(req.headers['last-event-id'] || 0);
    for (const r of [...runs].reverse()) if (after && r.id > after) res.write(`id: ${r.id}\nevent: run\ndata: ${JSON.stringify(r)}\n\n`);
    subscribers.add(res);
    req.on('close', () => subscribers.delete(res));
    return;
  }
  if (p === '/api/hookgate/runs') {
    const q = Object.fromEntries(url.searchParams);
    const list = runs.filter((r) => (!q.hook || r.hook_id === q.hook) && (!q.point || r.point === q.point) && (!q.outcome || r.outcome === q.outcome));
    return send(res, 200, { records: list.slice(0, Number(q.limit || 50)), next_before: null });
  }
  if ((m = p.match(/^\/api\/hookgate\/runs\/(\d+)$/))) return send(res, 200, runs.find((r) => r.id === Number(m[1])));
  send(res, 404, { statusCode: 404, error: 'Not Found', message: 'no such route', errorCode: 'not_found' });
}).listen(port, '127.0.0.1', () => console.log(`mock API and dashboard: http://127.0.0.1:${port}/dashboard/ (token: dev)`));
