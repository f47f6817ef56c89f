//! hookgate's built-in modules, found by `require('name')` (or `node:name`) before `node_modules`.
//!
//! Owns: the one table of built-ins — Node's pure-JS core modules and the stand-ins for those
//! that need the machine. The big ones (`buffer`, `events`, `stream`, `util`, `url`, `assert`...)
//! are the browserify polyfills bundled by `vendor/node-builtins/build.sh` into `node/` (generated,
//! committed, so builds never need npm); the small ones are hookgate's own files here. Built-ins
//! require each other with literal `require('name')` calls, resolved against this table only.
//! `http`, `https`, `zlib`, `crypto` and the WHATWG globals they rely on belong to the natives
//! work, not here.
//! Must not touch: resolution rules (see `program.rs`).

/// One built-in module.
#[derive(Debug)]
pub struct Builtin {
    /// The name hooks `require`; `node:<name>` finds it too. Node's subpath names
    /// (`stream/promises`) are names like any other.
    pub name: &'static str,
    /// CommonJS source.
    pub source: &'static str,
}

macro_rules! builtins {
    ($($name:literal => $file:literal),* $(,)?) => {
        &[$(Builtin { name: $name, source: include_str!($file) }),*]
    };
}

/// Every built-in module.
pub static BUILTINS: &[Builtin] = builtins![
    // Bundled polyfills (generated; see vendor/node-builtins).
    "assert" => "node/assert.js",
    "buffer" => "node/buffer.js",
    "events" => "node/events.js",
    "path" => "node/path.js",
    "punycode" => "node/punycode.js",
    "stream" => "node/stream.js",
    "string_decoder" => "node/string_decoder.js",
    "url" => "node/url.js",
    "util" => "node/util.js",
    // Node's subpath aliases.
    "assert/strict" => "assert_strict.js",
    "path/posix" => "path_posix.js",
    "dns/promises" => "dns_promises.js",
    "stream/promises" => "stream_promises.js",
    "timers/promises" => "timers_promises.js",
    "util/types" => "util_types.js",
    // hookgate's own; http, https, zlib and crypto over the host's client and natives.
    "aws-sdk" => "aws-sdk.js",
    "crypto" => "crypto.js",
    // net, tls and dns over the host's sockets and resolver (src/engine/sockets.rs).
    "dns" => "dns.js",
    "net" => "net.js",
    "tls" => "tls.js",
    // What node-redis v5 loads besides them.
    "diagnostics_channel" => "diagnostics_channel.js",
    "perf_hooks" => "perf_hooks.js",
    "http" => "http.js",
    "https" => "https.js",
    "os" => "os.js",
    "process" => "process.js",
    "querystring" => "querystring.js",
    "timers" => "timers.js",
    "tty" => "tty.js",
    "zlib" => "zlib.js",
    // Requirable, but every function throws ERR_HOOKGATE_UNSUPPORTED.
    "_hookgate/unsupported" => "unsupported.js",
    "child_process" => "child_process.js",
    "cluster" => "cluster.js",
    "dgram" => "dgram.js",
    "fs" => "fs.js",
    "http2" => "http2.js",
    "vm" => "vm.js",
    "worker_threads" => "worker_threads.js",
];

/// Built-ins the globals load (`Buffer` is `buffer`'s, `process` is an `events` emitter, `console`
/// formats with `util`): every program carries them, whether or not the hook requires them.
pub static GLOBALS_NEED: &[&str] = &["buffer", "events", "util"];

/// The built-in called `name`, if any.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::program::scan_requires;

    /// A built-in resolves its requires against built-ins only, so one that names a module not in
    /// the table would fail at run time in every hook that loads it.
    #[test]
    fn builtins_require_only_builtins() {
        let mut missing = Vec::new();
        for b in BUILTINS {
            for (spec, line) in scan_requires(b.source) {
                if find(spec.strip_prefix("node:").unwrap_or(&spec)).is_none() {
                    missing.push(format!("{}:{line}: require('{spec}')", b.name));
                }
            }
        }
        // The natives work (http, https, zlib, crypto) is not on this branch yet; no built-in may
        // need those either until it is.
        assert!(missing.is_empty(), "unresolved: {missing:#?}");
    }

    #[test]
    fn names_are_unique() {
        for (i, b) in BUILTINS.iter().enumerate() {
            assert!(
                BUILTINS[i + 1..].iter().all(|o| o.name != b.name),
                "{}",
                b.name
            );
        }
        for name in GLOBALS_NEED {
            assert!(find(name).is_some(), "{name}");
        }
    }
}
