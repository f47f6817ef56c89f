//! The globals a hook sees, each a small module: `errors` (InvalidScopeError, ...), `console`,
//! `timers`, `io` (outbound requests in flight), `fetch`, `text` (TextEncoder/TextDecoder), `url`
//! (URL/URLSearchParams), `require`, `process` (with `Buffer`), and `invoke` (the cb contract);
//! first of all `primordials`, private copies of the built-ins the others call, so a hook that
//! replaces `Function.prototype.apply` or `Array.prototype.push` cannot break hookgate's own code.
//! Each is a JS file evaluated once
//! per context as `(function (native, globalThis) { ... })`, returning its host-facing functions;
//! `native` holds the Rust functions installed here.
//!
//! Owns: what exists in a hook's global scope. QuickJS without quickjs-libc has no `std`/`os`
//! modules, so JS gets no filesystem, process or environment access; nothing here adds any
//! (`process` is a description, and `process.env` starts empty on every call).
//! Must not touch: the event loop (worker.rs drives timers and fetch completions).

use std::time::{Duration, Instant};

use rquickjs::{Ctx, Function, Object, Persistent, Value};

use super::bytes::bytes_in;
use super::compile::{compile_script, load_commonjs};
use super::egress::Request;
use super::program::ModuleCode;
use super::values::NotDirect;
use super::worker::{Settled, Shared};
use super::{HookError, HookFailure};

/// The JS parts, in evaluation order. Adding a global = one JS file + one line here.
const PARTS: &[(&str, &str)] = &[
    // First: the private copies of built-ins every other part uses.
    ("primordials", include_str!("primordials.js")),
    ("errors", include_str!("errors.js")),
    ("console", include_str!("console.js")),
    ("timers", include_str!("timers.js")),
    ("io", include_str!("io.js")),
    ("fetch", include_str!("fetch.js")),
    ("text", include_str!("text.js")),
    ("url", include_str!("url.js")),
    ("require", include_str!("require.js")),
    ("process", include_str!("process.js")),
    ("invoke", include_str!("invoke.js")),
];

/// [`PARTS`] as bytecode, compiled once per process: every context (each hook on each worker,
/// and the load-time probe's, at each generation) would otherwise parse the same 45 KB of JS.
/// `None` for a part that did not compile, which then evaluates from source and reports its
/// error where it always did.
fn compiled_parts() -> &'static [Option<Vec<u8>>] {
    static COMPILED: std::sync::OnceLock<Vec<Option<Vec<u8>>>> = std::sync::OnceLock::new();
    COMPILED.get_or_init(|| {
        PARTS
            .iter()
            // Named as `ctx.eval` names a script, so stack traces read as they always did.
            .map(|(_, src)| compile_script("eval_script", src).ok())
            .collect()
    })
}

/// Host-facing functions of one context.
pub(crate) struct Api {
    pub invoke: Persistent<Function<'static>>,
    pub require_main: Persistent<Function<'static>>,
    pub fire_timer: Persistent<Function<'static>>,
    pub io_done: Persistent<Function<'static>>,
    /// Forget timers (by id) of calls that ended.
    pub drop_timers: Persistent<Function<'static>>,
    /// Forget requests (by id) of calls that ended.
    pub drop_requests: Persistent<Function<'static>>,
    /// An event of a socket or lookup (`sockets.rs`), and sockets closed with their call.
    pub sock_event: Persistent<Function<'static>>,
    pub sock_orphans: Persistent<Function<'static>>,
}

/// Install the globals in `ctx`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, shared: &Shared) -> rquickjs::Result<Api> {
    let native = Object::new(ctx.clone())?;
    install_natives(ctx, &native, shared)?;
    let g = ctx.globals();
    g.set("global", g.clone())?;
    let mut parts = std::collections::HashMap::new();
    let compiled = compiled_parts();
    for ((name, src), code) in PARTS.iter().zip(compiled.iter()) {
        let f: Function = match code {
            Some(code) => load_commonjs(ctx, code)?.get()?,
            None => ctx.eval(*src)?,
        };
        let out: Value = f.call((native.clone(), g.clone()))?;
        parts.insert(*name, out);
    }
    let get = |part: &str, f: &str| -> rquickjs::Result<Persistent<Function<'static>>> {
        let obj = parts[part]
            .as_object()
            .cloned()
            .ok_or_else(|| rquickjs::Error::new_from_js("undefined", "object"))?;
        let func: Function = obj.get(f)?;
        Ok(Persistent::save(ctx, func))
    };
    Ok(Api {
        invoke: get("invoke", "invoke")?,
        require_main: get("require", "main")?,
        fire_timer: get("timers", "fire")?,
        io_done: get("io", "done")?,
        drop_timers: get("timers", "drop")?,
        drop_requests: get("io", "drop")?,
        sock_event: get("io", "sockEvent")?,
        sock_orphans: get("io", "sockOrphans")?,
    })
}

