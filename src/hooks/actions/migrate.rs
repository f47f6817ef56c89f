//! `hookgate migrate`'s conversion: the Auth0 Action equivalent of a Hook's source, and the
//! comparison of what the two did on the same payload.
//!
//! Why the generated Action wraps the Hook instead of rewriting it: there is no JavaScript parser
//! in hookgate (and none is added for this), and a rewrite done with patterns would be right only
//! for the hooks the patterns foresaw. So the Action keeps the Hook's function verbatim, as an
//! inner helper of the handler; the handler builds the Hook's arguments from `event` (the
//! migration guide's field table, one line per field), calls it, and turns what it passes to `cb`
//! into `api` calls (`setCustomClaim`, `setTargetScopes`, `setUserMetadata`, `access.deny`, ...).
//! That is correct by construction, whatever the function does with its arguments. On top, the
//! textual patterns whose meaning is certain are rewritten, as the guide asks: the context's
//! `webtask.secrets` becomes `event.secrets` (inside the function, where `event` is in scope and
//! both name the same object), and `require('pkg@1.2.3')` loses its version. What cannot be
//! carried over (`webtask.storage`, `webtask.meta`, the signup's `password`, the SMS context's
//! `factor_type`, a second `module.exports`) is named with its line, and the command refuses.
//! Whether the result really is the same is not argued here but measured: `cli::migrate` runs
//! both through the engine and compares them with [`outcome`].
//!
//! Owns: the JS text of the Action, the list of changes and of what could not be converted, and
//! the per-trigger outcome a comparison looks at. Must not: read or write files, or run JS (the
//! command does both).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::config::Trigger;
use crate::engine::HookError;

use super::export_name;

/// One finding, with the Hook's line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub line: u32,
    pub what: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

/// The Action written for a Hook.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The Action's source.
    pub source: String,
    /// What was rewritten beyond the wrapping (listed in the file's header too).
    pub changes: Vec<Note>,
    /// What could not be converted (each also a `TODO(migrate)` line of the header). Non-empty:
    /// the Action may not behave as the Hook did.
    pub todos: Vec<Note>,
}

/// Why no Action could be written at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconvertible(pub Vec<Note>);

impl std::fmt::Display for Unconvertible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(Note::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

// ---- a small JS lexer: enough to find strings, comments, braces and identifiers ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Punct(u8),
    /// A string or template literal (its raw text, quotes included).
    Str,
    Num,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
    line: u32,
}

impl Token {
    fn is(&self, c: u8) -> bool {
        self.tok == Tok::Punct(c)
    }
    fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(s) => Some(s),
            _ => None,
        }
    }
}

/// Tokens of `src`, comments dropped; template literals are one token each with their `${}`
/// expressions tokenised after it (their identifiers matter for the rewrites).
fn lex(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1u32;
    // Brace depth inside each open template's `${`; a `}` at depth 0 resumes the template.
    let mut templates: Vec<u32> = Vec::new();
    let mut prev_sig: Option<Tok> = None;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i = (i + 2).min(b.len());
            }
            b'\'' | b'"' => {
                let (start, l) = (i, line);
                i += 1;
                while i < b.len() && b[i] != c && b[i] != b'\n' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                out.push(Token {
                    tok: Tok::Str,
                    start,
                    end: i,
                    line: l,
                });
                prev_sig = Some(Tok::Str);
            }
            b'`' => {
                let (start, l) = (i, line);
                i = template_rest(b, i + 1, &mut line, &mut templates);
                out.push(Token {
                    tok: Tok::Str,
                    start,
                    end: i,
                    line: l,
                });
                prev_sig = Some(Tok::Str);
            }
            b'}' if templates.last() == Some(&0) => {
                templates.pop();
                let (start, l) = (i, line);
                i = template_rest(b, i + 1, &mut line, &mut templates);
                out.push(Token {
                    tok: Tok::Str,
                    start,
                    end: i,
                    line: l,
                });
                prev_sig = Some(Tok::Str);
            }
            b'/' if regex_may_start(&prev_sig) => {
                let start = i;
                i += 1;
                let mut class = false;
                while i < b.len() && b[i] != b'\n' {
                    match b[i] {
                        b'\\' => i += 1,
                        b'[' => class = true,
                        b']' => class = false,
                        b'/' if !class => break,
                        _ => {}
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                while i < b.len() && b[i].is_ascii_alphabetic() {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Str,
                    start,
                    end: i,
                    line,
                });
                prev_sig = Some(Tok::Str);
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || b[i] == b'$'
                        || b[i] >= 0x80)
                {
                    i += 1;
                }
                let t = Tok::Ident(src[start..i].to_owned());
                prev_sig = Some(t.clone());
                out.push(Token {
                    tok: t,
                    start,
                    end: i,
                    line,
                });
            }
            _ if c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Num,
                    start,
                    end: i,
                    line,
                });
                prev_sig = Some(Tok::Num);
            }
            _ => {
                if let Some(depth) = templates.last_mut() {
                    if c == b'{' {
                        *depth += 1;
                    } else if c == b'}' {
                        *depth = depth.saturating_sub(1);
                    }
                }
                out.push(Token {
                    tok: Tok::Punct(c),
                    start: i,
                    end: i + 1,
                    line,
                });
                prev_sig = Some(Tok::Punct(c));
                i += 1;
            }
        }
    }
    out
}

