// `dns` for hooks: no resolver (the host resolves the hosts of outbound requests); every function
// throws ERR_HOOKGATE_UNSUPPORTED, dns.promises functions reject with it.
'use strict';
const { stub } = require('_hookgate/unsupported');
const fns = ["lookup","lookupService","Resolver","getDefaultResultOrder","setDefaultResultOrder","setServers","getServers","resolve","resolve4","resolve6","resolveAny","resolveCaa","resolveCname","resolveMx","resolveNaptr","resolveNs","resolvePtr","resolveSoa","resolveSrv","resolveTxt","reverse"];
const codes = {};
for (const c of ['NODATA','FORMERR','SERVFAIL','NOTFOUND','NOTIMP','REFUSED','BADQUERY','BADNAME','BADFAMILY','BADRESP','CONNREFUSED','TIMEOUT','EOF','FILE','NOMEM','DESTRUCTION','BADSTR','BADFLAGS','NONAME','BADHINTS','NOTINITIALIZED','LOADIPHLPAPI','ADDRGETNETWORKPARAMS','CANCELLED']) codes[c] = 'E' + c;
module.exports = stub('dns', 'hookgate gives hooks no DNS resolver', fns,
  Object.assign({ ADDRCONFIG: 1024, ALL: 256, V4MAPPED: 2048 }, codes), fns);
