//! JSON values into JS values without a JSON text in between.
//!
//! A call's arguments used to cross as a JSON string: `serde_json::to_string` on the caller's
//! thread, `JSON.parse` on the worker. QuickJS's `JSON.parse` runs its full tokenizer, and for
//! credentials-exchange's four arguments it was the largest single cost of a warm call (~34k of
//! ~90k instructions, callgrind). Building the objects directly gives the same values: own,
//! enumerable, writable, configurable data properties in the JSON's order, `__proto__` included
//! as an ordinary key, as `JSON.parse` defines them.
//!
//! Must not: change what a hook sees — the tests below compare every shape with `JSON.parse`.

use rquickjs::object::Property;
use rquickjs::{Array, Ctx, Object, Value};

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