/// After a `/`: a regex literal when what came before cannot end an expression.
fn regex_may_start(prev: &Option<Tok>) -> bool {
    match prev {
        None => true,
        Some(Tok::Punct(c)) => b"(,=:[!&|?{};+-*%<>~^".contains(c),
        Some(Tok::Ident(w)) => matches!(
            w.as_str(),
            "return" | "typeof" | "case" | "do" | "else" | "in" | "of" | "void" | "throw"
        ),
        Some(_) => false,
    }
}

/// Scan template text from `i` to its closing backtick (returns after it) or to a `${` (returns
/// after it, with a new expression level pushed).
fn template_rest(b: &[u8], mut i: usize, line: &mut u32, templates: &mut Vec<u32>) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'\n' => *line += 1,
            b'`' => return i + 1,
            b'$' if b.get(i + 1) == Some(&b'{') => {
                templates.push(0);
                return i + 2;
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// The index of the token closing the bracket opened at `open`.
fn closing(toks: &[Token], open: usize) -> Option<usize> {
    let (o, c) = match toks[open].tok {
        Tok::Punct(b'(') => (b'(', b')'),
        Tok::Punct(b'{') => (b'{', b'}'),
        Tok::Punct(b'[') => (b'[', b']'),
        _ => return None,
    };
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open) {
        if t.is(o) {
            depth += 1;
        } else if t.is(c) {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

/// The Hook's function: where its text is, and its parameter names (when simple identifiers).
struct HookFn {
    /// Byte span of the statement `module.exports = <fn>;` (the `;` included when present).
    stmt: (usize, usize),
    /// Byte span of `<fn>`.
    expr: (usize, usize),
    /// Token index range of the function (parameters and body).
    toks: (usize, usize),
    params: Option<Vec<String>>,
    line: u32,
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Simple identifiers between `(` at `open` and its `)`; `None` for destructuring or defaults.
fn params_of(toks: &[Token], open: usize, close: usize) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut expect_name = true;
    for t in &toks[open + 1..close] {
        match (&t.tok, expect_name) {
            (Tok::Ident(n), true) => {
                out.push(n.clone());
                expect_name = false;
            }
            (Tok::Punct(b','), false) => expect_name = true,
            _ => return None,
        }
    }
    Some(out)
}

/// Find the top-level `module.exports = function (...) {...}` (or an arrow function).
fn find_hook_fn(toks: &[Token]) -> Result<HookFn, Vec<Note>> {
    let mut found = Vec::new();
    let mut depth = 0i32;
    for (k, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::Punct(b'{') | Tok::Punct(b'(') | Tok::Punct(b'[') => depth += 1,
            Tok::Punct(b'}') | Tok::Punct(b')') | Tok::Punct(b']') => depth -= 1,
            _ => {}
        }
        if t.ident() == Some("module")
            && toks.get(k + 1).is_some_and(|t| t.is(b'.'))
            && toks.get(k + 2).and_then(Token::ident) == Some("exports")
            && !(k > 0 && toks[k - 1].is(b'.'))
        {
            found.push((k, depth));
        }
    }
    let line_of = |k: usize| toks[k].line;
    let assignment = found.iter().find(|(k, depth)| {
        *depth == 0
            && toks.get(k + 3).is_some_and(|t| t.is(b'='))
            && !toks.get(k + 4).is_some_and(|t| t.is(b'='))
    });
    let Some(&(at, _)) = assignment else {
        let line = found.first().map_or(1, |(k, _)| line_of(*k));
        return Err(vec![Note {
            line,
            what: "no top-level `module.exports = function (...) { ... }`: only a Hook whose module exports its function can be converted".into(),
        }]);
    };
    let mut others: Vec<Note> = found
        .iter()
        .filter(|(k, _)| *k != at)
        .map(|(k, _)| Note {
            line: line_of(*k),
            what: "`module.exports` is used again: the Action's module replaces it, so this use cannot be carried over".into(),
        })
        .collect();
    let first = at + 4;
    let mut k = first;
    if toks.get(k).and_then(Token::ident) == Some("async") {
        k += 1;
    }
    let (params, body_open) = match toks.get(k) {
        Some(t) if t.ident() == Some("function") => {
            k += 1;
            if toks.get(k).is_some_and(|t| t.is(b'*')) {
                others.push(Note { line: toks[k].line, what: "the Hook is a generator function".into() });
                return Err(others);
            }
            if toks.get(k).and_then(Token::ident).is_some() {
                k += 1;
            }
            if !toks.get(k).is_some_and(|t| t.is(b'(')) {
                return Err(vec![Note { line: toks[at].line, what: "module.exports is not a function expression".into() }]);
            }
            let close = closing(toks, k).ok_or_else(|| vec![Note { line: toks[k].line, what: "unbalanced parentheses".into() }])?;
            (params_of(toks, k, close), close + 1)
        }
        Some(t) if t.is(b'(') => {
            let close = closing(toks, k).ok_or_else(|| vec![Note { line: t.line, what: "unbalanced parentheses".into() }])?;
            if !(toks.get(close + 1).is_some_and(|t| t.is(b'=')) && toks.get(close + 2).is_some_and(|t| t.is(b'>'))) {
                return Err(vec![Note { line: toks[at].line, what: "module.exports is not a function expression".into() }]);
            }
            (params_of(toks, k, close), close + 3)
        }
        Some(t) if t.ident().is_some() && toks.get(k + 1).is_some_and(|t| t.is(b'=')) && toks.get(k + 2).is_some_and(|t| t.is(b'>')) => {
            (Some(vec![t.ident().unwrap_or_default().to_owned()]), k + 3)
        }
        _ => {
            return Err(vec![Note {
                line: toks[at].line,
                what: "module.exports is not a function expression (`module.exports = function (...) { ... }`)".into(),
            }])
        }
    };
    if !toks.get(body_open).is_some_and(|t| t.is(b'{')) {
        return Err(vec![Note {
            line: toks[at].line,
            what: "the Hook is an arrow function without a `{ ... }` body".into(),
        }]);
    }
    let body_close = closing(toks, body_open).ok_or_else(|| {
        vec![Note {
            line: toks[body_open].line,
            what: "unbalanced braces".into(),
        }]
    })?;
    let expr = (toks[first].start, toks[body_close].end);
    let stmt_end = match toks.get(body_close + 1) {
        Some(t) if t.is(b';') => t.end,
        Some(t) if t.line == toks[body_close].line && !t.is(b'}') => {
            return Err(vec![Note {
                line: t.line,
                what: "module.exports = <function> is followed by more of the same expression"
                    .into(),
            }])
        }
        _ => toks[body_close].end,
    };
    if !others.is_empty() {
        return Err(others);
    }
    Ok(HookFn {
        stmt: (toks[at].start, stmt_end),
        expr,
        toks: (first, body_close),
        params,
        line: toks[at].line,
    })
}

/// `base`, or `base2`, `base3`, ...: a name the Hook's file does not use.
fn fresh(base: &str, used: &BTreeSet<String>) -> String {
    if !used.contains(base) {
        return base.to_owned();
    }
    (2..)
        .map(|n| format!("{base}{n}"))
        .find(|n| !used.contains(n))
        .expect("some name is free")
}

/// A text edit on the Hook's source.
struct Edit {
    at: (usize, usize),
    with: String,
}

fn apply(src: &str, from: usize, to: usize, edits: &[Edit]) -> String {
    let mut out = String::new();
    let mut pos = from;
    for e in edits.iter().filter(|e| e.at.0 >= from && e.at.1 <= to) {
        out.push_str(&src[pos..e.at.0]);
        out.push_str(&e.with);
        pos = e.at.1;
    }
    out.push_str(&src[pos..to]);
    out
}

/// The Action equivalent of the Hook `source` of `trigger`; `file` names it in the header.
pub fn convert(trigger: Trigger, file: &str, source: &str) -> Result<Conversion, Unconvertible> {
    let toks = lex(source);
    let f = find_hook_fn(&toks).map_err(Unconvertible)?;
    // The names the file may refer to: identifiers, but not property names (`a.event`,
    // `{ event: 1 }`).
    let used: BTreeSet<String> = toks
        .iter()
        .enumerate()
        .filter(|(k, t)| {
            let prev = k.checked_sub(1).map(|p| &toks[p]);
            let key = toks.get(k + 1).is_some_and(|n| n.is(b':'))
                && prev.is_some_and(|p| p.is(b'{') || p.is(b','));
            !prev.is_some_and(|p| p.is(b'.')) && !key && t.ident().is_some()
        })
        .filter_map(|(_, t)| t.ident().map(str::to_owned))
        .collect();
    let names = canonical_names(trigger);
    let arity = names.len();
    // The handler's own names: Auth0's, unless the Hook's file already uses them (its function
    // is defined inside the handler and would see them instead of its own variables).
    let event = fresh("event", &used);
    let api = fresh("api", &used);
    let hook = fresh("hook", &used);
    let call = fresh("callHook", &used);
    let mut reserved = used.clone();
    reserved.extend([event.clone(), api.clone(), hook.clone(), call.clone()]);
    reserved.extend(canonical_names(trigger).iter().map(|n| n.to_string()));
    reserved.extend(f.params.iter().flatten().cloned());
    // The handler's other variables: in the scope the Hook's function is defined in, so
    // never a name the function could mean for one of its own.
    let error = fresh("error", &reserved);
    reserved.insert(error.clone());
    let result = fresh("result", &reserved);
    reserved.insert(result.clone());
    let value = fresh(
        match trigger {
            Trigger::CredentialsExchange => "accessToken",
            _ => "response",
        },
        &reserved,
    );
    // The argument variables: the Hook's own parameter names (they shadow nothing the
    // function sees, being its parameters), else the guide's names.
    let params = f.params.clone().unwrap_or_default();
    let arg_names: Vec<String> = (0..arity)
        .map(|i| match params.get(i) {
            Some(p) if is_ident(p) && !["event", "api"].contains(&p.as_str()) => p.clone(),
            _ => fresh(names[i], &reserved),
        })
        .collect();
    let ctx_param = params
        .get(arity - 1)
        .filter(|_| f.params.is_some())
        .cloned();
    let first_param = params.first().filter(|_| f.params.is_some()).cloned();

    let mut edits: Vec<Edit> = Vec::new();
    let mut changes = Vec::new();
    let mut todos = Vec::new();

    // `require('pkg@1.2.3')` → `require('pkg')` anywhere in the file.
    for k in 0..toks.len() {
        if toks[k].ident() == Some("require")
            && !(k > 0 && toks[k - 1].is(b'.'))
            && toks.get(k + 1).is_some_and(|t| t.is(b'('))
            && toks.get(k + 2).is_some_and(|t| t.tok == Tok::Str)
            && toks.get(k + 3).is_some_and(|t| t.is(b')'))
        {
            let lit = &source[toks[k + 2].start..toks[k + 2].end];
            let q = &lit[..1];
            if q == "`" || lit.len() < 2 {
                continue;
            }
            let spec = &lit[1..lit.len() - 1];
            if spec.starts_with('.') || spec.starts_with('/') {
                continue;
            }
            let (name, version, sub) = crate::engine::program::split_package_spec(spec);
            if let Some(v) = version {
                let plain = match sub {
                    Some(s) => format!("{name}/{s}"),
                    None => name.to_owned(),
                };
                edits.push(Edit {
                    at: (toks[k + 2].start, toks[k + 2].end),
                    with: format!("{q}{plain}{q}"),
                });
                changes.push(Note {
                    line: toks[k].line,
                    what: format!("require('{spec}') → require('{plain}'): Actions declare the version ({name}@{v}) as a dependency"),
                });
            }
        }
    }

    // Inside the function: the context's webtask, the signup's password, the SMS factor type.
    let (lo, hi) = f.toks;
    let reassigned = |p: &str| {
        (lo..hi).any(|k| {
            toks[k].ident() == Some(p)
                && toks.get(k + 1).is_some_and(|t| t.is(b'='))
                && !toks.get(k + 2).is_some_and(|t| t.is(b'=') || t.is(b'>'))
                && !(k > 0 && toks[k - 1].is(b'.'))
        })
    };
    if let Some(ctx) = ctx_param.as_deref().filter(|c| !reassigned(c)) {
        let mut k = lo;
        while k < hi {
            let dot_name = |j: usize| {
                toks.get(j)
                    .is_some_and(|t| t.is(b'.'))
                    .then(|| toks.get(j + 1).and_then(Token::ident))
                    .flatten()
            };
            if toks[k].ident() == Some(ctx) && !(k > 0 && toks[k - 1].is(b'.')) {
                let line = toks[k].line;
                if dot_name(k + 1) == Some("webtask") {
                    match dot_name(k + 3) {
                        Some("secrets") => {
                            edits.push(Edit {
                                at: (toks[k].start, toks[k + 4].end),
                                with: format!("{event}.secrets"),
                            });
                            changes.push(Note {
                                line,
                                what: format!("{ctx}.webtask.secrets → {event}.secrets"),
                            });
                            k += 5;
                            continue;
                        }
                        Some(other) => todos.push(Note {
                            line,
                            what: format!("{ctx}.webtask.{other}: Actions have no webtask {other} (state across runs: api.cache or an external store)"),
                        }),
                        None => {}
                    }
                }
                if trigger == Trigger::SendPhoneMessage && dot_name(k + 1) == Some("factor_type") {
                    todos.push(Note {
                        line,
                        what: format!(
                            "{ctx}.factor_type: Actions' event.message_options has no factor type"
                        ),
                    });
                }
            }
            if trigger == Trigger::PreUserRegistration
                && first_param.as_deref() == toks[k].ident()
                && !(k > 0 && toks[k - 1].is(b'.'))
                && dot_name(k + 1) == Some("password")
            {
                todos.push(Note {
                    line: toks[k].line,
                    what: format!(
                        "{}.password: an Action's event.user has no password",
                        toks[k].ident().unwrap_or_default()
                    ),
                });
            }
            k += 1;
        }
    }
    edits.sort_by_key(|e| e.at.0);

    let before = apply(source, 0, f.stmt.0, &edits);
    let function = indent(
        source,
        &toks,
        f.expr,
        &apply(source, f.expr.0, f.expr.1, &edits),
    );
    let after = apply(source, f.stmt.1, source.len(), &edits);

    let mut out = String::new();
    out.push_str(&format!(
        "// The Auth0 Action form of {file} ({trigger}), written by `hookgate migrate`.\n\
         // The Hook's function runs as it was, inside the handler: its arguments are built from\n\
         // `event` as Auth0's migration guide maps them, and what it passes to `cb` becomes `api`\n\
         // calls, so the Action gives the Hook's result. Check with `hookgate migrate` again.\n",
        trigger = trigger.id()
    ));
    for c in &changes {
        out.push_str(&format!("// migrated: {c}\n"));
    }
    for t in &todos {
        out.push_str(&format!("// TODO(migrate): {t}\n"));
    }
    out.push_str(&before);
    let export = export_name(trigger);
    out.push_str(&format!(
        "exports.{export} = async ({event}, {api}) => {{\n"
    ));
    out.push_str(&arguments_from_event(trigger, &event, &arg_names));
    out.push_str(&format!(
        "  // The Hook (from line {}), as it was.\n  const {hook} = {function};\n",
        f.line
    ));
    let list = arg_names.join(", ");
    out.push_str(&format!(
        "  const {{ {} }} = await {call}({hook}, [{list}]);\n",
        [("error", &error), ("result", &result)]
            .map(|(k, v)| if k == v {
                k.to_owned()
            } else {
                format!("{k}: {v}")
            })
            .join(", ")
    ));
    let mapping = result_to_api(trigger, &api)
        .replace("$ERROR", &error)
        .replace("$RESULT", &result)
        .replace("$VALUE", &value);
    out.push_str(&mapping);
    out.push_str("};");
    out.push_str(&after);
    if !after.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!(
        "\n// Calls a Hook-style function and settles with what it passed to cb (the first call\n\
         // counts, as on Auth0); a throw or a rejected promise counts as cb(error).\n\
         function {call}(fn, args) {{\n\
         \x20 return new Promise((resolve) => {{\n\
         \x20   let done = false;\n\
         \x20   const cb = (error, result) => {{\n\
         \x20     if (!done) {{\n\
         \x20       done = true;\n\
         \x20       resolve({{ error, result }});\n\
         \x20     }}\n\
         \x20   }};\n\
         \x20   try {{\n\
         \x20     const r = fn(...args, cb);\n\
         \x20     if (r && typeof r.then === 'function') r.then(undefined, (e) => cb(e));\n\
         \x20   }} catch (e) {{\n\
         \x20     cb(e);\n\
         \x20   }}\n\
         \x20 }});\n\
         }}\n"
    ));
    Ok(Conversion {
        source: out,
        changes,
        todos,
    })
}

/// `text` (the span `at` of `src`) with every line after the first indented two more spaces,
/// except lines that begin inside a string or template literal (their text would change).
fn indent(src: &str, toks: &[Token], at: (usize, usize), text: &str) -> String {
    let literal_at = |offset: usize| {
        toks.iter()
            .any(|t| t.tok == Tok::Str && t.start < offset && offset < t.end)
    };
    // The n-th newline of `text` is the n-th of the span in `src` (the edits replace names,
    // not lines); if an edit did span lines, nothing is indented rather than guessing.
    let src_newlines: Vec<usize> = src[at.0..at.1]
        .match_indices('\n')
        .map(|(i, _)| at.0 + i)
        .collect();
    if src_newlines.len() != text.matches('\n').count() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 64);
    for (n, piece) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
            let inside = src_newlines.get(n - 1).is_some_and(|&o| literal_at(o + 1));
            if !inside && !piece.is_empty() {
                out.push_str("  ");
            }
        }
        out.push_str(piece);
    }
    out
}

