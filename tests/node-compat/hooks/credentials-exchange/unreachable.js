// Compatibility hook (failures): what a hook and its packages see when a service is down or its
// name does not resolve. Node's `http` (a refused port, an unknown host) and axios on a refused
// port; every error is described field by field, in the order Node sets the fields, so the
// comparison covers message, errno, code, syscall, address/port and hostname.
// 127.0.0.1:2 has nothing listening (and is not a port fetch refuses to try); `.invalid` never
// resolves (RFC 2606). A placeholder URL left in a hook (`url.parse('{{API_URL}}/users')`: no
// host, a path without a leading `/`) goes to localhost, as in Node.
module.exports = function (client, scope, audience, context, cb) {
  const http = require('http');
  const axios = require('axios@0.19.2');
  const describe = (e) => ({
    name: e.name, message: e.message, errno: e.errno, code: e.code, syscall: e.syscall,
    address: e.address, port: e.port, hostname: e.hostname, keys: Object.keys(e).filter((k) => !/^(config|request|response|isAxiosError|toJSON)$/.test(k)),
  });
  const get = (url) => new Promise((resolve) => {
    http.get(url, (res) => { res.resume(); resolve({ unexpected: res.statusCode }); })
      .on('error', (e) => resolve(describe(e)));
  });
  const out = {};
  get('http://127.0.0.1:2/health')
    .then((d) => { out.refused = d; return get('http://api.nohost.invalid/v1/health'); })
    .then((d) => { out.not_found = d; return get(Object.assign(require('url').parse('{{API_URL}}/users'), { port: 2 })); })
    .then((d) => { out.placeholder = d; return axios.get('http://127.0.0.1:2/v1/customers', { timeout: 5000 }); })
    .then((r) => { out.axios = { unexpected: r.status }; }, (e) => { out.axios = describe(e); })
    .then(() => cb(null, out), cb);
};
