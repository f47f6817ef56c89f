#!/usr/bin/env node
// A real OAuth 2.0 / OIDC server (node-oidc-provider) for hookgate's end-to-end
// tests and demo. It issues RS256 JWT access tokens through the
// client_credentials grant for the resource (Auth0 "audience")
// https://api.example.com/.
//
//   node tests/oidc/server.mjs [--port N] [--host 127.0.0.1] [--exit-with-stdin]
//                              [--users FILE] [--sink-port N]
//
// --port 0 (the default) picks an ephemeral port. When ready, exactly one JSON
// line is printed on stdout:
//   {"ready":true,"port":<port>,"issuer":"http://127.0.0.1:<port>"}
// Everything else (including oidc-provider's own notices) goes to stderr.
// --exit-with-stdin makes the server exit when its stdin reaches EOF, so a
// test harness that dies without cleaning up does not leave it running.
//
// Clients, audience and scopes live in clients.json beside this file.
// Token endpoint: POST /token (the provider's default path).
//
// For the demo (scripts/demo), a database connection the way Auth0's Authentication API shapes
// it, beside the OAuth endpoints (node-oidc-provider has no signup):
//   POST /dbconnections/signup           {client_id, email, password, username?, connection?,
//                                         user_metadata?, app_metadata?} (JSON or form)
//     200 {"_id","email","email_verified":false,"username"?,"user_metadata","app_metadata"}
//     (Auth0 answers no app_metadata; shown here so the demo can show what a hook added)
//   POST /dbconnections/change_password  {client_id, email, password, connection?}
//     200 {"_id","email","message"}: the password is set at once (Auth0 would mail a link)
//   Errors: {"name","code","description","statusCode"} as Auth0's signup errors.
// Users live in memory, or in the JSON file --users names (read at start, written on change).
// --sink-port N also starts a receiver on that port for the hooks' outgoing webhooks (the
// NOTIFY_URL and SMS_API_URL secrets): it logs every request to stderr as `sink: {...}`,
// answers {"id": "<uuid>"} (the SMS provider's message id) and lists what it received at
// GET /seen. The ready line then carries "sink_port".

import {
  createHash, generateKeyPairSync, randomBytes, randomUUID, scryptSync,
} from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

// Keep stdout for the ready line only: oidc-provider prints NOTICEs with
// console.info, which would otherwise land on stdout.
const toStderr = (...args) => console.error(...args);
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;
console.warn = toStderr;

function usage(message) {
  if (message) console.error(`server.mjs: ${message}`);
  console.error('usage: node server.mjs [--port N] [--host ADDR] [--exit-with-stdin] [--users FILE] [--sink-port N]');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 0, host: '127.0.0.1', exitWithStdin: false, users: null, sinkPort: null };
  for (let i = 0; i < argv.length; i += 1) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq !== -1) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const takeValue = () => {
      if (value !== undefined) return value;
      i += 1;
      if (i >= argv.length) usage(`${arg} needs a value`);
      return argv[i];
    };
    switch (arg) {
      case '--port': {
        const raw = takeValue();
        const port = Number(raw);
        if (!/^\d+$/.test(raw) || port > 65535) usage(`invalid port: ${raw}`);
        opts.port = port;
        break;
      }
      case '--host':
        opts.host = takeValue();
        break;
      case '--users':
        opts.users = takeValue();
        break;
      case '--sink-port': {
        const raw = takeValue();
        const port = Number(raw);
        if (!/^\d+$/.test(raw) || port > 65535) usage(`invalid port: ${raw}`);
        opts.sinkPort = port;
        break;
      }
      case '--exit-with-stdin':
        opts.exitWithStdin = true;
        break;
      case '-h':
      case '--help':
        usage();
        break;
      default:
        usage(`unknown argument: ${arg}`);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const config = JSON.parse(readFileSync(new URL('./clients.json', import.meta.url), 'utf8'));
const AUDIENCE = config.audience;
const API_SCOPES = config.scopes;
const TTL = config.access_token_ttl;
// Clients for which the server does what node-oidc-provider does by default: a request
// without `resource` gets no resource server, hence an opaque access token.
const NO_DEFAULT_RESOURCE = new Set(config.no_default_resource ?? []);

// The Provider is imported after console is redirected (static imports would
// be evaluated first).
const { default: Provider, errors } = await import('oidc-provider');

// RS256 signing key, generated per process. kid = RFC 7638 JWK thumbprint.
function generateSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const thumbprintInput = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  const kid = createHash('sha256').update(thumbprintInput).digest('base64url');
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

function issuerHost(host) {
  // Wildcard listens are still reached (and named) as 127.0.0.1.
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

const server = createServer();
server.keepAliveTimeout = 65_000;

server.on('error', (err) => {
  console.error(`server.mjs: ${err.message}`);
  process.exit(1);
});

await new Promise((resolve) => { server.listen(opts.port, opts.host, resolve); });
const { port } = server.address();
const issuer = `http://${issuerHost(opts.host)}:${port}`;

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({ ...c })),
  jwks: { keys: [generateSigningKey()] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  // API scopes must be known to the provider so clients may list them in
  // their `scope` metadata (which is then an allow-list).
  scopes: ['openid', 'offline_access', ...API_SCOPES],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // No `resource` parameter: act as if the Auth0-style audience was sent,
      // so the client still gets a JWT access token.
      defaultResource: async (_ctx, client, oneOf) => (
        NO_DEFAULT_RESOURCE.has(client.clientId) ? oneOf : AUDIENCE),
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== AUDIENCE) {
          throw new errors.InvalidTarget(`unknown resource: ${resourceIndicator}`);
        }
        return {
          scope: API_SCOPES.join(' '),
          audience: AUDIENCE,
          accessTokenTTL: TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  ttl: {
    AccessToken: TTL,
    ClientCredentials: TTL,
  },
});