/// The migration guide's names for a trigger's Hook arguments (cb excluded).
fn canonical_names(trigger: Trigger) -> &'static [&'static str] {
    crate::hooks::contract::argument_names(trigger)
}

/// The handler's first lines: the Hook's arguments, from the event (one line per field).
fn arguments_from_event(trigger: Trigger, e: &str, n: &[String]) -> String {
    let webtask = format!("    webtask: {{ secrets: {e}.secrets }},\n");
    let connection = format!(
        "    requestLanguage: {e}.request.language,\n    connection: {{ id: {e}.connection.id, name: {e}.connection.name, tenant: {e}.tenant.id }},\n"
    );
    let mut s =
        String::from("  // The Hook's arguments, from the event (Auth0's migration guide).\n");
    match trigger {
        Trigger::CredentialsExchange => {
            s += &format!(
                "  const {} = {{\n    id: {e}.client.client_id,\n    name: {e}.client.name,\n    tenant: {e}.tenant.id,\n    metadata: {e}.client.metadata,\n  }};\n",
                n[0]
            );
            s += &format!("  const {} = {e}.accessToken.scope;\n", n[1]);
            s += &format!("  const {} = {e}.resource_server.identifier;\n", n[2]);
            s += &format!(
                "  const {} = {{\n    body: {e}.request.body,\n{webtask}  }};\n",
                n[3]
            );
        }
        Trigger::PreUserRegistration => {
            s += &format!(
                "  const {} = {{\n    tenant: {e}.tenant.id,\n    username: {e}.user.username,\n    email: {e}.user.email,\n    emailVerified: false, // not verified while signing up\n    phoneNumber: {e}.user.phone_number,\n    phoneNumberVerified: false,\n    user_metadata: {e}.user.user_metadata,\n    app_metadata: {e}.user.app_metadata,\n  }};\n",
                n[0]
            );
            s += &format!("  const {} = {{\n{connection}{webtask}  }};\n", n[1]);
        }
        Trigger::PostUserRegistration => {
            s += &format!(
                "  const {} = {{\n    id: {e}.user.user_id,\n    tenant: {e}.tenant.id,\n    username: {e}.user.username,\n    email: {e}.user.email,\n    emailVerified: {e}.user.email_verified,\n    phoneNumber: {e}.user.phone_number,\n    phoneNumberVerified: {e}.user.phone_verified,\n    user_metadata: {e}.user.user_metadata,\n    app_metadata: {e}.user.app_metadata,\n  }};\n",
                n[0]
            );
            s += &format!("  const {} = {{\n{connection}{webtask}  }};\n", n[1]);
        }
        Trigger::PostChangePassword => {
            s += &format!(
                "  const {} = {{\n    id: {e}.user.user_id,\n    username: {e}.user.username,\n    email: {e}.user.email,\n    last_password_reset: {e}.user.last_password_reset,\n  }};\n",
                n[0]
            );
            s += &format!("  const {} = {{\n{connection}{webtask}  }};\n", n[1]);
        }
        Trigger::SendPhoneMessage => {
            s += &format!("  const {} = {e}.message_options.recipient;\n", n[0]);
            s += &format!("  const {} = {e}.message_options.text;\n", n[1]);
            s += &format!(
                "  const {} = {{\n    message_type: {e}.message_options.message_type,\n    action: {e}.message_options.action,\n    code: {e}.message_options.code,\n    language: {e}.request.language,\n    ip: {e}.request.ip,\n    user_agent: {e}.request.user_agent,\n    client: {e}.client && {{ client_id: {e}.client.client_id, name: {e}.client.name, client_metadata: {e}.client.metadata }},\n    user: {e}.user,\n{webtask}  }};\n",
                n[2]
            );
        }
    }
    s
}

