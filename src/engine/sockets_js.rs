//! The natives `net`, `tls` and `dns` call (through `require.native` and `io.js`): open a socket,
//! hand it an operation, start a lookup. Each checks its arguments and passes on to the worker
//! ([`Shared`]), which keeps the handle in the current call's state.
//!
//! Owns: the JS-facing names and argument shapes of the socket natives.
//! Must not touch: policy (egress and slots are `sockets.rs`'s) or the event loop (`worker.rs`).

use rquickjs::function::Opt;
use rquickjs::{Ctx, Function, Object, Value};

use super::bytes::bytes_in;
use super::sockets::{Op, Query, TlsOptions};
use super::worker::Shared;

/// Install `sockConnect`, `sockOp` and `dnsLookup` on `native`.
pub(crate) fn install<'js>(
    ctx: &Ctx<'js>,
    native: &Object<'js>,
    shared: &Shared,
) -> rquickjs::Result<()> {
    let s = shared.clone();
    native.set(
        "sockConnect",
        Function::new(
            ctx.clone(),
            move |id: f64,
                  host: String,
                  port: f64,
                  tls: Opt<Option<String>>|
                  -> rquickjs::Result<()> {
                let tls = match tls.0.flatten() {
                    Some(text) => Some(serde_json::from_str::<TlsOptions>(&text).map_err(|e| {
                        rquickjs::Error::new_from_js_message("string", "tls options", e.to_string())
                    })?),
                    None => None,
                };
                let port = if (0.0..=65535.0).contains(&port) {
                    port as u16
                } else {
                    0
                };
                s.start_socket(id as u64, host, port, tls);
                Ok(())
            },
        )?,
    )?;
    let s = shared.clone();
    native.set(
        "sockOp",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  id: f64,
                  kind: String,
                  arg: Opt<Value<'js>>,
                  extra: Opt<Value<'js>>|
                  -> rquickjs::Result<()> {
                let id = id as u64;
                let undefined = || Value::new_undefined(ctx.clone());
                let arg = arg.0.unwrap_or_else(undefined);
                let extra = extra.0.unwrap_or_else(undefined);
                let op = match kind.as_str() {
                    "write" => Op::Write(arg.as_number().unwrap_or(0.0) as u64, bytes_in(&extra)?),
                    "end" => Op::End,
                    "pause" => Op::Pause,
                    "resume" => Op::Resume,
                    "nodelay" => Op::NoDelay(arg.as_bool().unwrap_or(true)),
                    "upgrade" => {
                        let text = arg
                            .as_string()
                            .map(|s| s.to_string())
                            .transpose()?
                            .unwrap_or_default();
                        Op::Upgrade(serde_json::from_str(&text).unwrap_or_default())
                    }
                    "ref" => {
                        s.socket_ref(id, arg.as_bool().unwrap_or(true));
                        return Ok(());
                    }
                    "destroy" => {
                        s.socket_close(id, arg.as_bool().unwrap_or(false));
                        return Ok(());
                    }
                    other => {
                        return Err(rquickjs::Error::new_from_js_message(
                            "string",
                            "socket op",
                            format!("unknown socket op `{other}`"),
                        ))
                    }
                };
                s.socket_op(id, op);
                Ok(())
            },
        )?,
    )?;
    let s = shared.clone();
    native.set(
        "dnsLookup",
        Function::new(
            ctx.clone(),
            move |id: f64, host: String, kind: String, family: f64| {
                let query = match kind.as_str() {
                    "resolve4" => Query::Resolve4,
                    "resolve6" => Query::Resolve6,
                    _ => Query::Lookup(if family == 4.0 || family == 6.0 {
                        family as u8
                    } else {
                        0
                    }),
                };
                s.start_lookup(id as u64, host, query);
            },
        )?,
    )?;
    Ok(())
}
