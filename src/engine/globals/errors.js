// The error classes Auth0 hooks use as globals. Real Error subclasses with a `name`.
(function (native, g) {
  'use strict';
  // QuickJS's `stack` setter on Error.prototype refuses anything but a string; under V8
  // `err.stack = undefined` (node-redis 4's ErrorReply) just sets the property.
  const stack = Object.getOwnPropertyDescriptor(g.Error.prototype, 'stack');
  if (stack && stack.set && stack.configurable) {
    const set = stack.set;
    Object.defineProperty(g.Error.prototype, 'stack', {
      get: stack.get,
      set: function (v) {
        if (typeof v === 'string') Reflect.apply(set, this, [v]);
        else Object.defineProperty(this, 'stack', { value: v, writable: true, configurable: true });
      },
      enumerable: stack.enumerable,
      configurable: true,
    });
  }
  function define(name, init) {
    const C = class extends Error {
      constructor(message, extra) {
        super(message);
        if (init) init(this, message, extra);
      }
    };
    Object.defineProperty(C, 'name', { value: name });
    Object.defineProperty(C.prototype, 'name', { value: name, writable: true, configurable: true });
    Object.defineProperty(g, name, { value: C, writable: true, configurable: true });
  }
  define('InvalidScopeError');
  define('InvalidRequestError');
  define('ServerError');
  // PreUserRegistrationError(logMessage, userMessage): logMessage is `message`.
  define('PreUserRegistrationError', function (self, logMessage, userMessage) {
    self.userMessage = userMessage === undefined ? undefined : String(userMessage);
  });
})