// Honour X-Forwarded-* when hookgate (or anything else) proxies to us.
provider.proxy = true;

provider.on('server_error', (ctx, err) => {
  console.error(`server_error ${ctx.method} ${ctx.path}:`, err);
});

// --- The demo's database connection (Auth0's /dbconnections shape) ---------------------------

const users = new Map(); // email (lower case) -> user
if (opts.users && existsSync(opts.users)) {
  for (const u of JSON.parse(readFileSync(opts.users, 'utf8'))) users.set(u.email.toLowerCase(), u);
}
function saveUsers() {
  if (opts.users) writeFileSync(opts.users, `${JSON.stringify([...users.values()], null, 2)}\n`);
}
function hashPassword(password, salt = randomBytes(16).toString('hex')) {
  return { salt, hash: scryptSync(password, salt, 32).toString('hex') };
}
const knownClients = new Set(config.clients.map((c) => c.client_id));

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 65536) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(req, text) {
  const type = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if (type === 'application/json' || (!type && text.trimStart().startsWith('{'))) {
    const v = JSON.parse(text || '{}');
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('a JSON object');
    return v;
  }
  return Object.fromEntries(new URLSearchParams(text));
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function auth0Error(res, status, code, description) {
  send(res, status, { name: status === 400 ? 'BadRequestError' : 'Error', code, description, statusCode: status });
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

async function dbconnections(req, res, action) {
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return auth0Error(res, 405, 'method_not_allowed', 'use POST');
  }
  let body;
  try {
    body = parseBody(req, await readBody(req));
  } catch (e) {
    return auth0Error(res, 400, 'invalid_body', `the body is not valid: ${e.message}`);
  }
  const str = (k) => (typeof body[k] === 'string' && body[k] !== '' ? body[k] : undefined);
  const missing = ['client_id', 'email', 'password'].filter((k) => str(k) === undefined);
  if (missing.length) return auth0Error(res, 400, 'invalid_body', `Missing required fields: ${missing.join(', ')}`);
  if (!knownClients.has(str('client_id'))) return auth0Error(res, 400, 'invalid_body', 'unknown client_id');
  const key = str('email').toLowerCase();
  if (action === 'signup') {
    if (users.has(key)) return auth0Error(res, 400, 'invalid_signup', 'Invalid sign up');
    const user = {
      _id: randomBytes(12).toString('hex'),
      email: str('email'),
      email_verified: false,
      ...(str('username') ? { username: str('username') } : {}),
      connection: str('connection') || 'Username-Password-Authentication',
      user_metadata: isObject(body.user_metadata) ? body.user_metadata : {},
      app_metadata: isObject(body.app_metadata) ? body.app_metadata : {},
      password: hashPassword(str('password')),
    };
    users.set(key, user);
    saveUsers();
    console.error(`oidc test server: signup ${user.email} -> ${user._id}`);
    const { password: _, connection: __, ...answer } = user;
    return send(res, 200, answer);
  }
  const user = users.get(key);
  if (!user) return auth0Error(res, 400, 'invalid_user', 'no such user');
  user.password = hashPassword(str('password'));
  user.last_password_reset = new Date().toISOString();
  saveUsers();
  console.error(`oidc test server: password changed for ${user.email}`);
  return send(res, 200, { _id: user._id, email: user.email, message: 'password changed' });
}

const oidc = provider.callback();
server.on('request', (req, res) => {
  const path = (req.url || '').split('?')[0];
  if (path === '/dbconnections/signup' || path === '/dbconnections/change_password') {
    dbconnections(req, res, path.endsWith('signup') ? 'signup' : 'change_password').catch((e) => {
      console.error('dbconnections:', e);
      if (!res.headersSent) auth0Error(res, 500, 'server_error', 'internal error');
    });
    return;
  }
  oidc(req, res);
});

// --- The receiver for the hooks' webhooks (--sink-port) ---------------------------------------

let sinkPort;
if (opts.sinkPort !== null) {
  const seen = [];
  const sink = createServer(async (req, res) => {
    const path = (req.url || '').split('?')[0];
    if (req.method === 'GET' && path === '/seen') return send(res, 200, seen);
    let text = '';
    try { text = await readBody(req); } catch { /* answered below all the same */ }
    let body = text;
    try { body = JSON.parse(text); } catch { /* not JSON: kept as text */ }
    const entry = { method: req.method, path, body };
    seen.push(entry);
    if (seen.length > 1000) seen.shift();
    console.error(`sink: ${JSON.stringify(entry)}`);
    return send(res, 200, { id: randomUUID() });
  });
  sink.on('error', (err) => {
    console.error(`server.mjs: sink: ${err.message}`);
    process.exit(1);
  });
  await new Promise((resolve) => { sink.listen(opts.sinkPort, opts.host, resolve); });
  sinkPort = sink.address().port;
  sink.unref();
}

let closing = false;
function shutdown(reason) {
  if (closing) return;
  closing = true;
  console.error(`oidc test server: ${reason}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (opts.exitWithStdin) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

console.error(`oidc test server: issuer ${issuer}, token endpoint ${issuer}/token, audience ${AUDIENCE}`);
const ready = { ready: true, port, issuer, ...(sinkPort !== undefined ? { sink_port: sinkPort } : {}) };
process.stdout.write(`${JSON.stringify(ready)}\n`);
