//! hookgate's own management routes, beside Auth0's (whose shapes stay strict):
//! - `GET /api/hookgate/hooks`, `GET/PATCH /api/hookgate/hooks/{id}`: a hook with everything
//!   its entry holds (`order`, `clients`, `routes`, `timeout_ms`, `on_error`, `max_concurrency`),
//!   its `file`, its secret names, missing dependencies and the reload problems that name it;
//! - `POST /api/hookgate/hooks/order` `{triggerId, ids}`: the run order of a trigger's hooks;
//! - `GET /api/hookgate/status`: the generation in force, the last rejected change, the upstream,
//!   hooks whose `dependencies` are missing from `node_modules` or at another major version;
//! - `GET /api/hookgate/outbox?state=pending|dead`, `POST /api/hookgate/outbox/{seq}/retry`,
//!   `DELETE /api/hookgate/outbox/{seq}`: the running hookgate's outbox (redb lets one process
//!   open the file, so while hookgate runs this is how it is managed).
//!
//! Owns: those routes' shapes. Must not: write files (the store does) or check tokens.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::hooks::{auth0_json, auth0_patch, object, only, parse_query, trigger_prop, type_name};
use super::Shared;
use crate::admin::store::HookRecord;
use crate::config::OnError;
use crate::outbox::State as EventState;

pub fn routes(state: Shared) -> Router {
    Router::new()
        .route("/api/hookgate/hooks", get(list))
        .route("/api/hookgate/hooks/order", post(set_order))
        .route("/api/hookgate/hooks/{id}", get(get_one).patch(update))
        .route("/api/hookgate/status", get(status))
        .route("/api/hookgate/outbox", get(outbox_list))
        .route("/api/hookgate/outbox/{seq}/retry", post(outbox_retry))
        .route("/api/hookgate/outbox/{seq}", delete(outbox_drop))
        .with_state(state)
}

/// A hook with hookgate's own fields. `reload_problems`: the last rejected reload's problems
/// that name this hook's file.
fn native_json(h: &HookRecord, reload: &Value, with_script: bool) -> Value {
    let mut m = auth0_json(h);
    if !with_script {
        m.remove("script");
    }
    m.insert("order".into(), json!(h.order));
    m.insert("clients".into(), json!(h.clients));
    m.insert("routes".into(), json!(h.routes));
    m.insert("timeout_ms".into(), json!(h.timeout_ms));
    m.insert(
        "on_error".into(),
        json!(match h.on_error {
            OnError::Deny => "deny",
            OnError::Allow => "allow",
        }),
    );
    m.insert("max_concurrency".into(), json!(h.max_concurrency));
    m.insert("file".into(), json!(h.file.to_string_lossy()));
    m.insert("kind".into(), json!("hook"));
    m.insert("secrets".into(), json!(h.secrets));
    m.insert("dependency_problems".into(), json!(h.dependency_problems));
    let file = h.file.to_string_lossy();
    let problems: Vec<&Value> = reload["last_error"]["problems"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p.as_str().is_some_and(|p| p.contains(file.as_ref())))
                .collect()
        })
        .unwrap_or_default();
    m.insert("reload_problems".into(), json!(problems));
    Value::Object(m)
}

async fn list(State(state): State<Shared>) -> Result<Response, ApiError> {
    let reload = state.reload.detail();
    let hooks = state.read(|s| s.list()).await?;
    Ok(Json(
        hooks
            .iter()
            .map(|h| native_json(h, &reload, false))
            .collect::<Vec<_>>(),
    )
    .into_response())
}

async fn get_one(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let hook = state.read(move |s| s.get(&id)).await?;
    Ok(Json(native_json(&hook, &state.reload.detail(), true)).into_response())
}

/// `null` clears a setting (back to its default); absent leaves it alone.
fn opt_u64(m: &Map<String, Value>, key: &str) -> Result<Option<Option<u64>>, ApiError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => v.as_u64().map(|n| Some(Some(n))).ok_or_else(|| {
            ApiError::invalid(format!(
                "Payload validation error: 'Expected a positive integer but found type {}' on property {key}.",
                type_name(v)
            ))
        }),
    }
}

fn opt_list(m: &Map<String, Value>, key: &str) -> Result<Option<Option<Vec<String>>>, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "Payload validation error: 'Expected an array of strings or null' on property {key}."
        ))
    };
    match m.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()
            .map(|l| Some(Some(l))),
        Some(_) => Err(bad()),
    }
}

