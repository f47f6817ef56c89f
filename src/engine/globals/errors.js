// The error classes Auth0 hooks use as globals. Real Error subclasses with a `name`.
(function (native, g) {
  'use strict';
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
