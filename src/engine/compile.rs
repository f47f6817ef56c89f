//! Compiling CommonJS files to QuickJS bytecode, once, at load time.
//!
//! Owns: the CommonJS wrapper, the bytecode format, and turning a syntax error into `file:line:col`.
//! Must not touch: the filesystem (callers hand in the source) or any worker's runtime — compiling
//! happens in a private, per-thread runtime, and the bytecode is portable between runtimes of the
//! same QuickJS build.

use std::cell::RefCell;
use std::ffi::CString;

use rquickjs::{qjs, Context, Ctx, Runtime, Value};

/// The CommonJS wrapper. It stays on the file's first line so line numbers in errors and stacks
/// are the file's own; only columns on line 1 are shifted, and [`compile_commonjs`] undoes that.
/// Padded to the length of [`ACTIONS_WRAP_HEAD`], so one shift fixes line-1 columns of both.
const WRAP_HEAD: &str =
    "(function (exports, require, module, __filename, __dirname) {                         ";
const WRAP_TAIL: &str = "\n})";

/// The wrapper of an Actions Module's files: `actions` is a parameter of the outer function (the
/// loader passes the module's frozen `{ secrets }`), and the file runs in an inner arrow function,
/// so `actions` is in scope everywhere in the file yet a top-level `const actions` is a new
/// binding, not a SyntaxError. An arrow, not `function () {}.call(this)`: nothing is looked up at
/// run time (a hook may have replaced `Function.prototype.call`), and `this` stays
/// `module.exports`.
const ACTIONS_WRAP_HEAD: &str =
    "(function (exports, require, module, __filename, __dirname, actions) { return (() => {";
const ACTIONS_WRAP_TAIL: &str = "\n})(); })";
const _: () = assert!(WRAP_HEAD.len() == ACTIONS_WRAP_HEAD.len());

/// A syntax error with its position in the original file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: SyntaxError: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

thread_local! {
    static COMPILER: RefCell<Option<(Runtime, Context)>> = const { RefCell::new(None) };
}

/// Compile a CommonJS file (wrapped in the module function) to bytecode. Evaluating the bytecode
/// yields the wrapper function `(exports, require, module, __filename, __dirname)`.
pub fn compile_commonjs(file_name: &str, source: &str) -> Result<Vec<u8>, SyntaxError> {
    compile_wrapped(file_name, source, WRAP_HEAD, WRAP_TAIL)
}

/// Compile a script as it is (no wrapper); evaluating the bytecode yields its completion value.
/// For hookgate's own JS, whose files are one parenthesised function each.
pub fn compile_script(file_name: &str, source: &str) -> Result<Vec<u8>, SyntaxError> {
    compile_wrapped(file_name, source, "", "")
}

/// [`compile_commonjs`] for a file of an Actions Module: the wrapper function takes a sixth
/// argument, `actions`, in scope in the whole file.
pub fn compile_actions_module(file_name: &str, source: &str) -> Result<Vec<u8>, SyntaxError> {
    compile_wrapped(file_name, source, ACTIONS_WRAP_HEAD, ACTIONS_WRAP_TAIL)
}

fn compile_wrapped(
    file_name: &str,
    source: &str,
    head: &str,
    tail: &str,
) -> Result<Vec<u8>, SyntaxError> {
    // A shebang line is legal in Node files but not inside a function body.
    let body = match source.strip_prefix("#!") {
        Some(rest) => format!("//{rest}"),
        None => source.to_owned(),
    };
    let wrapped = format!("{head}{body}{tail}");
    COMPILER
        .with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                let rt = Runtime::new().map_err(|e| internal(file_name, e))?;
                let ctx = Context::full(&rt).map_err(|e| internal(file_name, e))?;
                *slot = Some((rt, ctx));
            }
            let (_, ctx) = slot.as_ref().expect("compiler set above");
            ctx.with(|ctx| compile_in(&ctx, file_name, &wrapped))
        })
        .map_err(|mut e| {
            // "Unexpected end of input" points into the wrapper's closing line: report the file's end.
            let lines = body.split('\n').count() as u32;
            if e.line > lines {
                e.line = lines;
                e.column = body
                    .rsplit('\n')
                    .next()
                    .map_or(0, |l| l.chars().count() as u32)
                    + 1;
            }
            e
        })
}

