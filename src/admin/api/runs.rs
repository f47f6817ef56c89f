//! Run records and the Runner over the management API:
//! - `GET /api/hookgate/runs?hook=&point=&outcome=&q=&limit=&before=`: a page of records, newest
//!   first (`{records, next_before}`);
//! - `GET /api/hookgate/runs/{id}`: one record;
//! - `GET /api/hookgate/runs/stream`: the live tail as server-sent events (`event: run`, `id`,
//!   `data` the record; `event: missed` with a count when records were dropped before this
//!   client read them), resuming after `Last-Event-ID`;
//! - `POST /api/hookgate/hooks/test`: the Runner — `{triggerId, script, payload?, secrets?,
//!   name?}` in, `{outcome, response|error, console, requests, duration_ms}` out; nothing is
//!   written anywhere.
//!
//! In cluster mode the list, a record and the tail come from the shared stream of every
//! replica's records (`crate::runs::shared`); ids are then the same on every replica.
//!
//! Scopes come from the one table in `auth.rs` (`read:logs`, `update:hooks`).
//! Owns: these routes' HTTP shapes. Must not: keep records (`crate::runs`) or run scripts itself
//! (`crate::hooks::runner`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::errors::ApiError;
use crate::config::Config;
use crate::hooks::runner::{Runner, RunnerError, RunnerRequest};
use crate::runs::{Query, Runs};

#[derive(Clone)]
struct RunsState {
    runs: Runs,
    /// Tried scripts run on the Runner's own engine, never on the workers requests share.
    runner: Arc<Runner>,
    config: Arc<Config>,
}

/// The routes, ready for [`super::Api::with_routes`].
pub fn routes(runs: Runs, config: Arc<Config>) -> Router {
    let runner = Arc::new(Runner::new(&config.hooks));
    Router::new()
        .route("/api/hookgate/runs", get(list))
        .route("/api/hookgate/runs/stream", get(stream))
        .route("/api/hookgate/runs/{id}", get(one))
        .route("/api/hookgate/hooks/test", post(test))
        .with_state(RunsState {
            runs,
            runner,
            config,
        })
}

fn shared_unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "cluster_unavailable",
        format!("the cluster's run records (Redis) cannot be read now: {e}"),
    )
}

async fn list(State(s): State<RunsState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let query = Query::parse(q.as_deref().unwrap_or("")).map_err(ApiError::invalid_query)?;
    if let Some(shared) = s.runs.shared() {
        let page = tokio::task::spawn_blocking(move || shared.query(&query))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(shared_unavailable)?;
        return Ok(Json(page).into_response());
    }
    Ok(Json(s.runs.query(&query)).into_response())
}

async fn one(State(s): State<RunsState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let found = match (s.runs.shared(), id.parse::<u64>().ok()) {
        (_, None) => None,
        (None, Some(n)) => s.runs.get(n),
        (Some(shared), Some(n)) => tokio::task::spawn_blocking(move || shared.get(n))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(shared_unavailable)?
            .map(Arc::new),
    };
    let record = found.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "inexistent_run",
            format!("no run record {id} (the store keeps the newest ones only)"),
        )
    })?;
    Ok(Json(record.as_ref()).into_response())
}

async fn stream(State(s): State<RunsState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let after = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid("Last-Event-ID must be a run record id"))?,
        ),
    };
    let to_event = |tail: crate::runs::Tail| {
        let (id, kind, data) = tail.sse();
        let mut event = Event::default().event(kind).data(data);
        if let Some(id) = id {
            event = event.id(id.to_string());
        }
        Ok::<_, Infallible>(event)
    };
    type Events =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Event, Infallible>> + Send>>;
    let events: Events = match s.runs.shared() {
        None => {
            let sub = s.runs.subscribe(after);
            Box::pin(futures_util::stream::unfold(
                sub,
                move |mut sub| async move {
                    let tail = sub.next().await?;
                    Some((to_event(tail), sub))
                },
            ))
        }
        Some(shared) => {
            // Each read blocks up to a second on Redis: off the async threads.
            let tail = Some(shared.tail(after));
            Box::pin(futures_util::stream::unfold(
                tail,
                move |mut tail| async move {
                    loop {
                        let mut t = tail.take()?;
                        let (t, next) = tokio::task::spawn_blocking(move || {
                            let next = t.poll();
                            (t, next)
                        })
                        .await
                        .ok()?;
                        tail = Some(t);
                        if let Some(next) = next {
                            return Some((to_event(next), tail));
                        }
                    }
                },
            ))
        }
    };
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response
        .headers_mut()
        .insert("cache-control", "no-store".parse().expect("a valid header"));
    Ok(response)
}

async fn test(
    State(s): State<RunsState>,
    body: Result<Json<RunnerRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    match s
        .runner
        .run(&s.config.hooks, s.config.base_dir(), req)
        .await
    {
        Ok(result) => Ok(Json(result).into_response()),
        Err(e @ RunnerError::TooLarge(_)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "script_too_large",
            e.to_string(),
        )),
        Err(e @ RunnerError::Compile(_)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_script",
            e.to_string(),
        )),
        Err(e @ RunnerError::Unavailable(_)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "runner_unavailable",
            e.to_string(),
        )),
        Err(e) => Err(ApiError::invalid(e.to_string())),
    }
}