/// The handler's last lines: what the Hook passed to `cb`, as `api` calls.
fn result_to_api(trigger: Trigger, a: &str) -> String {
    match trigger {
        Trigger::CredentialsExchange => format!(
            "  if ($ERROR) {{\n\
             \x20   // Auth0's error classes deny with their code; a string is a server error; any\n\
             \x20   // other error fails the exchange as it failed the Hook.\n\
             \x20   if (typeof $ERROR === 'string') return {a}.access.deny('server_error', $ERROR);\n\
             \x20   const code = {{ InvalidScopeError: 'invalid_scope', InvalidRequestError: 'invalid_request', ServerError: 'server_error' }}[$ERROR.name];\n\
             \x20   if (code) return {a}.access.deny(code, $ERROR.message);\n\
             \x20   throw $ERROR;\n\
             \x20 }}\n\
             \x20 if ($RESULT !== undefined && $RESULT !== null && (typeof $RESULT !== 'object' || Array.isArray($RESULT))) {{\n\
             \x20   throw new Error('the Hook passed cb a value that is not an object');\n\
             \x20 }}\n\
             \x20 const $VALUE = $RESULT || {{}};\n\
             \x20 // Its scope replaces the token's (none: no scope); the other keys are claims.\n\
             \x20 if (Array.isArray($VALUE.scope)) {a}.transaction.setTargetScopes($VALUE.scope);\n\
             \x20 else {a}.transaction.clearTargetScopes();\n\
             \x20 for (const key of Object.keys($VALUE)) {{\n\
             \x20   if (key !== 'scope') {a}.accessToken.setCustomClaim(key, $VALUE[key]);\n\
             \x20 }}\n"
        ),
        Trigger::PreUserRegistration => format!(
            "  if ($ERROR) {{\n\
             \x20   // PreUserRegistrationError(log, userMessage) denies with its message; any other\n\
             \x20   // error fails the signup as it failed the Hook.\n\
             \x20   if ($ERROR.name === 'PreUserRegistrationError') return {a}.access.deny($ERROR.message, $ERROR.userMessage);\n\
             \x20   throw typeof $ERROR === 'string' ? new Error($ERROR) : $ERROR;\n\
             \x20 }}\n\
             \x20 const $VALUE = ($RESULT && $RESULT.user) || {{}};\n\
             \x20 for (const [key, value] of Object.entries($VALUE.user_metadata || {{}})) {a}.user.setUserMetadata(key, value);\n\
             \x20 for (const [key, value] of Object.entries($VALUE.app_metadata || {{}})) {a}.user.setAppMetadata(key, value);\n"
        ),
        Trigger::PostUserRegistration
        | Trigger::PostChangePassword
        | Trigger::SendPhoneMessage => format!(
            "  // Its result is not used ({a} has only api.cache here); an error fails the run as it\n\
             \x20 // failed the Hook.\n\
             \x20 void $RESULT;\n\
             \x20 if ($ERROR) throw typeof $ERROR === 'string' ? new Error($ERROR) : $ERROR;\n"
        ),
    }
}

