// The one registry of outbound requests in flight: `fetch` and Node's `http`/`https` both start
// requests through `native.request(spec, cb)` and get `cb(err, res)` back when the host's
// completion arrives. `res.body` is a Uint8Array of the bytes as received (not decompressed).
// Built-ins used here are private copies (primordials.js); an exception from `cb` is the
// call's (`native.uncaught`), so one escaping `done` means the glue broke.
// Sockets and lookups (`net`, `tls`, `dns`) register a handler here too: `native.socketOpen(h)`
// gives the id the natives take, and every event the host reports for it (connect, secure, data,
// written, end, error, close, resolved) is `h(kind, payload)`.
// Owns: request and socket ids and their callbacks. Must not touch: request or response shapes
// of any API, or socket semantics (net.js owns those).
(function (native, g) {
  'use strict';
  const P = native.P;
  const pending = new P.SafeMap();
  let nextId = 1;
  // spec: { url, method, headers: [[name, value], ...], body: string|Uint8Array|undefined, follow }
  native.request = function (spec, cb) {
    const id = nextId++;
    pending.set(id, cb);
    native.requestStart(id, P.String(spec.url), P.String(spec.method || 'GET'),
      P.stringify(spec.headers || []), spec.body == null ? undefined : spec.body, !!spec.follow);
    return id;
  };
  // Stop waiting for a request (a timeout or abort in JS): the host drops it and its callback.
  native.requestAbort = function (id) {
    if (pending.delete(id)) native.requestCancel(id);
  };
  // [code, node fields as JSON, message]: the fields Node's own error has, in Node's
  // order (errno, code, syscall, address/port or hostname).
  function failureError(failure) {
    const err = new P.Error(failure[2]);
    const f = P.parse(failure[1]);
    if (f.errno !== undefined) err.errno = f.errno;
    err.code = failure[0];
    if (f.syscall !== undefined) err.syscall = f.syscall;
    if (f.address !== undefined) err.address = f.address;
    if (f.port !== undefined) err.port = f.port;
    if (f.hostname !== undefined) err.hostname = f.hostname;
    return err;
  }
  const sockets = new P.SafeMap();
  let nextSocket = 1;
  native.socketOpen = function (handler) {
    const id = nextSocket++;
    sockets.set(id, handler);
    return id;
  };
  // tls.connect({ socket }) takes over the socket's events.
  native.socketRebind = function (id, handler) { if (sockets.has(id)) sockets.set(id, handler); };
  native.socketForget = function (id) { sockets.delete(id); };
  function toSocket(id, kind, payload) {
    const h = sockets.get(id);
    if (!h) return;
    if (kind === 'close' || kind === 'resolved' || kind === 'orphan') sockets.delete(id);
    let arg = payload;
    if (kind === 'error') arg = failureError(payload);
    else if (kind === 'connect' || kind === 'secure' || kind === 'resolved') arg = P.parse(payload);
    try {
      h(kind, arg);
    } catch (e) {
      native.uncaught(e);
    }
  }
  return {
    sockEvent: toSocket,
    // Sockets whose call ended (the host closed them): the JS objects learn it now, as a call.
    sockOrphans(ids) { for (let i = 0; i < ids.length; i++) toSocket(ids[i], 'orphan'); },
    done(id, failure, status, statusText, url, headersJson, body) {
      const cb = pending.get(id);
      if (!cb) return;
      pending.delete(id);
      let err = null, res;
      if (failure) {
        err = failureError(failure);
      } else {
        res = { status, statusText, url, headers: P.parse(headersJson), body };
      }
      try {
        if (err) cb(err); else cb(null, res);
      } catch (e) {
        native.uncaught(e);
      }
    },
    // The requests of calls that ended: `ids` is an array the host made.
    drop(ids) { for (let i = 0; i < ids.length; i++) pending.delete(ids[i]); },
  };
})
