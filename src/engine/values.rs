//! JSON values into JS values and back, without a JSON text in between.
//!
//! A call's arguments used to cross as a JSON string: `serde_json::to_string` on the caller's
//! thread, `JSON.parse` on the worker. QuickJS's `JSON.parse` runs its full tokenizer, and for
//! credentials-exchange's four arguments it was the largest single cost of a warm call (~34k of
//! ~90k instructions, callgrind). Building the objects directly gives the same values: own,
//! enumerable, writable, configurable data properties in the JSON's order, `__proto__` included
//! as an ordinary key, as `JSON.parse` defines them.
//!
//! The way back is the same: what a hook passes to `cb` used to go through QuickJS's
//! `JSON.stringify` and `serde_json::from_str` (~27k instructions for two claims and a scope,
//! mostly quoting and string-buffer growth). [`from_js`] walks the value instead, for the shapes
//! hooks return — plain objects, arrays, strings, numbers, booleans, null — and gives up on
//! anything whose JSON only `JSON.stringify` knows exactly (`toJSON`, `Date`, boxed primitives,
//! `BigInt`, proxies, typed arrays, cycles…); the caller then takes the `JSON.stringify` path.
//!
//! Must not: change what a hook sees or what its result becomes — the tests below compare every
//! shape with `JSON.parse`, and with `JSON.stringify` + serde_json.

use rquickjs::atom::PredefinedAtom;
use rquickjs::object::Property;
use rquickjs::{qjs, Array, Ctx, Object, Type, Value};

/// The JS value `JSON.parse` would produce for `v`.
pub(crate) fn to_js<'js>(ctx: &Ctx<'js>, v: &serde_json::Value) -> rquickjs::Result<Value<'js>> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => Value::new_null(ctx.clone()),
        J::Bool(b) => Value::new_bool(ctx.clone(), *b),
        J::Number(n) => match n.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => Value::new_int(ctx.clone(), i as i32),
            _ => Value::new_float(ctx.clone(), n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => rquickjs::String::from_str(ctx.clone(), s)?.into_value(),
        J::Array(items) => array(ctx, items)?,
        J::Object(map) => {
            let object = Object::new(ctx.clone())?;
            for (key, item) in map {
                // Defined, not assigned: `__proto__` is a key like any other, as in JSON.parse.
                object.prop(
                    key.as_str(),
                    Property::from(to_js(ctx, item)?)
                        .writable()
                        .enumerable()
                        .configurable(),
                )?;
            }
            object.into_value()
        }
    })
}

/// A call's arguments as one JS array.
pub(crate) fn args_to_js<'js>(
    ctx: &Ctx<'js>,
    args: &[serde_json::Value],
) -> rquickjs::Result<Value<'js>> {
    array(ctx, args)
}

fn array<'js>(ctx: &Ctx<'js>, items: &[serde_json::Value]) -> rquickjs::Result<Value<'js>> {
    let array = Array::new(ctx.clone())?;
    for (i, item) in items.iter().enumerate() {
        array.set(i, to_js(ctx, item)?)?;
    }
    Ok(array.into_value())
}

/// Why [`from_js`] gave no value.
#[derive(Debug, PartialEq)]
pub(crate) enum NotDirect {
    /// Something in the value has a JSON only `JSON.stringify` gives exactly: ask it.
    Exotic,
    /// The JSON would be longer than the limit.
    TooBig,
}

/// QuickJS's class ids for ordinary objects and arrays (`JS_CLASS_OBJECT`, `JS_CLASS_ARRAY` in
/// quickjs.c's enum, not in its header; a test pins them).
const CLASS_OBJECT: qjs::JSClassID = 1;
const CLASS_ARRAY: qjs::JSClassID = 2;
/// Deeper than this is given to `JSON.stringify`, which also names a cycle as one.
const MAX_DEPTH: usize = 64;
/// Integers up to 2^53 print as their exact digits; larger ones as shortest digits padded with
/// zeros, which `JSON.stringify` knows how to write.
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// What `JSON.parse(JSON.stringify(v))` would give, as serde_json reads that text, built without
/// the text; `undefined`, a function or a symbol at the top is `null` (JSON.stringify gives
/// nothing). `max` bounds the JSON's length: the walk stops as soon as it is certainly over.
///
/// Getters run as `JSON.stringify` runs them; after [`NotDirect::Exotic`] the caller's
/// `JSON.stringify` runs them again (only for values holding both getters and an exotic part).
pub(crate) fn from_js(v: &Value<'_>, max: usize) -> Result<serde_json::Value, NotDirect> {
    let mut walk = Walk { bytes: 0, max };
    let out = walk.value(v, 0)?.unwrap_or(serde_json::Value::Null);
    // `bytes` leaves out escapes (at most six bytes for one): count exactly when they could
    // matter.
    if walk.bytes.saturating_mul(6) > max && json_len(&out) > max {
        return Err(NotDirect::TooBig);
    }
    Ok(out)
}

