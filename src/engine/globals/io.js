// The one registry of outbound requests in flight: `fetch` and Node's `http`/`https` both start
// requests through `native.request(spec, cb)` and get `cb(err, res)` back when the host's
// completion arrives. `res.body` is a Uint8Array of the bytes as received (not decompressed).
// Built-ins used here are private copies (primordials.js); an exception from `cb` is the
// call's (`native.uncaught`), so one escaping `done` means the glue broke.
// Owns: request ids and their callbacks. Must not touch: request or response shapes of any API.
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
  return {
    done(id, failure, status, statusText, url, headersJson, body) {
      const cb = pending.get(id);
      if (!cb) return;
      pending.delete(id);
      let err = null, res;
      if (failure) {
        // [code, node fields as JSON, message]: the fields Node's own error has, in Node's
        // order (errno, code, syscall, address/port or hostname).
        err = new P.Error(failure[2]);
        const f = P.parse(failure[1]);
        if (f.errno !== undefined) err.errno = f.errno;
        err.code = failure[0];
        if (f.syscall !== undefined) err.syscall = f.syscall;
        if (f.address !== undefined) err.address = f.address;
        if (f.port !== undefined) err.port = f.port;
        if (f.hostname !== undefined) err.hostname = f.hostname;
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