// ---- comparing the two runs ----

/// What a run of a Hook or an Action of `trigger` did, field by field, as the trigger's point
/// applies it: credentials-exchange's `scope`, each claim and the error answer; the signup's
/// metadata keys and its denial; for the other triggers, success or failure. `action`: the result came from the Actions adapter (a `null`
/// metadata value then removes the key, as the signup point applies it).
pub fn outcome(
    trigger: Trigger,
    action: bool,
    settled: &Result<Value, HookError>,
) -> BTreeMap<String, String> {
    let mut o = BTreeMap::new();
    let result = match settled {
        Ok(v) => v,
        Err(e) => {
            o.insert("error".into(), error_outcome(trigger, e));
            return o;
        }
    };
    match trigger {
        Trigger::CredentialsExchange => {
            let empty = serde_json::Map::new();
            let fields = match result {
                Value::Object(m) => m,
                Value::Null => &empty,
                other => {
                    o.insert("error".into(), format!("invalid result {other}"));
                    return o;
                }
            };
            let scope: Vec<String> = match fields.get("scope") {
                Some(Value::Array(items)) => {
                    let mut v: Vec<String> = Vec::new();
                    for s in items.iter().filter_map(Value::as_str) {
                        if !v.iter().any(|x| x == s) {
                            v.push(s.to_owned());
                        }
                    }
                    v
                }
                _ => Vec::new(),
            };
            o.insert("scope".into(), scope.join(" "));
            for (k, v) in fields.iter().filter(|(k, _)| *k != "scope") {
                o.insert(format!("claim {k}"), v.to_string());
            }
        }
        Trigger::PreUserRegistration => {
            let user = result.get("user").and_then(Value::as_object);
            for part in ["user_metadata", "app_metadata"] {
                if let Some(m) = user.and_then(|u| u.get(part)).and_then(Value::as_object) {
                    for (k, v) in m {
                        let shown = if action && v.is_null() {
                            "(removed)".to_owned()
                        } else {
                            v.to_string()
                        };
                        o.insert(format!("{part}.{k}"), shown);
                    }
                }
            }
            o.insert("result".into(), "success".into());
        }
        Trigger::PostUserRegistration | Trigger::PostChangePassword | Trigger::SendPhoneMessage => {
            o.insert("result".into(), "success".into());
        }
    }
    o
}

