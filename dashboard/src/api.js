// The ONE module that talks to hookgate's management API. Every route, every request shape and
// every field the dashboard reads from an answer is here (and only here), so a change of shape
// is one edit. The rest of the dashboard gets plain objects from the functions below.
//
// Auth: the admin token is kept in sessionStorage (gone when the tab closes) and sent as
// `Authorization: Bearer`, never in a URL. Requests use `credentials: 'omit'`: no cookie is
// involved at all, so a cross-site page cannot make the browser send an authenticated request
// (it does not have the token, and the browser never attaches it by itself).

const TOKEN_KEY = 'hookgate.admin-token';

export const auth = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An answer that was not a success: the API's `{statusCode, error, message, errorCode}`. */
export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && (body.message || body.error_description || body.error)) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.code = (body && (body.errorCode || body.error)) || '';
  }
}

/** A route the running hookgate does not serve (its part is not mounted yet): the API's 404
 * `not_found`, or a 405 where the path matches another route (`POST /api/hookgate/hooks/test`
 * matches `/api/hookgate/hooks/{id}`). */
export const isMissingRoute = (e) => e instanceof ApiError && ((e.status === 404 && e.code === 'not_found') || e.status === 405);

let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

async function call(method, path, body, { raw = false, signal } = {}) {
  const headers = { authorization: `Bearer ${auth.token}`, accept: 'application/json' };
  const init = { method, headers, credentials: 'omit', cache: 'no-store', signal };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (raw) return res;
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { message: text.slice(0, 300) };
  }
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    throw new ApiError(res.status, json);
  }
  return json;
}

const enc = encodeURIComponent;

// ---- hooks -----------------------------------------------------------------------------------
// Fields read from a hook (GET/PATCH /api/hookgate/hooks[/id]): id, name, triggerId, enabled,
// script (single hook only), order, clients, routes, timeout_ms, on_error, file, secrets (names),
// reload_problems (strings `file:line:col: message`), dependency_problems.
function hook(h) {
  return {
    id: h.id,
    name: h.name,
    triggerId: h.triggerId,
    enabled: h.enabled === true || h.enabled === 'true',
    script: h.script,
    order: h.order ?? 0,
    clients: h.clients ?? null,
    routes: h.routes ?? null,
    timeoutMs: h.timeout_ms ?? null,
    onError: h.on_error || 'deny',
    file: h.file || '',
    kind: h.kind === 'action' ? 'action' : 'hook',
    secrets: Array.isArray(h.secrets) ? h.secrets : Object.keys(h.secrets || {}),
    reloadProblems: h.reload_problems || [],
    dependencyProblems: h.dependency_problems || [],
  };
}

export const listHooks = async () => (await call('GET', '/api/hookgate/hooks')).map(hook);
export const getHook = async (id) => hook(await call('GET', `/api/hookgate/hooks/${enc(id)}`));
/** Auth0's create: `POST /api/v2/hooks` `{name, triggerId, script, enabled}` → 201 hook (id read). */
export const createHook = async ({ name, triggerId, script, enabled }) =>
  call('POST', '/api/v2/hooks', { name, triggerId, script, enabled });
/** `PATCH /api/hookgate/hooks/{id}`; `patch` in the dashboard's names, sent in the API's. */
export async function updateHook(id, patch) {
  const names = { timeoutMs: 'timeout_ms', onError: 'on_error' };
  const body = {};
  for (const [k, v] of Object.entries(patch)) body[names[k] || k] = v;
  return hook(await call('PATCH', `/api/hookgate/hooks/${enc(id)}`, body));
}
export const deleteHook = (id) => call('DELETE', `/api/v2/hooks/${enc(id)}`);
export const setOrder = async (triggerId, ids) =>
  (await call('POST', '/api/hookgate/hooks/order', { triggerId, ids })).map(hook);

// ---- secrets (Auth0's routes; values are write-only: the API answers "_VALUE_NOT_SHOWN_") ----
export const secretNames = async (id) => Object.keys((await call('GET', `/api/v2/hooks/${enc(id)}/secrets`)) || {});
export const addSecret = (id, name, value) => call('POST', `/api/v2/hooks/${enc(id)}/secrets`, { [name]: value });
export const changeSecret = (id, name, value) => call('PATCH', `/api/v2/hooks/${enc(id)}/secrets`, { [name]: value });
export const deleteSecret = (id, name) => call('DELETE', `/api/v2/hooks/${enc(id)}/secrets`, [name]);

// ---- status ----------------------------------------------------------------------------------
// Fields read: reload.generation, reload.hooks, reload.successes, reload.failures,
// reload.last_success_unix, reload.last_error.{at_unix, problems[]}, reload.restart_required,
// upstream.{address, reachable, error}, outbox.{open, path}, config, hooks_dir,
// dependency_problems[].{id, name, problems[]}.
export async function status() {
  const s = await call('GET', '/api/hookgate/status');
  const r = s.reload || {};
  return {
    generation: r.generation ?? 0,
    hooks: r.hooks,
    reloads: r.successes ?? 0,
    rejected: r.failures ?? 0,
    lastSuccess: r.last_success_unix ?? null,
    lastError: r.last_error ? { at: r.last_error.at_unix, problems: r.last_error.problems || [] } : null,
    restartRequired: Array.isArray(r.restart_required) ? r.restart_required : r.restart_required ? [String(r.restart_required)] : [],
    upstream: s.upstream || {},
    outbox: s.outbox || {},
    config: s.config || '',
    hooksDir: s.hooks_dir || '',
    dependencyProblems: (s.dependency_problems || []).map((d) => ({ id: d.id, name: d.name, problems: d.problems || [] })),
  };
}

