//! Auth0's Management API for hooks, with its shapes and statuses (see
//! `shared/design/management-api.md`): `GET/POST /api/v2/hooks`, `GET/PATCH/DELETE
//! /api/v2/hooks/{id}`, `GET/POST/PATCH/DELETE /api/v2/hooks/{id}/secrets`.
//!
//! Bodies are read as JSON values and checked here, so the errors read as Auth0's do (`Payload
//! validation error: 'Additional properties not allowed: triggerId'`) and `"enabled": "true"`
//! (a string, as Auth0's own examples send) is accepted.
//!
//! Owns: those routes' request schemas and answer shapes. Must not: write files (the store does)
//! or check tokens (the auth layer does).

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::Shared;
use crate::admin::store::{HookPatch, HookRecord, NewHook};
use crate::config::Trigger;

/// What `GET /hooks/{id}/secrets` shows instead of a value (Auth0's text, trailing underscore
/// included); a client sending it back means "leave it alone".
pub const NOT_SHOWN: &str = "_VALUE_NOT_SHOWN_";

/// The fields a `fields` query may name.
const FIELDS: [&str; 6] = [
    "id",
    "name",
    "script",
    "dependencies",
    "enabled",
    "triggerId",
];

pub fn routes(state: Shared) -> Router {
    Router::new()
        .route("/api/v2/hooks", get(list).post(create))
        .route(
            "/api/v2/hooks/{id}",
            get(get_one).patch(update).delete(delete),
        )
        .route(
            "/api/v2/hooks/{id}/secrets",
            get(get_secrets)
                .post(add_secrets)
                .patch(update_secrets)
                .delete(delete_secrets),
        )
        .with_state(state)
}

/// A hook in Auth0's shape.
pub fn auth0_json(h: &HookRecord) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(h.id));
    m.insert("name".into(), json!(h.name));
    m.insert("script".into(), json!(h.script));
    m.insert("dependencies".into(), json!(h.dependencies));
    m.insert("triggerId".into(), json!(h.trigger.id()));
    m.insert("enabled".into(), json!(h.enabled));
    m
}

/// `fields` and `include_fields` of a query: which of a hook's fields to show.
struct FieldFilter {
    names: Option<Vec<String>>,
    include: bool,
}

impl FieldFilter {
    fn from_query(q: &HashMap<String, String>) -> Result<FieldFilter, ApiError> {
        let names = match q.get("fields").map(|f| f.trim()).filter(|f| !f.is_empty()) {
            None => None,
            Some(f) => {
                let names: Vec<String> = f.split(',').map(|s| s.trim().to_string()).collect();
                if let Some(bad) = names.iter().find(|n| !FIELDS.contains(&n.as_str())) {
                    return Err(ApiError::invalid_query(format!(
                        "Query validation error: 'String does not match pattern: {bad}' on property fields (one of: {})",
                        FIELDS.join(",")
                    )));
                }
                Some(names)
            }
        };
        Ok(FieldFilter {
            names,
            include: query_bool(q, "include_fields")?.unwrap_or(true),
        })
    }

    fn apply(&self, mut m: Map<String, Value>) -> Value {
        if let Some(names) = &self.names {
            m.retain(|k, _| names.iter().any(|n| n == k) == self.include);
        }
        Value::Object(m)
    }
}

pub(super) fn parse_query(raw: Option<String>) -> HashMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

pub(super) fn query_bool(q: &HashMap<String, String>, key: &str) -> Result<Option<bool>, ApiError> {
    match q.get(key).map(String::as_str) {
        None | Some("") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::invalid_query(format!(
            "Query validation error: 'Expected type boolean but found type string' on property {key}."
        ))),
    }
}

fn query_uint(q: &HashMap<String, String>, key: &str) -> Result<Option<usize>, ApiError> {
    match q.get(key).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::invalid_query(format!(
                "Query validation error: 'Expected type integer but found type string' on property {key}."
            ))
        }),
    }
}

/// Auth0's default page size.
const DEFAULT_PER_PAGE: usize = 50;
const MAX_PER_PAGE: usize = 100;

