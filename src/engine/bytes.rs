//! Bytes across the JS boundary: the one place a JS value becomes `Vec<u8>` and back.
//!
//! Owns: which JS values count as bytes (strings as UTF-8, `ArrayBuffer`, `Uint8Array` and so
//! `Buffer`, any other typed-array view by its bytes) and the type handed back (`Uint8Array`,
//! which `Buffer.from(u8.buffer, u8.byteOffset, u8.length)` wraps without a copy).
//! Must not touch: encodings other than UTF-8 — `Buffer` owns those, in JS.

use rquickjs::{Ctx, Object, TypedArray, Value};

/// The bytes of `value`; `null`/`undefined` are empty.
pub(crate) fn bytes_in(value: &Value<'_>) -> rquickjs::Result<Vec<u8>> {
    if value.is_null() || value.is_undefined() {
        return Ok(Vec::new());
    }
    if let Some(s) = value.as_string() {
        return Ok(s.to_string()?.into_bytes());
    }
    if let Some(obj) = value.as_object() {
        if let Some(bytes) = view_bytes(obj) {
            return Ok(bytes);
        }
        if let Some(ab) = obj.as_array_buffer() {
            // SAFETY: the slice is copied before any JavaScript runs again.
            if let Some(b) = unsafe { ab.as_bytes() } {
                return Ok(b.to_vec());
            }
        }
    }
    Err(rquickjs::Error::new_from_js(
        value.type_name(),
        "string, Buffer, Uint8Array or ArrayBuffer",
    ))
}

/// Any typed array (`Uint8Array`, `Buffer`, `Uint16Array`, `DataView` excluded) as its raw bytes.
fn view_bytes(obj: &Object<'_>) -> Option<Vec<u8>> {
    macro_rules! try_view {
        ($($t:ty),*) => {$(
            if let Some(view) = obj.as_typed_array::<$t>() {
                let raw = view.as_raw()?;
                // SAFETY: the pointer is valid until JavaScript runs again; we copy at once.
                return Some(unsafe { raw.as_ref() }.to_vec());
            }
        )*};
    }
    try_view!(u8, i8, u16, i16, u32, i32, f32, f64);
    None
}

/// `bytes` as a fresh `Uint8Array`.
pub(crate) fn bytes_out<'js>(ctx: &Ctx<'js>, bytes: Vec<u8>) -> rquickjs::Result<Value<'js>> {
    Ok(TypedArray::<u8>::new(ctx.clone(), bytes)?.into_value())
}