// ---- outbox ----------------------------------------------------------------------------------
// Fields read from an event: seq, state, due_ms, event.{id, trigger, route, client_id, attempts,
// last_error, created_ms, done_hooks}.
export async function outbox(state) {
  const list = await call('GET', `/api/hookgate/outbox${state ? `?state=${enc(state)}` : ''}`);
  return list.map((s) => ({
    seq: s.seq,
    state: s.state,
    dueMs: s.due_ms ?? null,
    id: s.event?.id,
    trigger: s.event?.trigger,
    route: s.event?.route,
    clientId: s.event?.client_id ?? null,
    attempts: s.event?.attempts ?? 0,
    lastError: s.event?.last_error ?? null,
    createdMs: s.event?.created_ms ?? null,
    doneHooks: s.event?.done_hooks || [],
  }));
}
export const retryEvent = (seq) => call('POST', `/api/hookgate/outbox/${enc(seq)}/retry`);
export const dropEvent = (seq) => call('DELETE', `/api/hookgate/outbox/${enc(seq)}`);

// ---- run records (runs helper's routes; shapes may still move: adjust here) -------------------
// Fields read from a record: id, hook_id, hook, point, route, request_id, event_id, client_id,
// start, duration_ms, ran_ms, cpu_ms, outcome, error.{class, message}, console[].{level, at_ms,
// message}, console_truncated, requests[].{method, url, host, status, error, duration_ms},
// requests_omitted, generation. The page: {records, next_before}.
export async function runs({ hook, point, outcome, q, limit } = {}) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries({ hook, point, outcome, q, limit })) if (v) p.set(k, v);
  const page = await call('GET', `/api/hookgate/runs${p.size ? `?${p}` : ''}`);
  return Array.isArray(page) ? page : page.records || [];
}
export const run = (id) => call('GET', `/api/hookgate/runs/${enc(id)}`);

/**
 * The live tail: `GET /api/hookgate/runs/stream` (server-sent events) read with fetch and a stream
 * reader, since EventSource cannot send a bearer header. Reconnects (with `Last-Event-ID`, so no
 * record is missed) until `stop()`. `onRun(record)`, `onMissed(count)`, `onState('connecting' |
 * 'live' | 'retrying' | 'unavailable' | 'closed', detail)`. `since`: the newest record id already
 * shown (sent as Last-Event-ID on the first connection, so nothing between falls through).
 */
export function followRuns({ since = null, onRun, onMissed, onState }) {
  let lastId = since;
  let stopped = false;
  let controller = null;
  let delay = 500;
  async function once() {
    controller = new AbortController();
    onState('connecting');
    const headers = { authorization: `Bearer ${auth.token}`, accept: 'text/event-stream' };
    if (lastId !== null) headers['last-event-id'] = String(lastId);
    const res = await fetch('/api/hookgate/runs/stream', {
      headers,
      credentials: 'omit',
      cache: 'no-store',
      signal: controller.signal,
    });
    if (!res.ok) {
      let body = null;
      try {
        body = await res.json();
      } catch {}
      throw new ApiError(res.status, body);
    }
    onState('live');
    delay = 500;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value.replace(/\r\n?/g, '\n');
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const ev = { event: 'message', data: [], id: null };
        for (const line of block.split('\n')) {
          if (!line || line.startsWith(':')) continue;
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'data') ev.data.push(val);
          else if (field === 'event') ev.event = val;
          else if (field === 'id') ev.id = val;
        }
        if (ev.id !== null && ev.id !== '') lastId = ev.id;
        if (!ev.data.length) continue;
        let data;
        try {
          data = JSON.parse(ev.data.join('\n'));
        } catch {
          continue;
        }
        if (ev.event === 'missed') onMissed(data.missed ?? data.count ?? data);
        else onRun(data);
      }
    }
  }
  (async () => {
    while (!stopped) {
      try {
        await once();
      } catch (e) {
        if (stopped) break;
        if (isMissingRoute(e)) {
          onState('unavailable', 'runs API not mounted');
          return;
        }
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
          onState('unavailable', e.message);
          if (e.status === 401) onUnauthorized();
          return;
        }
        onState('retrying', e.message);
      }
      if (stopped) break;
      onState('retrying');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
    onState('closed');
  })();
  return {
    stop() {
      stopped = true;
      controller?.abort();
    },
  };
}

// ---- the Runner (never saves) ----------------------------------------------------------------
// `POST /api/hookgate/hooks/test` {triggerId, script, payload, secrets, name} → fields read:
// outcome, response, error.{class, message}, user_message, console[], requests[], duration_ms,
// ran_ms, cpu_ms. A script that does not compile is a 400 whose message names file:line.
export const testRun = ({ triggerId, script, payload, secrets, name }) =>
  call('POST', '/api/hookgate/hooks/test', { triggerId, script, payload, secrets, name });
