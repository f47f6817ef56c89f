//! The load-time probe: every hook's module is evaluated once when its generation loads, so a hook
//! that can never work (a top-level `throw`, a top-level endless loop, `module.exports = 42`, a
//! package that throws when required) is refused by `hookgate check` and by hot reload instead
//! of failing every request.
//!
//! How: one scratch worker per hook (its own QuickJS runtime, the real globals, `require`, the
//! configured memory and stack limits), on a thread of its own, evaluating the module under a
//! short deadline ([`LOAD_DEADLINE`]); then the export's shape is checked. Module-scope side effects do not
//! leave the probe: outbound requests get a refusing egress ([`Egress::refusing`]: nothing is
//! sent), the event loop is never run (timers never fire, promise jobs never run), and the runtime
//! is dropped after, so nothing reaches the workers that serve requests — they evaluate the
//! module again on their first call, as before.
//! Owns: what "a module that loads" means for each [`Shape`] and the text of its load-time
//! problems. Must not touch: the worker pool, triggers (which shape a trigger's hooks must
//! export is `hooks::probe`'s to say), or any generation's state (callers turn problems into a
//! rejected generation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rquickjs::{Ctx, Value};

use super::compile::locate_in_stack;
use super::egress::Egress;
use super::globals::crash_kind;
use super::worker::{Limits, Worker};
use super::Script;
use crate::config::HooksConfig;

/// The time a module gets to evaluate at load, whatever the hook's timeout. Evaluating a module
/// takes milliseconds; what needs longer is a loop. Not the hook's own timeout, even when shorter
/// (a module slower than that fails every call): a load on a machine busy serving could then
/// refuse a good hook, and an unchanged file is not looked at again until it changes.
/// Debug builds get 6 s: their QuickJS is compiled without optimisation, and the slowest package
/// the node-compat suite loads (unirest) took 1.4 s there on a busy 2-core machine.
pub(crate) const LOAD_DEADLINE: Duration = if cfg!(debug_assertions) {
    Duration::from_secs(6)
} else {
    Duration::from_secs(2)
};

/// What a module must export (the caller says which, from the hook's trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Auth0 Hooks: `module.exports = function (..., cb) { ... }`.
    Function,
    /// A Hook's function, or an Auth0 Action: exports whose member of this name
    /// (`onExecuteCredentialsExchange`...) is a function.
    FunctionOrMember(&'static str),
}

/// What a module that loads exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probed {
    /// A function (a Hook).
    Function,
    /// An object with the [`Shape::FunctionOrMember`] member as a function (an Action).
    Member,
    /// Why the module cannot work (`file[:line:col]: ...`).
    Problem(String),
}

/// What `exports` is for `shape`, or why it does not have it.
fn shape_of(shape: Shape, exports: &Value<'_>) -> Result<Probed, String> {
    match shape {
        Shape::Function | Shape::FunctionOrMember(_) if exports.is_function() => Ok(Probed::Function),
        Shape::Function => Err(format!(
            "module.exports is {}, not a function: a hook file must set module.exports = function (...) {{ ... }}",
            describe(exports)
        )),
        Shape::FunctionOrMember(member) => {
            let found = exports
                .as_object()
                .and_then(|o| o.get::<_, Value>(member).ok());
            match found {
                Some(f) if f.is_function() => Ok(Probed::Member),
                Some(f) if !f.is_undefined() => Err(format!(
                    "exports.{member} is {}, not a function: an Action exports its handler as exports.{member} = async (event, api) => {{ ... }}",
                    describe(&f)
                )),
                _ => Err(format!(
                    "module.exports is {}, not a function: a Hook sets module.exports = function (...) {{ ... }}; an Action sets exports.{member} = async (event, api) => {{ ... }}",
                    describe(exports)
                )),
            }
        }
    }
}

fn describe(v: &Value<'_>) -> String {
    if v.is_undefined() {
        "undefined".into()
    } else if v.is_null() {
        "null".into()
    } else if v.is_array() {
        "an array".into()
    } else if v.is_object() {
        let keys: Vec<String> = v
            .as_object()
            .map(|o| o.keys::<String>().flatten().take(5).collect())
            .unwrap_or_default();
        if keys.is_empty() {
            "an empty object".into()
        } else {
            format!("an object (keys: {})", keys.join(", "))
        }
    } else if v.is_string() {
        "a string".into()
    } else if v.is_bool() {
        "a boolean".into()
    } else if v.is_number() {
        "a number".into()
    } else {
        format!("a {}", v.type_name())
    }
}

