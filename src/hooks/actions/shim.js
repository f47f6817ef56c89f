// hookgate's adapter from a hook call to an Auth0 Action (src/hooks/actions.rs prepends
// `const TRIGGER = "<trigger id>", CACHE_SCOPE = "[runner:]<trigger id>";`). The points call
// every hook, Hook or Action, with the Hook arguments of their trigger (plus, for an Action, the request's facts) and a callback; this
// module turns those arguments into Auth0's `event`, gives the handler an `api` that records what
// it asks for, and answers the callback as a Hook would: same results, same error classes. So
// an Action and the Hook it replaces give the same token, signup body or delivery.
'use strict';
// Private copies, taken before the Action's module runs: a handler that replaces a built-in
// must not break the adapter (a Hook that does so only breaks itself).
const parse = JSON.parse;
const stringify = JSON.stringify;
const isArray = Array.isArray;
const keys = Object.keys;
const freeze = Object.freeze;
const resolve = Promise.resolve.bind(Promise);
const then = Promise.prototype.then;
const ErrorCtor = Error;
const TypeErrorCtor = TypeError;
const classes = {
  invalid_scope: InvalidScopeError,
  invalid_request: InvalidRequestError,
  server_error: ServerError,
};
const PreUserRegistrationErrorCtor = PreUserRegistrationError;

const EXPORT = {
  'credentials-exchange': 'onExecuteCredentialsExchange',
  'pre-user-registration': 'onExecutePreUserRegistration',
  'post-user-registration': 'onExecutePostUserRegistration',
  'post-change-password': 'onExecutePostChangePassword',
  'send-phone-message': 'onExecuteSendPhoneMessage',
}[TRIGGER];
// How many Hook arguments the trigger has before the facts and the callback.
const ARITY = {
  'credentials-exchange': 4,
  'pre-user-registration': 2,
  'post-user-registration': 2,
  'post-change-password': 2,
  'send-phone-message': 3,
}[TRIGGER];

const action = require('__action__');

// The arguments are fresh objects on every call (the engine builds them from JSON), so the event
// uses them as they are; values a handler hands to `api` are copied (plain JSON, taken now).
function copy(v) {
  return v === undefined ? undefined : parse(stringify(v));
}
function obj(v) {
  return v !== null && typeof v === 'object' && !isArray(v) ? v : {};
}
function str(v) {
  return typeof v === 'string' ? v : undefined;
}

// ---- api.cache: one store per trigger for the whole process (engine/natives/cache.rs; the
// Runner's scratch runs use stores of their own), with Auth0's limits; the clock is read there. ----
const native = require.native;
const cacheApi = freeze({
  get(key) {
    const hit = native.actionCacheGet(CACHE_SCOPE, String(key));
    return hit === undefined ? undefined : { value: hit[0], expires_at: hit[1] };
  },
  set(key, value, options) {
    key = String(key);
    value = String(value);
    const o = obj(options);
    const ttl = typeof o.ttl === 'number' ? o.ttl : null;
    const at = typeof o.expires_at === 'number' ? o.expires_at : null;
    const r = native.actionCacheSet(CACHE_SCOPE, key, value, ttl, at);
    if (typeof r === 'string') {
      return { type: 'error', code: r, message: 'api.cache.set refused the entry: ' + r +
        ' (keys up to 64 bytes, values up to 4 kB, 8 kB in all per trigger)' };
    }
    return { type: 'success', record: { value, expires_at: r } };
  },
  delete(key) {
    native.actionCacheDelete(CACHE_SCOPE, String(key));
    return { type: 'success', record: undefined };
  },
});

function request(facts, context) {
  const f = obj(facts);
  const c = obj(context);
  return {
    body: obj(c.body),
    ip: str(f.ip) || str(c.ip),
    hostname: str(f.hostname),
    method: str(f.method) || 'POST',
    user_agent: str(f.user_agent) || str(c.user_agent),
    language: str(f.language) || str(c.requestLanguage) || str(c.language),
    geoip: {},
  };
}