async fn update(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let m = object(&body)?;
    only(
        &m,
        &[
            "name",
            "script",
            "enabled",
            "dependencies",
            "order",
            "clients",
            "routes",
            "timeout_ms",
            "on_error",
            "max_concurrency",
        ],
    )?;
    let mut patch = auth0_patch(&m)?;
    patch.order = match m.get("order") {
        None => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| {
            ApiError::invalid(
                "Payload validation error: 'Expected type integer' on property order.",
            )
        })?),
    };
    patch.timeout_ms = opt_u64(&m, "timeout_ms")?;
    patch.max_concurrency = opt_u64(&m, "max_concurrency")?.map(|o| o.map(|n| n as usize));
    patch.clients = opt_list(&m, "clients")?;
    patch.routes = opt_list(&m, "routes")?;
    patch.on_error = match m.get("on_error") {
        None => None,
        Some(v) => Some(match v.as_str() {
            Some("deny") => OnError::Deny,
            Some("allow") => OnError::Allow,
            _ => return Err(ApiError::invalid(
                "Payload validation error: 'Expected \"deny\" or \"allow\"' on property on_error.",
            )),
        }),
    };
    let hook = state.write(move |s| s.update(&id, patch)).await?;
    Ok(Json(native_json(&hook, &state.reload.detail(), true)).into_response())
}

async fn set_order(State(state): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let m = object(&body)?;
    only(&m, &["triggerId", "ids"])?;
    let trigger = trigger_prop(&m)?.ok_or_else(|| {
        ApiError::invalid("Payload validation error: 'Missing required property: triggerId'.")
    })?;
    let ids: Vec<String> = match m.get("ids") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                ApiError::invalid(
                    "Payload validation error: 'Expected an array of ids' on property ids.",
                )
            })?,
        _ => return Err(ApiError::invalid(
            "Payload validation error: 'Missing required property: ids' (an array of hook ids).",
        )),
    };
    let hooks = state.write(move |s| s.set_order(trigger, &ids)).await?;
    let reload = state.reload.detail();
    Ok(Json(
        hooks
            .iter()
            .map(|h| native_json(h, &reload, false))
            .collect::<Vec<_>>(),
    )
    .into_response())
}

async fn status(State(state): State<Shared>) -> Result<Response, ApiError> {
    let up = &state.config.upstream;
    let probe = tokio::time::timeout(
        up.connect_timeout.min(Duration::from_secs(2)),
        tokio::net::TcpStream::connect(up.socket_addr),
    )
    .await;
    let upstream = match probe {
        Ok(Ok(_)) => json!({ "address": up.address, "reachable": true }),
        Ok(Err(e)) => json!({ "address": up.address, "reachable": false, "error": e.to_string() }),
        Err(_) => {
            json!({ "address": up.address, "reachable": false, "error": "connect timed out" })
        }
    };
    // `dependencies` hookgate cannot satisfy: not installed, or another major version.
    let dependencies: Vec<Value> = state
        .read(|s| s.list())
        .await
        .map(|hooks| {
            hooks
                .iter()
                .filter(|h| !h.dependency_problems.is_empty())
                .map(|h| json!({ "id": h.id, "name": h.name, "problems": h.dependency_problems }))
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({
        "config": state.store.config_path().display().to_string(),
        "dependency_problems": dependencies,
        "hooks_dir": state.store.hooks_dir().display().to_string(),
        "reload": state.reload.detail(),
        "upstream": upstream,
        "outbox": { "open": state.outbox.is_open(), "path": state.outbox.path().display().to_string() },
    }))
    .into_response())
}

fn seq(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "inexistent_event",
            format!("no outbox event {text} (events are named by their sequence number)"),
        )
    })
}

/// Run an outbox operation off the async threads.
async fn outbox_op<T: Send + 'static>(
    state: &Shared,
    op: impl FnOnce(&crate::outbox::Outbox) -> anyhow::Result<T> + Send + 'static,
) -> Result<Option<T>, ApiError> {
    if !state.outbox.is_open() {
        return Ok(None);
    }
    let outbox = state.outbox.clone();
    tokio::task::spawn_blocking(move || op(&outbox))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map(Some)
        .map_err(|e| ApiError::internal(format!("the outbox: {e:#}")))
}

async fn outbox_list(
    State(state): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = parse_query(raw);
    let want = match q.get("state").map(String::as_str) {
        None | Some("") => None,
        Some("pending") => Some(EventState::Pending),
        Some("dead") => Some(EventState::Dead),
        Some(other) => {
            return Err(ApiError::invalid_query(format!(
                "Query validation error: state must be pending or dead, not {other:?}"
            )))
        }
    };
    let events = outbox_op(&state, |o| o.list()).await?.unwrap_or_default();
    let events: Vec<_> = events
        .into_iter()
        .filter(|e| want.is_none_or(|w| e.state == w))
        .collect();
    Ok(Json(events).into_response())
}

async fn outbox_retry(
    State(state): State<Shared>,
    Path(text): Path<String>,
) -> Result<Response, ApiError> {
    let n = seq(&text)?;
    match outbox_op(&state, move |o| o.retry(Some(&[n]))).await? {
        Some(1) => Ok(Json(json!({ "retried": n })).into_response()),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "inexistent_event",
            format!("no outbox event {n}"),
        )),
    }
}

async fn outbox_drop(
    State(state): State<Shared>,
    Path(text): Path<String>,
) -> Result<Response, ApiError> {
    let n = seq(&text)?;
    match outbox_op(&state, move |o| o.drop_events(Some(&[n]))).await? {
        Some(1) => Ok(StatusCode::NO_CONTENT.into_response()),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "inexistent_event",
            format!("no outbox event {n}"),
        )),
    }
}