/// Evaluate every script's module and check it exports its [`Shape`]: one [`Probed`] per
/// script, in order (a problem reads `file:line:col: ...` where the failure has a place).
/// Blocks until done.
pub fn probe(cfg: &HooksConfig, scripts: &[(Arc<Script>, Shape)]) -> Vec<Probed> {
    if scripts.is_empty() {
        return Vec::new();
    }
    let limits = Limits::from_config(cfg);
    let egress = Egress::refusing(&cfg.egress);
    let scripts = scripts.to_vec();
    let scripts_len = scripts.len();
    // QuickJS checks its stack limit against the real native stack: a thread sized as a worker's.
    let stack = limits.stack_bytes + (16 << 20);
    let run = move || {
        scripts
            .iter()
            .map(|(hook, shape)| probe_one(hook, *shape, &limits, &egress))
            .collect::<Vec<_>>()
    };
    match std::thread::Builder::new()
        .name("hookgate-probe".into())
        .stack_size(stack)
        .spawn(run)
        .map(|t| t.join())
    {
        Ok(Ok(probed)) => probed,
        Ok(Err(_)) => {
            vec![
                Probed::Problem("evaluating the hooks at load panicked; see the log".into());
                scripts_len
            ]
        }
        Err(e) => vec![
            Probed::Problem(format!(
                "cannot start a thread to evaluate the hooks at load: {e}"
            ));
            scripts_len
        ],
    }
}

fn probe_one(hook: &Arc<Script>, shape: Shape, limits: &Limits, egress: &Egress) -> Probed {
    let file = hook.file.display().to_string();
    let budget = LOAD_DEADLINE;
    let started = Instant::now();
    // A scratch worker: its runtime and every value of the module go when it is dropped.
    let mut worker = Worker::new(limits.clone(), egress.clone());
    // Stack traces name modules as hooks see them (`/hooks/...`); the operator is told the file
    // on disk. `None` for a frame outside the hook's modules (a builtin, the glue).
    let real_file = |f: &str| {
        hook.program
            .modules
            .values()
            .find(|m| m.filename == f && !m.key.starts_with("builtin:"))
            .map(|m| m.key.clone())
    };
    let outcome = worker.evaluate(hook, started + budget, |ctx, exports, interrupted| {
        if interrupted {
            return Probed::Problem(format!(
                "{file}: the module did not finish evaluating within {} ms at load (an endless loop at the top level?)",
                budget.as_millis()
            ));
        }
        match exports {
            Ok(v) => shape_of(shape, &v).unwrap_or_else(|p| Probed::Problem(format!("{file}: {p}"))),
            Err(e) => Probed::Problem(thrown(ctx, e, &file, &real_file)),
        }
    });
    let probed = outcome.unwrap_or_else(|e| {
        Probed::Problem(format!("{file}: cannot evaluate the module at load: {e}"))
    });
    tracing::debug!(hook = %hook.name, ms = started.elapsed().as_secs_f64() * 1000.0, ok = !matches!(probed, Probed::Problem(_)), "hook module evaluated at load");
    probed
}

/// An exception thrown while the module evaluated, located at its first frame in a module of the
/// hook (the hook file or a package it requires).
fn thrown(
    ctx: &Ctx<'_>,
    e: rquickjs::Error,
    file: &str,
    real_file: &dyn Fn(&str) -> Option<String>,
) -> String {
    if !e.is_exception() {
        return format!("{file}: the module failed while evaluating at load: {e}");
    }
    let exc = ctx.catch();
    let (class, message, stack) = match exc.as_exception() {
        Some(x) => (
            x.get::<_, String>("name")
                .unwrap_or_else(|_| "Error".into()),
            x.message().unwrap_or_default(),
            x.stack().unwrap_or_default(),
        ),
        None => (
            "thrown value".into(),
            exc.as_string()
                .and_then(|s| s.to_string().ok())
                .unwrap_or_else(|| describe(&exc)),
            String::new(),
        ),
    };
    if let Some(kind) = crash_kind(&message) {
        return format!("{file}: {kind} while the module evaluated at load");
    }
    let what = format!("{class}: {message} (thrown while the module evaluated at load)");
    let located = locate_in_stack(&stack, |f| real_file(f).is_some())
        .and_then(|(at, line, column)| Some((real_file(&at)?, line, column)));
    match located {
        Some((at, line, column)) if at == file => format!("{at}:{line}:{column}: {what}"),
        Some((at, line, column)) => format!("{file}: {at}:{line}:{column}: {what}"),
        None => format!("{file}: {what}"),
    }
}