async fn list(State(state): State<Shared>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let q = parse_query(raw);
    let page = query_uint(&q, "page")?.unwrap_or(0);
    let per_page = query_uint(&q, "per_page")?.unwrap_or(DEFAULT_PER_PAGE);
    if per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(ApiError::invalid_query(format!(
            "Query validation error: 'Value {per_page} is out of range, 1 to {MAX_PER_PAGE}' on property per_page."
        )));
    }
    let include_totals = query_bool(&q, "include_totals")?.unwrap_or(false);
    let enabled = query_bool(&q, "enabled")?;
    let trigger = match q.get("triggerId").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(t.parse::<Trigger>().map_err(|_| {
            ApiError::invalid_query(format!(
                "Query validation error: 'No enum match for: \"{t}\"' on property triggerId."
            ))
        })?),
    };
    let mut filter = FieldFilter::from_query(&q)?;
    // The list leaves out the code unless `fields` asks for it (deploy-cli reads it per hook).
    if filter.names.is_none() {
        filter = FieldFilter {
            names: Some(vec!["script".into()]),
            include: false,
        };
    }
    let hooks: Vec<HookRecord> = state
        .read(|s| s.list())
        .await?
        .into_iter()
        .filter(|h| enabled.is_none_or(|e| h.enabled == e))
        .filter(|h| trigger.is_none_or(|t| h.trigger == t))
        .collect();
    let total = hooks.len();
    let start = page.saturating_mul(per_page);
    let items: Vec<Value> = hooks
        .iter()
        .skip(start)
        .take(per_page)
        .map(|h| filter.apply(auth0_json(h)))
        .collect();
    Ok(match include_totals {
        true => Json(json!({ "start": start, "limit": per_page, "total": total, "hooks": items })),
        false => Json(Value::Array(items)),
    }
    .into_response())
}

async fn get_one(
    State(state): State<Shared>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let filter = FieldFilter::from_query(&parse_query(raw))?;
    let hook = state.read(move |s| s.get(&id)).await?;
    Ok(Json(filter.apply(auth0_json(&hook))).into_response())
}

/// The request body as a JSON object.
pub(super) fn object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ApiError::invalid(format!(
            "Payload validation error: 'Expected type object but found type {}'.",
            type_name(&other)
        ))),
        Err(e) => Err(ApiError::invalid(format!(
            "Payload validation error: 'Invalid JSON: {e}'."
        ))),
    }
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Refuse properties outside `allowed`, as Auth0's schemas do.
pub(super) fn only(m: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(format!(
            "Payload validation error: 'Additional properties not allowed: {k}'."
        ))),
        None => Ok(()),
    }
}

fn wrong_type(key: &str, expected: &str, v: &Value) -> ApiError {
    ApiError::invalid(format!(
        "Payload validation error: 'Expected type {expected} but found type {}' on property {key}.",
        type_name(v)
    ))
}

pub(super) fn string_prop(m: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(wrong_type(key, "string", v)),
    }
}

/// A boolean, or the strings `"true"`/`"false"` (Auth0's examples send those).
pub(super) fn bool_prop(m: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(v) => Err(wrong_type(key, "boolean", v)),
    }
}

pub(super) fn dependencies_prop(
    m: &Map<String, Value>,
) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    match m.get("dependencies") {
        None => Ok(None),
        Some(Value::Object(deps)) => deps
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(wrong_type(&format!("dependencies.{k}"), "string", other)),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(v) => Err(wrong_type("dependencies", "object", v)),
    }
}

fn required(key: &str) -> ApiError {
    ApiError::invalid(format!(
        "Payload validation error: 'Missing required property: {key}'."
    ))
}

pub(super) fn trigger_prop(m: &Map<String, Value>) -> Result<Option<Trigger>, ApiError> {
    match string_prop(m, "triggerId")? {
        None => Ok(None),
        Some(t) => t.parse().map(Some).map_err(|_| {
            ApiError::invalid(format!(
                "Payload validation error: 'No enum match for: \"{t}\"' on property triggerId."
            ))
        }),
    }
}

