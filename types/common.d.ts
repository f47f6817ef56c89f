// What every hookgate hook sees, whatever its trigger: the error classes Auth0 Hooks had as
// globals, `context.webtask`, and the callback. The trigger files (`credentials-exchange.d.ts`,
// ...) declare each trigger's arguments in a namespace of their own.
//
// Written in a plain style on purpose (one member a line, its doc comment above it): the
// dashboard's editor reads these same files for its completion (dashboard/build.mjs).

/** `context.webtask`: the hook's webtask context. */
interface WebtaskContext {
  /** The hook's secrets, by name (set in hookgate.toml or through the management API; values never shown back). */
  secrets: { [name: string]: string };
}

/** The callback every hook must call exactly once: `cb(error)` or `cb(null, result)`. */
type HookCallback<Result> = (error?: Error | string | null, result?: Result) => void;

/** credentials-exchange: answers 400 `{"error":"invalid_scope"}` with the message. */
declare class InvalidScopeError extends Error {
  constructor(message: string);
}

/** credentials-exchange: answers 400 `{"error":"invalid_request"}` with the message. */
declare class InvalidRequestError extends Error {
  constructor(message: string);
}

/** credentials-exchange: answers 500 `{"error":"server_error"}` with the message. */
declare class ServerError extends Error {
  constructor(message: string);
}

/** pre-user-registration: denies the signup (400); `userMessage` may be shown to the user, `logMessage` only logged. */
declare class PreUserRegistrationError extends Error {
  constructor(logMessage: string, userMessage?: string);
}

// `module`, `require` and `console` are not declared here: JavaScript files have them already
// (and @types/node's, if a team installs it, would clash with a second declaration).