function connection(context) {
  const c = obj(obj(context).connection);
  return { id: c.id, name: c.name, strategy: c.strategy || 'auth0', metadata: obj(c.metadata) };
}

function webtask(context) {
  const w = obj(obj(context).webtask);
  return { secrets: obj(w.secrets), configuration: obj(w.configuration) };
}

// The event of the three user triggers: `fields(u)` picks the trigger's user fields from the
// Hook's `user`; connection, request, tenant, secrets and configuration are the same for all.
function userEvent(args, facts, fields) {
  const [user, context] = args;
  const u = obj(user);
  const w = webtask(context);
  return {
    user: fields(u),
    connection: connection(context),
    request: request(facts, context),
    tenant: { id: u.tenant || obj(obj(context).connection).tenant || str(obj(facts).tenant) },
    secrets: w.secrets,
    configuration: w.configuration,
  };
}

// The profile fields the Hook's `user` may carry, under their Actions names.
function profile(u) {
  return {
    email: u.email,
    username: u.username,
    phone_number: u.phoneNumber,
    name: u.name,
    given_name: u.given_name,
    family_name: u.family_name,
    nickname: u.nickname,
    picture: u.picture,
    user_metadata: obj(u.user_metadata),
    app_metadata: obj(u.app_metadata),
  };
}