/// The length of `v`'s JSON text, without keeping the text.
fn json_len(v: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, v).map_or(usize::MAX, |()| count.0)
}

struct Walk {
    /// A lower bound of the JSON's length so far (no escapes counted).
    bytes: usize,
    max: usize,
}

impl Walk {
    fn add(&mut self, n: usize) -> Result<(), NotDirect> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.max {
            return Err(NotDirect::TooBig);
        }
        Ok(())
    }

    /// `None`: the value has no JSON (undefined, a function, a symbol).
    fn value(
        &mut self,
        v: &Value<'_>,
        depth: usize,
    ) -> Result<Option<serde_json::Value>, NotDirect> {
        use serde_json::Value as J;
        Ok(Some(match v.type_of() {
            Type::Uninitialized | Type::Undefined | Type::Symbol => return Ok(None),
            Type::Null => {
                self.add(4)?;
                J::Null
            }
            Type::Bool => {
                let b = v.as_bool().unwrap_or(false);
                self.add(if b { 4 } else { 5 })?;
                J::Bool(b)
            }
            Type::Int => {
                self.add(1)?;
                J::from(v.as_int().unwrap_or(0))
            }
            Type::Float => {
                self.add(1)?;
                number(v.as_float().unwrap_or(f64::NAN))?
            }
            Type::String => {
                let s = v
                    .as_string()
                    .and_then(|s| s.to_string().ok())
                    .ok_or(NotDirect::Exotic)?;
                self.add(s.len() + 2)?;
                J::String(s)
            }
            Type::Function | Type::Constructor => return Ok(None),
            Type::Array | Type::Object => {
                let obj = v.as_object().ok_or(NotDirect::Exotic)?;
                if depth >= MAX_DEPTH {
                    return Err(NotDirect::Exotic);
                }
                // SAFETY: reads the class id of a live object value; no ownership changes.
                let class = unsafe { qjs::JS_GetClassID(v.as_raw()) };
                if !(class == CLASS_OBJECT || class == CLASS_ARRAY)
                    || !obj
                        .get::<_, Value>(PredefinedAtom::ToJSON)
                        .is_ok_and(|t| t.is_undefined())
                {
                    return Err(NotDirect::Exotic);
                }
                self.add(2)?;
                if class == CLASS_ARRAY {
                    let len: usize = obj
                        .get(PredefinedAtom::Length)
                        .map_err(|_| NotDirect::Exotic)?;
                    let mut items = Vec::with_capacity(len.min(1024));
                    for i in 0..len {
                        let item: Value = obj.get(i as u32).map_err(|_| NotDirect::Exotic)?;
                        self.add(1)?;
                        items.push(self.value(&item, depth + 1)?.unwrap_or(J::Null));
                    }
                    J::Array(items)
                } else {
                    let mut map = serde_json::Map::new();
                    for prop in obj.props::<String, Value>() {
                        let (key, item) = prop.map_err(|_| NotDirect::Exotic)?;
                        if let Some(item) = self.value(&item, depth + 1)? {
                            self.add(key.len() + 4)?;
                            map.insert(key, item);
                        }
                    }
                    J::Object(map)
                }
            }
            // BigInt (JSON.stringify throws), promises (`{}`), errors, proxies, modules…
            _ => return Err(NotDirect::Exotic),
        }))
    }
}