fn install_natives<'js>(
    ctx: &Ctx<'js>,
    native: &Object<'js>,
    shared: &Shared,
) -> rquickjs::Result<()> {
    native.set("nodeVersion", shared.node_version())?;
    let s = shared.clone();
    native.set(
        "log",
        Function::new(ctx.clone(), move |level: i32, msg: String| {
            s.log(level, msg)
        })?,
    )?;

    let s = shared.clone();
    native.set(
        "timerAdd",
        Function::new(ctx.clone(), move |id: f64, delay: f64| {
            s.add_timer(id as u64, Duration::from_millis(delay.max(0.0) as u64));
        })?,
    )?;
    let s = shared.clone();
    native.set(
        "timerClear",
        Function::new(ctx.clone(), move |id: f64| s.clear_timer(id as u64))?,
    )?;
    let s = shared.clone();
    native.set(
        "timerRef",
        Function::new(ctx.clone(), move |id: f64, keep: bool| {
            s.ref_timer(id as u64, keep)
        })?,
    )?;

    let s = shared.clone();
    native.set(
        "requestStart",
        Function::new(
            ctx.clone(),
            move |id: f64,
                  url: String,
                  method: String,
                  headers: String,
                  body: Value<'js>,
                  follow: bool|
                  -> rquickjs::Result<()> {
                let headers: Vec<(String, String)> =
                    serde_json::from_str(&headers).unwrap_or_default();
                let body = if body.is_undefined() || body.is_null() {
                    None
                } else {
                    Some(bytes_in(&body)?)
                };
                s.start_request(
                    id as u64,
                    Request {
                        url,
                        method,
                        headers,
                        body,
                        follow,
                    },
                );
                Ok(())
            },
        )?,
    )?;
    let s = shared.clone();
    native.set(
        "requestCancel",
        Function::new(ctx.clone(), move |id: f64| s.cancel_request(id as u64))?,
    )?;
    let s = shared.clone();
    native.set(
        "uncaught",
        Function::new(ctx.clone(), move |error: Value<'js>| {
            let (class, message) = match error.as_object() {
                Some(o) => (
                    o.get::<_, String>("name")
                        .unwrap_or_else(|_| "Error".into()),
                    o.get::<_, String>("message").unwrap_or_default(),
                ),
                None => (
                    "string".into(),
                    error
                        .as_string()
                        .and_then(|s| s.to_string().ok())
                        .unwrap_or_default(),
                ),
            };
            s.uncaught(class, message);
        })?,
    )?;
    super::natives::install(ctx, native)?;
    super::sockets_js::install(ctx, native, shared)?;

    let s = shared.clone();
    native.set(
        "settle",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, seq: f64, ok: bool, value: Value<'js>| -> rquickjs::Result<()> {
                let settled = if ok {
                    success(&ctx, value, s.max_response_bytes())
                } else {
                    failure(&value)
                };
                s.settle_seq(seq as u64, settled);
                Ok(())
            },
        )?,
    )?;
    let s = shared.clone();
    native.set(
        "currentCall",
        Function::new(ctx.clone(), move || s.current_call() as f64)?,
    )?;
    let s = shared.clone();
    native.set(
        "callLive",
        Function::new(ctx.clone(), move |seq: f64| s.call_live(seq as u64))?,
    )?;

    let s = shared.clone();
    native.set(
        "moduleInfo",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, key: String| -> rquickjs::Result<Vec<Value<'js>>> {
                let module = s
                    .module(&key)
                    .ok_or_else(|| rquickjs::Error::new_from_js("string", "module"))?;
                let dir = std::path::Path::new(&module.filename)
                    .parent()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let (kind, payload) = match &module.code {
                    ModuleCode::Script(_) => ("script", Value::new_undefined(ctx.clone())),
                    ModuleCode::Json(text) => (
                        "json",
                        rquickjs::String::from_str(ctx.clone(), text)?.into_value(),
                    ),
                };
                Ok(vec![
                    rquickjs::String::from_str(ctx.clone(), kind)?.into_value(),
                    rquickjs::String::from_str(ctx.clone(), &module.filename)?.into_value(),
                    rquickjs::String::from_str(ctx.clone(), &dir)?.into_value(),
                    payload,
                ])
            },
        )?,
    )?;
    let s = shared.clone();
    native.set(
        "moduleLoad",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, key: String| -> rquickjs::Result<Value<'js>> {
                let module = s
                    .module(&key)
                    .ok_or_else(|| rquickjs::Error::new_from_js("string", "module"))?;
                match &module.code {
                    ModuleCode::Script(code) => load_commonjs(&ctx, code),
                    ModuleCode::Json(_) => Err(rquickjs::Error::new_from_js("json", "script")),
                }
            },
        )?,
    )?;
    let s = shared.clone();
    native.set(
        "moduleResolve",
        Function::new(ctx.clone(), move |from: String, spec: String| {
            s.module(&from).and_then(|m| m.requires.get(&spec).cloned())
        })?,
    )?;
    Ok(())
}

