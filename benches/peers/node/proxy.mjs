#!/usr/bin/env node
// The Node.js peer of benches/compare.py: what a user would write instead of hookgate's
// credentials-exchange route, on node:http and the npm `jose` package.
//
//   node proxy.mjs --listen 127.0.0.1:8081 --upstream 127.0.0.1:3300 --key key.pem --alg ES256 \
//        --hook ../two-claims.js --clients '{"m2m-post":{"tier":"gold"}}' [--workers N]
//
// POST --path (default /oauth/token), a client_credentials request (form or JSON body):
//   1. forwarded to the upstream's --upstream-path (default /token) over keep-alive connections;
//   2. the upstream's access token is verified (jose.jwtVerify) against its JWKS, found through
//      its discovery document once and cached by jose's createRemoteJWKSet;
//   3. the hook (same source as hookgate's hook file) is called in process with Auth0's arguments
//      (client {id, name, tenant, metadata}, scope array, audience, context {body});
//   4. namespaced claims are added, the scope is replaced, registered claims are kept, and the token
//      is re-signed with --key (--alg ES256 or RS256, kid = RFC 7638 thumbprint, typ as upstream);
//   5. the upstream's JSON answer goes back with the new access_token.
// Other grants and non-200 answers go back as the upstream gave them. GET /.well-known/jwks.json
// publishes the public key. One process per --workers (default: one per core) with node:cluster.
// Prints one line {"ready":true,...} on stdout when every worker listens; SIGTERM stops them all.

import cluster from 'node:cluster';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { calculateJwkThumbprint, createRemoteJWKSet, jwtVerify, SignJWT } from 'jose';

function parseArgs(argv) {
  const o = {
    listen: '127.0.0.1:8081',
    upstream: '127.0.0.1:3300',
    path: '/oauth/token',
    upstreamPath: '/token',
    alg: 'ES256',
    workers: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    clients: '{}',
    tenant: 'bench',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(k in o) && !['key', 'hook'].includes(k)) throw new Error(`unknown argument ${argv[i]}`);
    o[k] = argv[i + 1];
  }
  o.workers = Number(o.workers);
  if (!o.key || !o.hook) throw new Error('--key and --hook are required');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const [listenHost, listenPort] = opts.listen.split(':');
const [upHost, upPort] = opts.upstream.split(':');

if (cluster.isPrimary && opts.workers > 1) {
  let listening = 0;
  for (let i = 0; i < opts.workers; i += 1) cluster.fork();
  cluster.on('listening', () => {
    listening += 1;
    if (listening === opts.workers) {
      process.stdout.write(`${JSON.stringify({ ready: true, workers: opts.workers, listen: opts.listen })}\n`);
    }
  });
  cluster.on('exit', (_w, code) => {
    if (!stopping) {
      console.error(`node peer: a worker exited (${code}); stopping`);
      stop();
    }
  });
  let stopping = false;
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  await worker();
}