/// A float as serde_json reads what `JSON.stringify` writes for it: integers as integers,
/// NaN and the infinities as null.
fn number(f: f64) -> Result<serde_json::Value, NotDirect> {
    if !f.is_finite() {
        return Ok(serde_json::Value::Null);
    }
    if f.fract() == 0.0 {
        if f.abs() > EXACT_INTEGERS {
            return Err(NotDirect::Exotic);
        }
        // `-0` is written `0`.
        return Ok(if f < 0.0 {
            serde_json::Value::from(f as i64)
        } else {
            serde_json::Value::from(f as u64)
        });
    }
    Ok(serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rquickjs::{Context, Function, Runtime};

    /// For each JSON text: the hook-visible shape of `to_js` and of `JSON.parse` must be equal —
    /// values, key order, prototypes, property descriptors, and `__proto__` as an own key.
    #[test]
    fn the_values_are_those_json_parse_gives() {
        let rt = Runtime::new().unwrap();
        let ctx = Context::full(&rt).unwrap();
        let texts = [
            r#"null"#,
            r#"true"#,
            r#"0"#,
            r#"-1"#,
            r#"2147483647"#,
            r#"2147483648"#,
            r#"-2147483649"#,
            r#"9007199254740993"#,
            r#"18446744073709551615"#,
            r#"1.5e300"#,
            r#"-0.25"#,
            r#""""#,
            r#""é ✓ 𝄞 \u0000 \" \\""#,
            r#"[]"#,
            r#"[1, "a", null, [true, {}], {"k": [2]}]"#,
            r#"{}"#,
            r#"{"b": 1, "a": 2, "10": 3, "2": 4, "": 5, "x.y": 6, "$z": 7}"#,
            r#"{"__proto__": {"polluted": true}, "constructor": "c", "toString": "s"}"#,
            r#"{"id": "m2m", "metadata": {"tier": "gold", "nested": {"deep": [1, {"x": null}]}}}"#,
        ];
        ctx.with(|ctx| {
            let describe: Function = ctx
                .eval(
                    r#"(function describe(v) {
                        if (v === null || typeof v !== 'object') return [typeof v, Object.is(v, -0) ? '-0' : String(v)];
                        const proto = Object.getPrototypeOf(v) === Array.prototype ? 'Array'
                            : Object.getPrototypeOf(v) === Object.prototype ? 'Object' : 'other';
                        return [proto, Reflect.ownKeys(v).map(k => {
                            const d = Object.getOwnPropertyDescriptor(v, k);
                            return [String(k), d.writable, d.enumerable, d.configurable, describe(d.value)];
                        })];
                    })"#,
                )
                .unwrap();
            let stringify: Function = ctx.eval("JSON.stringify").unwrap();
            for text in texts {
                let json: serde_json::Value = serde_json::from_str(text).unwrap();
                let direct = to_js(&ctx, &json).unwrap();
                let parsed = ctx.json_parse(text).unwrap();
                let a: String = stringify
                    .call((describe.call::<_, Value>((direct,)).unwrap(),))
                    .unwrap();
                let b: String = stringify
                    .call((describe.call::<_, Value>((parsed,)).unwrap(),))
                    .unwrap();
                assert_eq!(a, b, "for {text}");
            }
        });
    }

    /// `JSON.stringify` and serde_json, the way back `from_js` replaces for plain data.
    fn via_stringify<'js>(ctx: &Ctx<'js>, v: Value<'js>) -> serde_json::Value {
        match ctx.json_stringify(v).unwrap() {
            Some(text) => serde_json::from_str(&text.to_string().unwrap()).unwrap(),
            None => serde_json::Value::Null,
        }
    }

    /// For each JS expression: `from_js` gives exactly what `JSON.stringify` + serde_json give
    /// (`true`), or gives up so the caller asks `JSON.stringify` (`false`). serde_json's `Value`
    /// equality tells an integer from a float, so number kinds are pinned too. Plain objects and
    /// arrays going direct also pins the class ids `from_js` checks.
    #[test]
    fn results_are_those_json_stringify_gives() {
        let rt = Runtime::new().unwrap();
        let ctx = Context::full(&rt).unwrap();
        let cases: &[(&str, bool)] = &[
            ("undefined", true),
            ("(function () {})", true),
            ("Symbol('s')", true),
            ("null", true),
            ("true", true),
            ("false", true),
            ("0", true),
            ("-0", true),
            ("42", true),
            ("-7", true),
            ("2147483648", true),
            ("6 / 2", true),
            ("-4294967296", true),
            ("2 ** 53", true),
            ("-(2 ** 53)", true),
            ("0.1", true),
            ("-1.5e-7", true),
            ("123.456", true),
            ("NaN", true),
            ("Infinity", true),
            ("-Infinity", true),
            ("''", true),
            (r#"'é ✓ 𝄞 \u0000 " \\ \n \u2028 \u001f'"#, true),
            ("({})", true),
            (
                "({b: 1, a: [1, 'x', null, undefined, function () {}, Symbol('s')], 10: 3, 2: 4, '': 5, 'x.y': 6})",
                true,
            ),
            ("({u: undefined, f() {}, s: Symbol('s'), n: null})", true),
            (
                r#"JSON.parse('{"__proto__": {"polluted": true}, "constructor": "c", "toString": "s"}')"#,
                true,
            ),
            ("Object.create(null, {x: {value: 1, enumerable: true}, hidden: {value: 2}})", true),
            ("new (class K { constructor() { this.a = 1; } get b() { return 2; } })()", true),
            ("({get g() { return 'got'; }, v: 1})", true),
            ("({[Symbol('k')]: 1, v: 2})", true),
            ("[1, , 3]", true),
            ("Object.assign([1, 2], {extra: 3})", true),
            ("(() => { const a = [1]; a.length = 3; return a; })()", true),
            (
                "({scope: ['read:users'], 'https://example.com/tenant': 'acme', nested: {deep: [{x: [null]}]}})",
                true,
            ),
            // What only JSON.stringify writes exactly.
            ("new Date(0)", false),
            ("({d: new Date(0)})", false),
            ("new Number(3)", false),
            ("[new String('s')]", false),
            ("({toJSON() { return 'j'; }})", false),
            ("new Proxy({a: 1}, {})", false),
            ("new Map([[1, 2]])", false),
            ("new Uint8Array(2)", false),
            ("(function () { return arguments; })(1, 2)", false),
            ("new Error('e')", false),
            ("Promise.resolve(1)", false),
            ("2 ** 60", false),
            ("-(2 ** 53) - 2", false),
            ("1e21", false),
            // A lone surrogate is not UTF-8: JSON.stringify escapes it (and serde_json refuses it).
            ("'a\\ud800b'", false),
            ("(() => { let v = 1; for (let i = 0; i < 100; i++) v = [v]; return v; })()", false),
        ];
        ctx.with(|ctx| {
            for (expr, direct) in cases {
                let v: Value = ctx.eval(*expr).unwrap();
                match from_js(&v, 1 << 20) {
                    Ok(got) => {
                        assert!(direct, "{expr} should have been left to JSON.stringify");
                        assert_eq!(got, via_stringify(&ctx, v), "for {expr}");
                    }
                    Err(e) => {
                        assert!(!direct, "{expr} gave {e:?}");
                        assert_eq!(e, NotDirect::Exotic, "for {expr}");
                    }
                }
            }
            // Cycles are left to JSON.stringify, which names them.
            let cycle: Value = ctx
                .eval("(() => { const o = {}; o.self = o; return o; })()")
                .unwrap();
            assert_eq!(from_js(&cycle, 1 << 20), Err(NotDirect::Exotic));
        });
    }

    /// The size limit holds for the JSON text, escapes included, and the walk stops once over.
    #[test]
    fn results_over_the_size_limit_are_refused() {
        let rt = Runtime::new().unwrap();
        let ctx = Context::full(&rt).unwrap();
        ctx.with(|ctx| {
            let eval = |e: &str| -> Value { ctx.eval(e).unwrap() };
            // `"xxx…"`: 50 bytes exactly, then 51.
            assert_eq!(
                from_js(&eval("'x'.repeat(48)"), 50),
                Ok(serde_json::json!("x".repeat(48)))
            );
            assert_eq!(from_js(&eval("'x'.repeat(49)"), 50), Err(NotDirect::TooBig));
            // 30 newlines: 32 bytes before escaping, 62 after.
            assert_eq!(
                from_js(&eval("'\\n'.repeat(30)"), 50),
                Err(NotDirect::TooBig)
            );
            assert_eq!(json_len(&serde_json::json!("\n".repeat(30))), 62);
            assert_eq!(
                from_js(&eval("({a: [1, 2, 3], b: 'x'.repeat(1000)})"), 100),
                Err(NotDirect::TooBig)
            );
        });
    }

    #[test]
    fn arguments_are_one_array_in_order() {
        let rt = Runtime::new().unwrap();
        let ctx = Context::full(&rt).unwrap();
        ctx.with(|ctx| {
            let args = [
                serde_json::json!({"id": "c"}),
                serde_json::Value::Null,
                serde_json::json!("aud"),
            ];
            let array = args_to_js(&ctx, &args).unwrap();
            let text = ctx
                .json_stringify(array)
                .unwrap()
                .unwrap()
                .to_string()
                .unwrap();
            assert_eq!(text, r#"[{"id":"c"},null,"aud"]"#);
        });
    }
}