/// `cb(null, value)`: the value as JSON (`undefined` -> null), refused past the size limit.
/// Built directly from the JS value when it is plain data, else through `JSON.stringify`.
fn success<'js>(ctx: &Ctx<'js>, value: Value<'js>, max: usize) -> Settled {
    match super::values::from_js(&value, max) {
        Ok(v) => return Ok(v),
        Err(NotDirect::TooBig) => return Err(too_big(max)),
        Err(NotDirect::Exotic) => {}
    }
    let json = match ctx.json_stringify(value) {
        Ok(Some(s)) => match s.to_string() {
            Ok(s) => s,
            Err(e) => {
                return Err(HookError::Crashed(format!(
                    "the hook's result could not be read: {e}"
                )))
            }
        },
        Ok(None) => return Ok(serde_json::Value::Null),
        Err(_) => {
            let exc = ctx.catch();
            let message = exc
                .as_exception()
                .and_then(|e| e.message())
                .unwrap_or_else(|| "not serializable".into());
            if let Some(kind) = crash_kind(&message) {
                return Err(HookError::Crashed(kind));
            }
            return Err(HookError::Failed(HookFailure {
                class: "TypeError".into(),
                message: format!("the value passed to cb cannot be turned into JSON: {message}"),
                user_message: None,
            }));
        }
    };
    if json.len() > max {
        return Err(too_big(max));
    }
    serde_json::from_str(&json)
        .map_err(|e| HookError::Crashed(format!("the hook's result is not valid JSON: {e}")))
}

fn too_big(max: usize) -> HookError {
    HookError::Crashed(format!(
        "the hook's result is over {max} bytes of JSON, the limit ([hooks] max_response_bytes)"
    ))
}

/// `cb(err)`: `{ class, message, user_message }` built by invoke.js's `describe`.
fn failure(value: &Value<'_>) -> Settled {
    let Some(obj) = value.as_object() else {
        return Err(HookError::Failed(HookFailure {
            class: "Error".into(),
            message: "unknown error".into(),
            user_message: None,
        }));
    };
    let class: String = obj.get("class").unwrap_or_else(|_| "Error".into());
    let message: String = obj.get("message").unwrap_or_default();
    let user_message: Option<String> = obj.get("user_message").unwrap_or(None);
    if let Some(kind) = crash_kind(&message) {
        return Err(HookError::Crashed(kind));
    }
    Err(HookError::Failed(HookFailure {
        class,
        message,
        user_message,
    }))
}

/// QuickJS reports resource exhaustion as ordinary (catchable) errors; the engine treats them as
/// crashes so the worker is recycled.
pub(crate) fn crash_kind(message: &str) -> Option<String> {
    if message.contains("out of memory") {
        Some("out of memory ([hooks] memory_limit_mb)".into())
    } else if message.contains("stack overflow") || message.contains("call stack size exceeded") {
        Some("stack overflow ([hooks] stack_limit_kb)".into())
    } else {
        None
    }
}

/// The time left before `deadline`, for outbound requests.
pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ctx.eval` compiled the parts in strict mode; their bytecode is compiled without the flag
    /// (`compile_script`), so each part must say so itself, first thing in its function.
    #[test]
    fn every_part_is_strict_on_its_own() {
        for (name, src) in PARTS {
            let body = src
                .split_once("\n(function (native, g) {")
                .map(|(_, rest)| rest.trim_start())
                .unwrap_or_default();
            assert!(
                body.starts_with("'use strict'") || body.starts_with("\"use strict\""),
                "{name}.js: its function must begin with 'use strict'"
            );
        }
    }
}