async function worker() {
  const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te',
    'trailer', 'upgrade', 'content-length', 'host']);
  const REGISTERED = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'azp', 'client_id']);
  const SECRET_PARAMS = ['client_secret', 'client_assertion'];
  const MAX_BODY = 64 * 1024;

  const agent = new http.Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128 });
  const clients = JSON.parse(opts.clients);

  // The hook file, Auth0's CommonJS shape, evaluated as such.
  const mod = { exports: {} };
  // eslint-disable-next-line no-new-func
  new Function('module', 'exports', readFileSync(opts.hook, 'utf8'))(mod, mod.exports);
  const hook = mod.exports;

  // Our signing key and its public JWK.
  const pem = readFileSync(opts.key, 'utf8');
  const privateKey = createPrivateKey(pem);
  const publicJwk = createPublicKey(pem).export({ format: 'jwk' });
  const kid = await calculateJwkThumbprint(publicJwk);
  const jwksBody = JSON.stringify({ keys: [{ ...publicJwk, kid, alg: opts.alg, use: 'sig' }] });

  function upstream(method, path, headers, body) {
    return new Promise((resolve, reject) => {
      const req = http.request({ agent, host: upHost, port: upPort, method, path, headers }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  // The upstream's keys: discovery once, then jose's cached remote JWKS.
  const discovery = JSON.parse((await upstream('GET', '/.well-known/openid-configuration', {})).body);
  const upstreamKeys = createRemoteJWKSet(new URL(discovery.jwks_uri));

  const isNamespaced = (k) => {
    if (!/^https?:\/\//.test(k)) return false;
    try {
      const h = new URL(k).hostname.toLowerCase();
      return !['auth0.com', 'webtask.io', 'webtask.run'].some((d) => h === d || h.endsWith(`.${d}`));
    } catch {
      return false;
    }
  };

  const reply = (res, status, headers, body) => {
    res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const oauthError = (res, status, error, description) => reply(res, status,
    { 'content-type': 'application/json', 'cache-control': 'no-store' },
    JSON.stringify({ error, error_description: description }));

  function relay(res, up) {
    const headers = {};
    for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    reply(res, up.status, headers, up.body);
  }

  function parseBody(contentType, body) {
    const text = body.toString('utf8');
    if ((contentType || '').startsWith('application/json')) {
      const v = JSON.parse(text);
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, typeof x === 'string' ? x : JSON.stringify(x)]));
    }
    return Object.fromEntries(new URLSearchParams(text));
  }

  function basicClientId(authorization) {
    const m = /^Basic\s+(.+)$/i.exec(authorization || '');
    if (!m) return undefined;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    return i < 0 ? undefined : decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' '));
  }

  function runHook(client, scope, audience, context) {
    return new Promise((resolve, reject) => {
      hook(client, scope, audience, context, (err, result) => (err ? reject(err) : resolve(result)));
    });
  }

  async function exchange(req, res, body) {
    const params = parseBody(req.headers['content-type'], body);
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    headers['content-length'] = body.length;
    const up = await upstream('POST', opts.upstreamPath, headers, body);
    if (params.grant_type !== 'client_credentials' || up.status !== 200) return relay(res, up);

    const answer = JSON.parse(up.body);
    let verified;
    try {
      verified = await jwtVerify(answer.access_token, upstreamKeys, { clockTolerance: 60 });
    } catch (e) {
      console.error(`node peer: refusing the identity server's token: ${e.message}`);
      return oauthError(res, 502, 'server_error', "the identity server's token could not be verified");
    }
    const claims = verified.payload;
    const fromText = (s) => (typeof s === 'string' ? s.split(' ').filter(Boolean) : undefined);
    const granted = fromText(claims.scope) || (Array.isArray(claims.scp) ? claims.scp : undefined) || fromText(answer.scope);
    const audience = Array.isArray(claims.aud) ? claims.aud[0] : (claims.aud ?? params.audience ?? params.resource);
    const clientId = basicClientId(req.headers.authorization) ?? params.client_id ?? '';
    const registered = clients[clientId];
    const client = { id: clientId, name: clientId, tenant: opts.tenant, metadata: registered || {} };
    const hookBody = { ...params };
    for (const s of SECRET_PARAMS) delete hookBody[s];

    let result;
    try {
      result = await runHook(client, granted, audience, { body: hookBody });
    } catch (e) {
      return oauthError(res, 500, 'server_error', `hook failed: ${e.message}`);
    }
    let scope = granted;
    const extra = {};
    for (const [k, v] of Object.entries(result || {})) {
      if (k === 'scope') scope = Array.isArray(v) ? v.map(String) : undefined;
      else if (!REGISTERED.has(k) && isNamespaced(k)) extra[k] = v;
    }
    const minted = { ...claims, ...extra };
    const scopeText = scope && scope.length ? scope.join(' ') : undefined;
    if ('scp' in minted) {
      if (scope && scope.length) minted.scp = scope; else delete minted.scp;
    } else if (scopeText) minted.scope = scopeText;
    else delete minted.scope;

    const header = { alg: opts.alg, kid };
    if (verified.protectedHeader.typ) header.typ = verified.protectedHeader.typ;
    answer.access_token = await new SignJWT(minted).setProtectedHeader(header).sign(privateKey);
    if (scopeText) answer.scope = scopeText; else delete answer.scope;
    const outHeaders = {};
    for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k)) outHeaders[k] = v;
    return reply(res, 200, outHeaders, JSON.stringify(answer));
  }

  const server = http.createServer((req, res) => {
    const path = req.url.split('?')[0];
    if (req.method === 'GET' && path === '/.well-known/jwks.json') {
      return reply(res, 200, { 'content-type': 'application/json' }, jwksBody);
    }
    if (req.method !== 'POST' || path !== opts.path) return oauthError(res, 404, 'not_found', 'no such route');
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        oauthError(res, 413, 'invalid_request', 'the request body is too large');
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      exchange(req, res, Buffer.concat(chunks)).catch((e) => {
        console.error(`node peer: ${e.stack || e}`);
        if (!res.headersSent) oauthError(res, 502, 'server_error', 'the identity server failed');
      });
    });
    return undefined;
  });
  server.keepAliveTimeout = 65_000;
  server.listen(Number(listenPort), listenHost, () => {
    if (!cluster.isWorker) {
      process.stdout.write(`${JSON.stringify({ ready: true, workers: 1, listen: opts.listen })}\n`);
    }
  });
  const stop = () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 200).unref();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
