//! The store behind Auth0 Actions' `api.cache`: one per hookgate process, shared by every
//! worker and every Action of a trigger (Auth0 keeps one cache per trigger), kept across hot
//! reloads, with Auth0's limits. The Actions adapter (`hooks/actions/shim.js`) calls it through
//! `native.actionCache*`.
//!
//! Owns: entries, their lifetimes and the limits. Must not touch: anything but its own map; it
//! never blocks on I/O (one short mutex section per call).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use rquickjs::{Ctx, Function, Object, Value};

/// Entries per trigger.
pub const MAX_ENTRIES: usize = 20;
/// Bytes of a key (UTF-8).
pub const MAX_KEY_BYTES: usize = 64;
/// Bytes of one value (UTF-8).
pub const MAX_VALUE_BYTES: usize = 4096;
/// Bytes of all values of a trigger together.
pub const MAX_TOTAL_BYTES: usize = 8192;
/// The longest lifetime of an entry, ms.
pub const MAX_TTL_MS: f64 = 24.0 * 3600.0 * 1000.0;

struct Entry {
    value: String,
    /// Unix ms.
    expires_at: f64,
}

static CACHE: LazyLock<Mutex<HashMap<String, HashMap<String, Entry>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Why a set was refused, in Auth0's codes, or `None` when stored.
pub fn set(
    trigger: &str,
    key: &str,
    value: &str,
    expires_at: f64,
    now: f64,
) -> Option<&'static str> {
    if key.len() > MAX_KEY_BYTES {
        return Some("INVALID_KEY");
    }
    if value.len() > MAX_VALUE_BYTES {
        return Some("VALUE_TOO_LARGE");
    }
    let expires_at = expires_at.min(now + MAX_TTL_MS);
    let mut all = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let bucket = all.entry(trigger.to_owned()).or_default();
    bucket.retain(|_, e| e.expires_at > now);
    let others: usize = bucket
        .iter()
        .filter(|(k, _)| k.as_str() != key)
        .map(|(_, e)| e.value.len())
        .sum();
    if others + value.len() > MAX_TOTAL_BYTES {
        return Some("CACHE_FULL");
    }
    if !bucket.contains_key(key) && bucket.len() >= MAX_ENTRIES {
        // As Auth0: the entry closest to expiry makes room.
        if let Some(victim) = bucket
            .iter()
            .min_by(|a, b| a.1.expires_at.total_cmp(&b.1.expires_at))
            .map(|(k, _)| k.clone())
        {
            bucket.remove(&victim);
        }
    }
    bucket.insert(
        key.to_owned(),
        Entry {
            value: value.to_owned(),
            expires_at,
        },
    );
    None
}

/// The live entry's value and expiry.
pub fn get(trigger: &str, key: &str, now: f64) -> Option<(String, f64)> {
    let mut all = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let bucket = all.get_mut(trigger)?;
    match bucket.get(key) {
        Some(e) if e.expires_at > now => Some((e.value.clone(), e.expires_at)),
        Some(_) => {
            bucket.remove(key);
            None
        }
        None => None,
    }
}

pub fn delete(trigger: &str, key: &str) {
    let mut all = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(bucket) = all.get_mut(trigger) {
        bucket.remove(key);
    }
}

/// Now, in Unix ms: taken here, never from JS (an Action that replaced `Date.now` must not
/// expire other Actions' entries or outlive the 24 h cap).
fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The stores there are: one per trigger, and one per trigger for the Runner's scratch runs
/// (`runner:<trigger>`), so trying an Action never reads or changes what production Actions
/// cached. Anything else is refused: no caller can make buckets of its own.
fn valid_scope(scope: &str) -> bool {
    let trigger = scope.strip_prefix("runner:").unwrap_or(scope);
    crate::config::Trigger::all()
        .iter()
        .any(|t| t.id() == trigger)
}

/// The default lifetime of an entry, ms (Auth0's).
pub const DEFAULT_TTL_MS: f64 = 15.0 * 60.0 * 1000.0;

