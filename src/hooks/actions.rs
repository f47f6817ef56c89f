//! Auth0 Actions beside Hooks. A file in `hooks/<trigger>/` that exports
//! `onExecute<Trigger>` (`exports.onExecuteCredentialsExchange = async (event, api) => {}`) is an
//! Action; one that sets `module.exports` to a function is a Hook. Both are found, ordered,
//! targeted, reloaded and run in the same chain.
//!
//! How an Action runs: its program gets a new main module, the adapter in `actions/shim.js`,
//! which `require`s the Action's own module and exports a Hook-shaped function. The points call
//! it with their trigger's Hook arguments (and, for an Action, the request's facts: see
//! [`facts`]); the adapter builds Auth0's `event` from them, gives the handler an `api` that
//! records what it asks for, and answers as a Hook would (a token's scope and claims, a signup's
//! metadata, Auth0's error classes). So the points, the outbox, the Runner and the run records
//! treat both kinds alike, and an Action gives the same result as the Hook it replaces.
//!
//! Owns: the trigger → export-name table, the adapter's source and Auth0's Actions starters;
//! `migrate`: the Action equivalent of a Hook's source (`hookgate migrate`) and the outcome two
//! runs are compared on.
//! Must not touch: requests (the points build arguments) or running JS (the engine).

pub mod migrate;

use serde_json::{json, Map, Value};

use crate::config::Trigger;
use crate::engine::program::{Program, ProgramError};

/// Which calling convention a hook file follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// `module.exports = function (..., cb) {}`.
    #[default]
    Hook,
    /// `exports.onExecute<Trigger> = async (event, api) => {}`.
    Action,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Hook => "hook",
            Kind::Action => "action",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The export an Action of `trigger` defines.
pub fn export_name(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::CredentialsExchange => "onExecuteCredentialsExchange",
        Trigger::PreUserRegistration => "onExecutePreUserRegistration",
        Trigger::PostUserRegistration => "onExecutePostUserRegistration",
        Trigger::PostChangePassword => "onExecutePostChangePassword",
        Trigger::SendPhoneMessage => "onExecuteSendPhoneMessage",
    }
}

/// What a file's source says it is, without running it: an Action when it names its trigger's
/// `onExecute…` export. For listings (the management API); a generation's load decides for
/// real, by evaluating the module.
pub fn kind_of_source(source: &str, trigger: Trigger) -> Kind {
    let name = export_name(trigger);
    let named = source.match_indices(name).any(|(at, _)| {
        let before = source[..at].trim_end();
        let after = source[at + name.len()..].trim_start();
        (before.ends_with('.') || before.ends_with('{') || before.ends_with(','))
            && (after.starts_with('=') || after.starts_with(':') || after.starts_with('('))
    });
    if named {
        Kind::Action
    } else {
        Kind::Hook
    }
}

const SHIM: &str = include_str!("actions/shim.js");

/// The name the adapter `require`s the Action's module by.
const ALIAS: &str = "__action__";

/// Which `api.cache` store an Action uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheScope {
    /// The trigger's, shared by every Action of the trigger in the process.
    Trigger,
    /// The Runner's own for the trigger: trying an Action never reads or changes what the
    /// Actions serving requests cached.
    Runner,
}

/// `program` (an Action's) with the adapter as its main module.
pub fn adapt(
    program: &Program,
    trigger: Trigger,
    cache: CacheScope,
) -> Result<Program, ProgramError> {
    let scope = match cache {
        CacheScope::Trigger => trigger.id().to_owned(),
        CacheScope::Runner => format!("runner:{}", trigger.id()),
    };
    let source = format!(
        "const TRIGGER = {:?}, CACHE_SCOPE = {scope:?};\n{SHIM}",
        trigger.id()
    );
    // A `builtin:` key: the adapter is hookgate's code, and reaches the natives (the shared
    // `api.cache`) as the built-in modules do.
    program.with_entry(
        &format!("builtin:action-adapter:{}", program.main),
        "hookgate:action-adapter.js",
        &source,
        ALIAS,
    )
}

/// What an Action's `event.request` (and `event.tenant`) reads that a Hook's arguments do not
/// carry: the client's address, `Host`, `User-Agent`, language and method, and the tenant
/// name. Passed after the Hook arguments to Actions only, so Hooks see exactly Auth0's arguments.
pub fn facts(
    ip: Option<String>,
    hostname: Option<&str>,
    user_agent: Option<&str>,
    language: Option<String>,
    method: &str,
    tenant: &str,
) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    };
    put("ip", ip);
    put("hostname", hostname.map(str::to_owned));
    put("user_agent", user_agent.map(str::to_owned));
    put("language", language);
    put("method", Some(method.to_owned()));
    put("tenant", Some(tenant.to_owned()));
    Value::Object(m)
}

/// Auth0's Actions starter for `trigger` (`hookgate new --actions`).
pub fn starter(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::CredentialsExchange => include_str!("starters/actions/credentials-exchange.js"),
        Trigger::PreUserRegistration => include_str!("starters/actions/pre-user-registration.js"),
        Trigger::PostUserRegistration => {
            include_str!("starters/actions/post-user-registration.js")
        }
        Trigger::PostChangePassword => include_str!("starters/actions/post-change-password.js"),
        Trigger::SendPhoneMessage => include_str!("starters/actions/send-phone-message.js"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_naming_its_triggers_export_reads_as_an_action() {
        let t = Trigger::CredentialsExchange;
        for action in [
            "exports.onExecuteCredentialsExchange = async (event, api) => {};",
            "module.exports = { onExecuteCredentialsExchange: async function (event, api) {} };",
            "module.exports = {\n  onExecuteCredentialsExchange (event, api) {}\n};",
        ] {
            assert_eq!(kind_of_source(action, t), Kind::Action, "{action}");
        }
        for hook in [
            "module.exports = function (client, scope, audience, context, cb) { cb(null, {}); };",
            "// TODO: move to onExecuteCredentialsExchange\nmodule.exports = function (a, b, c, d, cb) {};",
            "exports.onExecutePostLogin = async (event, api) => {};",
        ] {
            assert_eq!(kind_of_source(hook, t), Kind::Hook, "{hook}");
        }
    }
}
