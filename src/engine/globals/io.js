// The one registry of outbound requests in flight: `fetch` and Node's `http`/`https` both start
// requests through `native.request(spec, cb)` and get `cb(err, res)` back when the host's
// completion arrives. `res.body` is a Uint8Array of the bytes as received (not decompressed).
// Owns: request ids and their callbacks. Must not touch: request or response shapes of any API.
(function (native, g) {
  'use strict';
  const pending = new Map();
  let nextId = 1;
  // spec: { url, method, headers: [[name, value], ...], body: string|Uint8Array|undefined, follow }
  native.request = function (spec, cb) {
    const id = nextId++;
    pending.set(id, cb);
    native.requestStart(id, String(spec.url), String(spec.method || 'GET'),
      JSON.stringify(spec.headers || []), spec.body == null ? undefined : spec.body, !!spec.follow);
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
      if (failure) {
        const e = new Error(failure[1]);
        e.code = failure[0];
        if (failure[0].startsWith('E')) { e.errno = failure[0]; e.syscall = 'connect'; }
        cb(e);
      } else {
        cb(null, { status, statusText, url, headers: JSON.parse(headersJson), body });
      }
    },
    reset() { pending.clear(); },
  };
})