/// The Auth0 PATCH fields of a body (`name`, `script`, `enabled`, `dependencies`).
pub(super) fn auth0_patch(m: &Map<String, Value>) -> Result<HookPatch, ApiError> {
    Ok(HookPatch {
        name: string_prop(m, "name")?,
        script: string_prop(m, "script")?,
        enabled: bool_prop(m, "enabled")?,
        dependencies: dependencies_prop(m)?,
        ..Default::default()
    })
}

async fn create(State(state): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let m = object(&body)?;
    only(
        &m,
        &["name", "script", "triggerId", "enabled", "dependencies"],
    )?;
    let new = NewHook {
        name: string_prop(&m, "name")?.ok_or_else(|| required("name"))?,
        script: string_prop(&m, "script")?.ok_or_else(|| required("script"))?,
        trigger: trigger_prop(&m)?.ok_or_else(|| required("triggerId"))?,
        // Auth0: a new hook is disabled unless said otherwise.
        enabled: bool_prop(&m, "enabled")?.unwrap_or(false),
        dependencies: dependencies_prop(&m)?.unwrap_or_default(),
    };
    let hook = state.write(move |s| s.create(new)).await?;
    tracing::info!(id = %hook.id, name = %hook.name, trigger = %hook.trigger, "hook created through the management API");
    Ok((StatusCode::CREATED, Json(Value::Object(auth0_json(&hook)))).into_response())
}

async fn update(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let m = object(&body)?;
    // `triggerId` is not in Auth0's PATCH schema: changing it means a new hook.
    only(&m, &["name", "script", "enabled", "dependencies"])?;
    let patch = auth0_patch(&m)?;
    let hook = state.write(move |s| s.update(&id, patch)).await?;
    Ok(Json(Value::Object(auth0_json(&hook))).into_response())
}

async fn delete(State(state): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let deleted = id.clone();
    state.write(move |s| s.delete(&id)).await?;
    tracing::info!(id = %deleted, "hook deleted through the management API");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_secrets(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let names = state.read(move |s| s.secret_names(&id)).await?;
    let shown: Map<String, Value> = names.into_iter().map(|n| (n, json!(NOT_SHOWN))).collect();
    Ok(Json(Value::Object(shown)).into_response())
}

/// A secrets body: an object of 1 to 20 string values.
fn secrets_body(body: &Bytes) -> Result<BTreeMap<String, String>, ApiError> {
    let m = object(body)?;
    if m.is_empty() || m.len() > crate::admin::store::MAX_SECRETS {
        return Err(ApiError::invalid(format!(
            "Payload validation error: 'Expected between 1 and {} properties'.",
            crate::admin::store::MAX_SECRETS
        )));
    }
    m.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(wrong_type(k, "string", other)),
        })
        .collect()
}

async fn add_secrets(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let secrets = secrets_body(&body)?;
    for (name, value) in &secrets {
        if value == NOT_SHOWN {
            // Auth0 stored it as sent; so does hookgate, but the hook will not get a real value.
            tracing::warn!(hook = %id, secret = %name, "a secret was created with the placeholder {NOT_SHOWN} as its value (from an export?): set its real value");
        }
    }
    state.write(move |s| s.add_secrets(&id, &secrets)).await?;
    Ok((StatusCode::CREATED, Json(json!({}))).into_response())
}

async fn update_secrets(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut secrets = secrets_body(&body)?;
    // What a GET showed, sent back: leave that one as it is.
    secrets.retain(|_, v| v != NOT_SHOWN);
    if secrets.is_empty() {
        state.read(move |s| s.get(&id)).await?;
    } else {
        state
            .write(move |s| s.update_secrets(&id, &secrets))
            .await?;
    }
    Ok((StatusCode::CREATED, Json(json!({}))).into_response())
}

async fn delete_secrets(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let names: Vec<String> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong_type("[]", "string", other)),
            })
            .collect::<Result<_, _>>()?,
        Ok(other) => {
            return Err(ApiError::invalid(format!(
                "Payload validation error: 'Expected type array but found type {}'.",
                type_name(&other)
            )))
        }
        Err(e) => {
            return Err(ApiError::invalid(format!(
                "Payload validation error: 'Invalid JSON: {e}'."
            )))
        }
    };
    state.write(move |s| s.delete_secrets(&id, &names)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
