//! hookgate's built-in modules, found by `require('name')` before `node_modules`.
//!
//! Owns: the one table of built-ins. Each built-in is a small CommonJS file next to this one,
//! compiled at load like any hook file, so adding a module (Node's `url`, `events`, `buffer`... in
//! the Node-compatibility issue) is one file plus one line below. A built-in that needs Rust gets
//! its native functions through the same `native` object the globals use.
//! Must not touch: resolution rules (see `program.rs`).

/// One built-in module.
#[derive(Debug)]
pub struct Builtin {
    /// The name hooks `require`; `node:<name>` finds it too.
    pub name: &'static str,
    /// CommonJS source.
    pub source: &'static str,
}

/// Every built-in module.
pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "assert",
        source: include_str!("assert.js"),
    },
    Builtin {
        name: "aws-sdk",
        source: include_str!("aws-sdk.js"),
    },
    Builtin {
        name: "crypto",
        source: include_str!("crypto.js"),
    },
    Builtin {
        name: "http",
        source: include_str!("http.js"),
    },
    Builtin {
        name: "https",
        source: include_str!("https.js"),
    },
    Builtin {
        name: "zlib",
        source: include_str!("zlib.js"),
    },
];

/// The built-in called `name`, if any.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