/// `native.actionCacheGet(scope, key)` → `[value, expires_at]` or `undefined`;
/// `native.actionCacheSet(scope, key, value, ttl_ms, expires_at)` (either may be `null`) → the
/// entry's `expires_at`, or an Auth0 error code as a string;
/// `native.actionCacheDelete(scope, key)`. An unknown scope throws.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    fn scope_ok(ctx: &Ctx<'_>, scope: &str) -> rquickjs::Result<()> {
        if valid_scope(scope) {
            Ok(())
        } else {
            Err(rquickjs::Exception::throw_type(
                ctx,
                "api.cache: unknown cache",
            ))
        }
    }
    native.set(
        "actionCacheGet",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, scope: String, key: String| -> rquickjs::Result<Value<'js>> {
                scope_ok(&ctx, &scope)?;
                match get(&scope, &key, now_ms()) {
                    Some((value, expires)) => {
                        let pair = rquickjs::Array::new(ctx.clone())?;
                        pair.set(0, value)?;
                        pair.set(1, expires)?;
                        Ok(pair.into_value())
                    }
                    None => Ok(Value::new_undefined(ctx)),
                }
            },
        )?,
    )?;
    native.set(
        "actionCacheSet",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             scope: String,
             key: String,
             value: String,
             ttl: Option<f64>,
             expires_at: Option<f64>|
             -> rquickjs::Result<Value<'js>> {
                scope_ok(&ctx, &scope)?;
                let now = now_ms();
                let expires = match (ttl, expires_at) {
                    (Some(ttl), _) if ttl.is_finite() => now + ttl.max(0.0),
                    (_, Some(at)) if at.is_finite() => at,
                    _ => now + DEFAULT_TTL_MS,
                }
                .min(now + MAX_TTL_MS);
                match set(&scope, &key, &value, expires, now) {
                    Some(code) => rquickjs::String::from_str(ctx, code).map(|s| s.into_value()),
                    None => Ok(Value::new_number(ctx, expires)),
                }
            },
        )?,
    )?;
    native.set(
        "actionCacheDelete",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, scope: String, key: String| -> rquickjs::Result<()> {
                scope_ok(&ctx, &scope)?;
                delete(&scope, &key);
                Ok(())
            },
        )?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_limits_hold_per_trigger() {
        let t = "test-limits";
        assert_eq!(set(t, "a", "1", 2000.0, 1000.0), None);
        assert_eq!(get(t, "a", 1500.0), Some(("1".into(), 2000.0)));
        assert_eq!(get(t, "a", 2000.0), None, "expired at its time");
        assert_eq!(set(t, &"k".repeat(65), "v", 9e12, 0.0), Some("INVALID_KEY"));
        assert_eq!(
            set(t, "big", &"v".repeat(4097), 9e12, 0.0),
            Some("VALUE_TOO_LARGE")
        );
        assert_eq!(set(t, "x", &"v".repeat(4096), 9e12, 0.0), None);
        assert_eq!(set(t, "y", &"v".repeat(4096), 9e12, 0.0), None);
        assert_eq!(set(t, "z", "v", 9e12, 0.0), Some("CACHE_FULL"));
        assert_eq!(
            set(t, "y", "small", 9e12, 0.0),
            None,
            "replacing frees its bytes"
        );
        assert_eq!(
            get("another-trigger", "x", 0.0),
            None,
            "each trigger has its own cache"
        );
        assert_eq!(
            get(t, "x", 0.0).map(|(_, e)| e),
            Some(MAX_TTL_MS),
            "a lifetime beyond 24 h is cut to 24 h"
        );
    }

    #[test]
    fn only_the_triggers_and_their_runner_scopes_are_stores() {
        assert!(valid_scope("credentials-exchange"));
        assert!(valid_scope("runner:send-phone-message"));
        for bad in [
            "",
            "t1",
            "runner:",
            "runner:runner:credentials-exchange",
            "Credentials-Exchange",
        ] {
            assert!(!valid_scope(bad), "{bad}");
        }
    }

    #[test]
    fn a_full_cache_evicts_the_entry_closest_to_expiry() {
        let t = "test-evict";
        for i in 0..MAX_ENTRIES {
            assert_eq!(
                set(t, &format!("k{i}"), "v", 10_000.0 + i as f64, 0.0),
                None
            );
        }
        assert_eq!(set(t, "new", "v", 50_000.0, 0.0), None);
        assert_eq!(get(t, "k0", 1.0), None, "the soonest to expire went");
        assert!(get(t, "k1", 1.0).is_some());
        assert!(get(t, "new", 1.0).is_some());
        delete(t, "new");
        assert_eq!(get(t, "new", 1.0), None);
    }
}