// Each trigger: the event from the Hook arguments, the api, and the Hook answer from what the
// handler asked for.
const TRIGGERS = {
  'credentials-exchange': function (args, facts) {
    const [client, scope, audience, context] = args;
    const c = obj(client);
    const w = webtask(context);
    const body = obj(obj(context).body);
    const granted = isArray(scope) ? scope.slice() : [];
    const requested = typeof body.scope === 'string' ? body.scope.split(' ').filter(Boolean) : [];
    const event = {
      client: { client_id: c.id, name: c.name, metadata: obj(c.metadata) },
      tenant: { id: c.tenant || str(obj(facts).tenant) },
      resource_server: { identifier: audience === null ? undefined : audience },
      accessToken: { scope: granted.slice(), customClaims: obj(obj(context).claims) },
      transaction: { requested_scopes: requested },
      request: request(facts, context),
      secrets: w.secrets,
      configuration: w.configuration,
    };
    const st = { deny: null, claims: {}, target: granted.slice() };
    function scopeList(v, what) {
      if (!isArray(v) || v.some((s) => typeof s !== 'string')) {
        throw new TypeErrorCtor(what + ' takes an array of scope strings');
      }
      return v;
    }
    const api = {
      access: {
        deny(code, reason) {
          if (!classes[code]) {
            throw new TypeErrorCtor('api.access.deny(code, reason): code must be invalid_scope, invalid_request or server_error, not ' + stringify(code));
          }
          if (!st.deny) st.deny = { code, reason: reason === undefined ? '' : String(reason) };
          return api;
        },
      },
      accessToken: {
        setCustomClaim(key, value) {
          st.claims[String(key)] = copy(value);
          return api;
        },
      },
      transaction: {
        addTargetScope(s) {
          if (typeof s !== 'string') throw new TypeErrorCtor('addTargetScope takes a scope string');
          if (!st.target.includes(s)) st.target.push(s);
          return api;
        },
        removeTargetScope(s) {
          st.target = st.target.filter((x) => x !== s);
          return api;
        },
        setTargetScopes(list) {
          st.target = scopeList(list, 'setTargetScopes').slice();
          return api;
        },
        clearTargetScopes() {
          st.target = [];
          return api;
        },
      },
      cache: cacheApi,
    };
    function answer() {
      if (st.deny) return { error: new classes[st.deny.code](st.deny.reason) };
      // As Auth0: target scopes are limited to what the client was granted (here: the scope
      // the identity server granted, as the hooks before this one left it).
      const target = [];
      for (const s of st.target) if (granted.includes(s) && !target.includes(s)) target.push(s);
      const out = {};
      for (const k of keys(st.claims)) out[k] = st.claims[k];
      out.scope = target;
      return { value: out };
    }
    return { event, api, answer };
  },

  'pre-user-registration': function (args, facts) {
    const event = userEvent(args, facts, profile);
    const st = { deny: null, user_metadata: null, app_metadata: null };
    const api = {
      access: {
        deny(reason, userMessage) {
          if (!st.deny) st.deny = { log: reason === undefined ? '' : String(reason), user: userMessage };
          return api;
        },
      },
      validation: {
        error(code, message) {
          if (!st.deny) st.deny = { log: String(code) + ': ' + String(message), user: message };
          return api;
        },
      },
      user: {
        setUserMetadata(key, value) {
          (st.user_metadata = st.user_metadata || {})[String(key)] = value === undefined ? null : copy(value);
          return api;
        },
        setAppMetadata(key, value) {
          (st.app_metadata = st.app_metadata || {})[String(key)] = value === undefined ? null : copy(value);
          return api;
        },
      },
      cache: cacheApi,
    };
    function answer() {
      if (st.deny) {
        return { error: new PreUserRegistrationErrorCtor(st.deny.log, st.deny.user === undefined ? undefined : String(st.deny.user)) };
      }
      const out = {};
      if (st.user_metadata) out.user_metadata = st.user_metadata;
      if (st.app_metadata) out.app_metadata = st.app_metadata;
      return { value: keys(out).length ? { user: out } : {} };
    }
    return { event, api, answer };
  },

  'post-user-registration': function (args, facts) {
    const event = userEvent(args, facts, (u) => ({
      user_id: u.id,
      email_verified: u.emailVerified,
      phone_verified: u.phoneNumberVerified,
      ...profile(u),
      created_at: u.created_at,
      updated_at: u.updated_at,
    }));
    return { event, api: { cache: cacheApi }, answer: () => ({ value: {} }) };
  },

  'post-change-password': function (args, facts) {
    const event = userEvent(args, facts, (u) => ({
      user_id: u.id,
      email: u.email,
      email_verified: u.emailVerified,
      username: u.username,
      phone_number: u.phoneNumber,
      phone_verified: u.phoneNumberVerified,
      last_password_reset: u.last_password_reset,
    }));
    return { event, api: { cache: cacheApi }, answer: () => ({ value: {} }) };
  },

  'send-phone-message': function (args, facts) {
    const [recipient, text, context] = args;
    const c = obj(context);
    const w = webtask(context);
    const client = obj(c.client);
    const event = {
      message_options: {
        recipient,
        text,
        code: c.code,
        message_type: c.message_type,
        action: c.action,
      },
      client: keys(client).length ? { client_id: client.client_id, name: client.name, metadata: obj(client.client_metadata) } : undefined,
      user: c.user,
      // The webhook's own caller is the identity server: the end user's request is the one
      // the context describes.
      request: { ip: str(c.ip), user_agent: str(c.user_agent), language: str(c.language), method: 'POST', geoip: {} },
      tenant: { id: str(obj(facts).tenant) },
      secrets: w.secrets,
      configuration: w.configuration,
    };
    return { event, api: { cache: cacheApi }, answer: () => ({ value: {} }) };
  },
};

module.exports = function () {
  const args = Array.prototype.slice.call(arguments);
  const cb = args.pop();
  const facts = args.length > ARITY ? args[ARITY] : undefined;
  const handler = action[EXPORT];
  let built;
  try {
    built = TRIGGERS[TRIGGER](args.slice(0, ARITY), facts);
  } catch (e) {
    cb(e);
    return;
  }
  let started;
  try {
    started = handler(built.event, built.api);
  } catch (e) {
    // A synchronous throw fails the trigger with its generic error, as a rejection does.
    cb(e instanceof ErrorCtor ? e : new ErrorCtor(String(e)));
    return;
  }
  then.call(
    resolve(started),
    function () {
      const a = built.answer();
      if (a.error) cb(a.error);
      else cb(null, a.value);
    },
    function (e) {
      cb(e instanceof ErrorCtor ? e : new ErrorCtor(String(e)));
    },
  );
};