fn internal(file: &str, e: impl std::fmt::Display) -> SyntaxError {
    SyntaxError {
        file: file.to_owned(),
        line: 0,
        column: 0,
        message: format!("internal compiler error: {e}"),
    }
}

fn compile_in(ctx: &Ctx<'_>, file_name: &str, wrapped: &str) -> Result<Vec<u8>, SyntaxError> {
    let c_name = CString::new(file_name).map_err(|e| internal(file_name, e))?;
    let c_src = CString::new(wrapped).map_err(|_| SyntaxError {
        file: file_name.to_owned(),
        line: 1,
        column: 1,
        message: "the file contains a NUL byte".into(),
    })?;
    let flags = (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32;
    // SAFETY: the pointers are valid for the call; the returned value is owned by us and freed
    // below (or handed to rquickjs as an exception).
    unsafe {
        let raw = ctx.as_raw().as_ptr();
        let func = qjs::JS_Eval(
            raw,
            c_src.as_ptr(),
            wrapped.len() as _,
            c_name.as_ptr(),
            flags,
        );
        if qjs::JS_IsException(func) {
            return Err(syntax_error(ctx, file_name));
        }
        let mut len: qjs::size_t = 0;
        let buf = qjs::JS_WriteObject(raw, &mut len, func, qjs::JS_WRITE_OBJ_BYTECODE as i32);
        qjs::JS_FreeValue(raw, func);
        if buf.is_null() {
            return Err(internal(file_name, "JS_WriteObject failed"));
        }
        let bytes = std::slice::from_raw_parts(buf, len as usize).to_vec();
        qjs::js_free(raw, buf as _);
        Ok(bytes)
    }
}

fn syntax_error(ctx: &Ctx<'_>, file_name: &str) -> SyntaxError {
    let exc = ctx.catch();
    let (message, stack) = match exc.as_exception() {
        Some(e) => (
            e.message().unwrap_or_default(),
            e.stack().unwrap_or_default(),
        ),
        None => (format!("{exc:?}"), String::new()),
    };
    let (mut line, mut column) = position_in_stack(&stack, file_name).unwrap_or((0, 0));
    if line == 1 {
        column = column.saturating_sub(WRAP_HEAD.len() as u32);
    }
    if line == 0 {
        line = 1;
        column = 1;
    }
    SyntaxError {
        file: file_name.to_owned(),
        line,
        column,
        message,
    }
}

/// Find `file:line:col` for `file` in a QuickJS stack trace.
fn position_in_stack(stack: &str, file_name: &str) -> Option<(u32, u32)> {
    let at = stack.find(file_name)?;
    let rest = &stack[at + file_name.len()..];
    let rest = rest.strip_prefix(':')?;
    let mut parts = rest.splitn(3, |c: char| !c.is_ascii_digit());
    let line = parts.next()?.parse().ok()?;
    let column = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    Some((line, column))
}

/// The first frame of a QuickJS stack trace in a file `is_file` accepts (a compiled module, not
/// hookgate's own globals or built-ins), as `(file, line, column)` in the file's own coordinates:
/// a column on line 1 is moved back past the CommonJS wrapper. For locating errors thrown while a
/// module evaluates (`probe.rs`).
pub(crate) fn locate_in_stack(
    stack: &str,
    is_file: impl Fn(&str) -> bool,
) -> Option<(String, u32, u32)> {
    stack.lines().find_map(|frame| {
        let frame = frame.trim();
        let frame = frame.strip_prefix("at ").unwrap_or(frame);
        // `at name (file:line:col)` or `at file:line:col`.
        let place = match frame.rfind('(') {
            Some(open) => frame[open + 1..].trim_end_matches(')'),
            None => frame,
        };
        let mut parts = place.rsplitn(3, ':');
        let (column, line, file) = (parts.next()?, parts.next()?, parts.next()?);
        let (Ok(line), Ok(mut column)) = (line.parse::<u32>(), column.parse::<u32>()) else {
            return None;
        };
        if !is_file(file) {
            return None;
        }
        if line == 1 {
            column = column.saturating_sub(WRAP_HEAD.len() as u32);
        }
        Some((file.to_owned(), line, column))
    })
}

/// Evaluate bytecode made by [`compile_commonjs`] in `ctx`, returning the wrapper function.
pub fn load_commonjs<'js>(ctx: &Ctx<'js>, bytecode: &[u8]) -> rquickjs::Result<Value<'js>> {
    // SAFETY: `bytecode` came from `JS_WriteObject` of the same QuickJS build; `JS_EvalFunction`
    // takes ownership of the function object; the result is wrapped (and freed) by rquickjs.
    unsafe {
        let raw = ctx.as_raw().as_ptr();
        let func = qjs::JS_ReadObject(
            raw,
            bytecode.as_ptr(),
            bytecode.len() as _,
            qjs::JS_READ_OBJ_BYTECODE as i32,
        );
        if qjs::JS_IsException(func) {
            return Err(rquickjs::Error::Exception);
        }
        let value = qjs::JS_EvalFunction(raw, func);
        if qjs::JS_IsException(value) {
            return Err(rquickjs::Error::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_names_file_line_and_column() {
        let err =
            compile_commonjs("hooks/x/bad.js", "module.exports = 1;\nvar a = ;\n").unwrap_err();
        assert_eq!(err.file, "hooks/x/bad.js");
        assert_eq!(err.line, 2, "{err}");
        assert!(err.column > 0, "{err}");
    }

    #[test]
    fn an_actions_module_file_reports_the_same_positions_and_allows_a_shebang() {
        for src in ["var a = ;\n", "#!/usr/bin/env node\nvar a = ;\n"] {
            let plain = compile_commonjs("m.js", src).unwrap_err();
            let module = compile_actions_module("m.js", src).unwrap_err();
            assert_eq!((module.line, module.column), (plain.line, plain.column));
        }
        assert_eq!(compile_commonjs("m.js", "var a = ;").unwrap_err().column, 9);
        compile_actions_module("m.js", "#!/usr/bin/env node\nconst actions = 1;\n").unwrap();
    }

    #[test]
    fn a_stack_frame_is_located_in_the_files_own_coordinates() {
        let stack = "    at f (/h/lib.js:1:95)\n    at <anonymous> (/h/x.js:3:9)\n    at main (<input>:12:3)\n";
        assert_eq!(
            locate_in_stack(stack, |f| f == "/h/x.js"),
            Some(("/h/x.js".to_owned(), 3, 9))
        );
        let first = locate_in_stack(stack, |f| f.starts_with("/h/")).unwrap();
        assert_eq!(
            first,
            ("/h/lib.js".to_owned(), 1, 95 - WRAP_HEAD.len() as u32)
        );
        assert_eq!(locate_in_stack(stack, |_| false), None);
    }

    #[test]
    fn bytecode_runs_in_another_runtime() {
        let code =
            compile_commonjs("ok.js", "module.exports = function () { return 41 + 1; };").unwrap();
        let rt = Runtime::new().unwrap();
        let ctx = Context::full(&rt).unwrap();
        ctx.with(|ctx| {
            let wrapper = load_commonjs(&ctx, &code).unwrap();
            let f = wrapper.as_function().unwrap().clone();
            let module = rquickjs::Object::new(ctx.clone()).unwrap();
            let exports = rquickjs::Object::new(ctx.clone()).unwrap();
            module.set("exports", exports.clone()).unwrap();
            let _: Value = f
                .call((exports, Value::new_undefined(ctx.clone()), module.clone()))
                .unwrap();
            let hook: rquickjs::Function = module.get("exports").unwrap();
            let n: i32 = hook.call(()).unwrap();
            assert_eq!(n, 42);
        });
    }
}