/// A failed run as the trigger's point answers it.
fn error_outcome(trigger: Trigger, e: &HookError) -> String {
    let HookError::Failed(f) = e else {
        return format!("failure: {e}");
    };
    match (trigger, f.class.as_str()) {
        (Trigger::CredentialsExchange, "InvalidScopeError") => {
            format!("denied invalid_scope: {}", f.message)
        }
        (Trigger::CredentialsExchange, "InvalidRequestError") => {
            format!("denied invalid_request: {}", f.message)
        }
        (Trigger::CredentialsExchange, "ServerError" | "string") => {
            format!("server_error: {}", f.message)
        }
        (Trigger::PreUserRegistration, "PreUserRegistrationError") => format!(
            "denied: {} (user message: {})",
            f.message,
            f.user_message.as_deref().unwrap_or("(none)")
        ),
        (_, "string") => format!("failure: Error: {}", f.message),
        _ => format!("failure: {}: {}", f.class, f.message),
    }
}

/// The fields where two outcomes differ, each with both values.
pub fn differences(
    hook: &BTreeMap<String, String>,
    action: &BTreeMap<String, String>,
) -> Vec<(String, String, String)> {
    let absent = "(absent)".to_owned();
    let keys: BTreeSet<&String> = hook.keys().chain(action.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (h, a) = (
                hook.get(k).unwrap_or(&absent),
                action.get(k).unwrap_or(&absent),
            );
            (h != a).then(|| (k.clone(), h.clone(), a.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_versions_are_rewritten_inside_the_function_only() {
        let src = "const axios = require('axios@0.21.1');\nfunction helper(context) { return context.webtask.secrets.B; }\nmodule.exports = function (client, scope, audience, ctx, cb) {\n  cb(null, { 'https://x/k': ctx.webtask.secrets.KEY, s: '`context.webtask.secrets`' });\n};\n";
        let c = convert(Trigger::CredentialsExchange, "h.js", src).unwrap();
        assert!(c.todos.is_empty(), "{:?}", c.todos);
        assert!(c.source.contains("require('axios')"), "{}", c.source);
        assert!(c.source.contains("event.secrets.KEY"), "{}", c.source);
        assert!(
            c.source.contains("return context.webtask.secrets.B"),
            "helpers keep theirs"
        );
        assert!(
            c.source.contains("'`context.webtask.secrets`'"),
            "strings are not code"
        );
        assert!(c
            .source
            .contains("exports.onExecuteCredentialsExchange = async (event, api) =>"));
        assert_eq!(c.changes.len(), 2, "{:?}", c.changes);
        assert_eq!(c.changes[1].line, 4);
    }

    #[test]
    fn what_cannot_be_converted_is_named_with_its_line() {
        let src = "module.exports = function (user, context, cb) {\n  context.webtask.storage.get(function () {});\n  if (user.password.length < 8) return cb(new Error('short'));\n  cb();\n};\n";
        let c = convert(Trigger::PreUserRegistration, "h.js", src).unwrap();
        let lines: Vec<u32> = c.todos.iter().map(|t| t.line).collect();
        assert_eq!(lines, vec![2, 3], "{:?}", c.todos);
        assert!(c
            .source
            .contains("// TODO(migrate): line 2: context.webtask.storage"));
        let e = convert(Trigger::PreUserRegistration, "h.js", "exports.x = 1;\n").unwrap_err();
        assert_eq!(e.0[0].line, 1);
    }

    #[test]
    fn a_comparison_names_the_fields_the_point_would_apply_differently() {
        use crate::engine::HookFailure;
        let t = Trigger::PreUserRegistration;
        // A Hook's null is a value; an Action's null removes the key (as the signup applies it).
        let hook = outcome(
            t,
            false,
            &Ok(serde_json::json!({"user": {"user_metadata": {"a": null, "b": 1}}})),
        );
        let action = outcome(
            t,
            true,
            &Ok(serde_json::json!({"user": {"user_metadata": {"a": null, "b": 1}}})),
        );
        let d = differences(&hook, &action);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].0, "user_metadata.a");
        // cb('text') and api.access.deny('server_error', 'text') answer alike.
        let c = Trigger::CredentialsExchange;
        let failed = |class: &str| {
            Err(HookError::Failed(HookFailure {
                class: class.into(),
                message: "down".into(),
                user_message: None,
            }))
        };
        assert!(differences(
            &outcome(c, false, &failed("string")),
            &outcome(c, true, &failed("ServerError"))
        )
        .is_empty());
        assert_eq!(
            differences(
                &outcome(c, false, &failed("Error")),
                &outcome(c, true, &failed("ServerError"))
            )[0]
            .0,
            "error"
        );
    }

    #[test]
    fn a_file_using_event_or_api_gets_handler_names_it_does_not_use() {
        let src = "const api = require('./api');\nmodule.exports = (user, context, cb) => { api.go(context.webtask.secrets.K); cb(); };\n";
        let c = convert(Trigger::PostUserRegistration, "h.js", src).unwrap();
        assert!(c.source.contains("async (event, api2) =>"), "{}", c.source);
        assert!(c.source.contains("api.go(event.secrets.K)"), "{}", c.source);
    }
}
