//! The extensibility points: what hookgate does with a request of each hooked route, one file per
//! point, with phases in the order a request runs them (as a reverse proxy's filters are):
//!
//! ```text
//! request (headers as text, whole body) ─▶ before_upstream ─┬─ Forward(body, header edits) ─▶ upstream
//!                                                           └─ Answer (no upstream: a webhook)
//! upstream's answer (status, body) ─▶ after_upstream ─▶ the answer the client gets
//! any phase ─▶ Err(Failure) ─▶ written by the transport in the point's Shape
//! ```
//!
//! | route's point | file | hooks it runs |
//! |---|---|---|
//! | credentials-exchange | [`credentials_exchange`] | credentials-exchange, after the upstream |
//! | pre-user-registration | [`signup`] | pre-user-registration before; post-user-registration's event after |
//! | post-change-password | [`change_password`] | post-change-password's event, after |
//! | send-phone-message | [`send_phone_message`] | send-phone-message, no upstream |
//!
//! Each point knows only its hooks' arguments, how it applies their results, which [`Failure`]
//! each problem is, and the post-events it emits. It sees an [`Exchange`]: the request id, the
//! request's headers as text and its body (parameters parsed on demand), its route's own options
//! ([`Point::Options`]: the struct of its kind in `config::routes`, which [`for_route`] hands
//! over with the point, so a point never sees another kind's route), the tenant-wide settings,
//! a hook-chain runner ([`HookChain`]: the engine and its wait strategy, and the one `on_error`
//! table) and the post-event sink ([`Events`]: the outbox).
//!
//! Owns: the [`Point`] trait, the exchange context, the domain error [`Failure`] and the table
//! from a route's kind to its point's code ([`for_route`]). Must not: name the transport, the
//! upstream client or its header types, or write bytes: the transport (`proxy`) reads the body,
//! calls the phases, talks to the upstream and writes the answer (`proxy::respond` turns a
//! [`Failure`] into bytes, per [`Shape`]).

pub mod change_password;
pub mod credentials_exchange;
pub mod send_phone_message;
pub mod signup;

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;

use crate::config::{Config, RouteKind};
use crate::config::{OnError, Trigger};
use crate::engine::{Engine, HookError, HookFailure, Wait};
use crate::hooks::{contract, Generation, Hook, Kind};
use crate::outbox::{Event, Outbox};
use crate::runs::{Outcome, RunStart, Runs};
use crate::token::{KeyRing, UpstreamKeys};
use crate::wire::headers::Headers;
use crate::wire::params::{self, Params};

/// One failure of an exchange, by kind; the transport turns it into status and body in one
/// place (`proxy::respond::render`), in the shape of the route's point. The text is the
/// client's `error_description` (or the signup shape's `description`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The request cannot be read or is not acceptable as sent: 400 `invalid_request`.
    BadRequest(String),
    /// The request is refused with a code of the point's protocol (e.g. `invalid_signup`): 400.
    Refused {
        code: &'static str,
        description: String,
    },
    /// A hook denied the request with one of its contract's errors (Auth0's error classes),
    /// mapped to the protocol's code: 400.
    HookDenied {
        code: &'static str,
        description: String,
    },
    /// The request's method is not one the endpoint takes: 405 `invalid_request`.
    MethodNotAllowed(String),
    /// The caller did not prove who it is: 401 `invalid_token`.
    Unauthorized(String),
    /// The request head is larger than accepted: 431 `invalid_request`.
    HeadTooLarge(String),
    /// The request body is larger than accepted: 413 `invalid_request`.
    BodyTooLarge(String),
    /// The request body did not arrive in time: 408 `invalid_request`.
    BodyTooSlow(String),
    /// A hook failed (or answered what the contract does not allow) and the request cannot go
    /// on: 500 `server_error`.
    HookFailed(String),
    /// A hook could not run: no worker was free in time. 503 `temporarily_unavailable`,
    /// whatever the hook's `on_error` (failing open under load would let a flood walk around it).
    Overloaded(String),
    /// A hook did not answer in time, and nothing else can answer: 504 `temporarily_unavailable`.
    HookTimedOut(String),
    /// hookgate cannot take the request now (its post-event cannot be stored, it is shutting
    /// down); nothing was changed: 503 `temporarily_unavailable`.
    Unavailable(String),
    /// The identity server did not accept a connection or answer in time: 504
    /// `temporarily_unavailable`.
    UpstreamTimedOut(String),
    /// The identity server cannot be reached: 502 `temporarily_unavailable`.
    UpstreamUnreachable(String),
    /// The identity server answered something hookgate cannot use: 502 `server_error`.
    UpstreamInvalid(String),
    /// Anything else that is hookgate's fault: 500 `server_error`.
    Internal(String),
}

impl From<params::BadRequest> for Failure {
    fn from(e: params::BadRequest) -> Failure {
        Failure::BadRequest(e.0)
    }
}

/// The shape a point's errors are written in (see `proxy::respond`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"error","error_description"}` (RFC 6749 §5.2): token endpoints and everything else.
    OAuth,
    /// Auth0's `/dbconnections/signup` shape `{"name","code","description","statusCode"}`,
    /// which signup clients (auth0.js, Lock, the SDKs) parse.
    Signup,
    /// A webhook the identity server calls: today the OAuth shape, which those callers read.
    Webhook,
}

/// The request as a point sees it: headers as text and the whole body.
#[derive(Debug, Clone)]
pub struct Request {
    pub headers: Headers,
    pub body: Bytes,
}

impl Request {
    /// A header as text (`None` when absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The body's parameters, form or JSON by `Content-Type` (see [`Params::parse`]).
    pub fn params(&self) -> Result<Params, Failure> {
        Ok(Params::parse(self.header("content-type"), &self.body)?)
    }
}

/// A change to the request head before it goes upstream, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    Set(&'static str, String),
    Remove(&'static str),
}

/// What goes upstream: the client's request head with these edits, and this body.
#[derive(Debug, Clone, Default)]
pub struct Forward {
    /// `None`: the body as received.
    pub body: Option<Bytes>,
    pub headers: Vec<HeaderEdit>,
}

impl Forward {
    /// The request as the client sent it.
    pub fn unchanged() -> Forward {
        Forward::default()
    }
}

/// An answer: the upstream's (its headers stay as they came), or one a point gives itself
/// (written as `application/json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What `before_upstream` decided.
pub enum Before<S> {
    /// Send this upstream, then run `after_upstream` with `S`.
    Forward(Forward, S),
    /// Answer now; the upstream is not called.
    Answer(Answer),
}

/// One extensibility point: its phases, in the order a request runs them.
#[async_trait]
pub trait Point: Send + Sync + 'static {
    /// The route's own settings this point reads: the struct its [`RouteKind`] variant carries
    /// (the one place that says which part of a route a point reads; see [`for_route`]).
    type Options: Send + Sync + 'static;
    /// What `before_upstream` hands to `after_upstream` for one request.
    type State: Send + 'static;

    /// The shape the point's errors are written in.
    fn shape(&self) -> Shape;

    /// Before the upstream: what to send it, or the answer.
    async fn before_upstream(
        &self,
        cx: &Exchange<'_, Self::Options>,
    ) -> Result<Before<Self::State>, Failure>;

    /// After the upstream answered: the answer the client gets.
    async fn after_upstream(
        &self,
        cx: &Exchange<'_, Self::Options>,
        state: Self::State,
        answer: Answer,
    ) -> Result<Answer, Failure>;
}

/// A point with its route's options, as the transport drives it, whatever their types.
#[async_trait]
pub trait Phases: Send + Sync {
    fn shape(&self) -> Shape;

    /// [`Point::before_upstream`]; `Forward` carries the point's state on.
    async fn before_upstream(&self, cx: &Context<'_>) -> Result<Before<Pending>, Failure>;

    /// [`Point::after_upstream`], with what `before_upstream` returned.
    async fn after_upstream(
        &self,
        cx: &Context<'_>,
        pending: Pending,
        answer: Answer,
    ) -> Result<Answer, Failure>;
}

/// A request between its point's two phases: the state, type-erased.
pub struct Pending(Box<dyn Any + Send>);

/// A point and the options of the route it runs for, of the point's own type.
struct Bound<'r, P: Point> {
    point: &'static P,
    options: &'r P::Options,
}

#[async_trait]
impl<P: Point> Phases for Bound<'_, P> {
    fn shape(&self) -> Shape {
        self.point.shape()
    }

    async fn before_upstream(&self, cx: &Context<'_>) -> Result<Before<Pending>, Failure> {
        let exchange = Exchange {
            cx,
            options: self.options,
        };
        Ok(match self.point.before_upstream(&exchange).await? {
            Before::Answer(answer) => Before::Answer(answer),
            Before::Forward(forward, state) => Before::Forward(forward, Pending(Box::new(state))),
        })
    }

    async fn after_upstream(
        &self,
        cx: &Context<'_>,
        pending: Pending,
        answer: Answer,
    ) -> Result<Answer, Failure> {
        // The transport hands a request's pending state back to the point that made it; were
        // that ever broken, the request fails, the process does not.
        let Ok(state) = pending.0.downcast::<P::State>() else {
            return Err(Failure::Internal(
                "a request's state came back to another point".into(),
            ));
        };
        let state = *state;
        let exchange = Exchange {
            cx,
            options: self.options,
        };
        self.point.after_upstream(&exchange, state, answer).await
    }
}

/// The point of a route's kind, with that kind's options (the trigger table: a new point adds
/// one line here). A point is given only the options of its own kind: `bind` takes exactly
/// its [`Point::Options`]. `None` for a passthrough route.
pub fn for_route(kind: &RouteKind) -> Option<Box<dyn Phases + '_>> {
    fn bind<'r, P: Point>(point: &'static P, options: &'r P::Options) -> Box<dyn Phases + 'r> {
        Box::new(Bound { point, options })
    }
    match kind {
        RouteKind::Passthrough => None,
        RouteKind::CredentialsExchange(o) => {
            Some(bind(&credentials_exchange::CredentialsExchange, o))
        }
        RouteKind::Signup(o) => Some(bind(&signup::Signup, o)),
        RouteKind::ChangePassword(o) => Some(bind(&change_password::ChangePassword, o)),
        RouteKind::SendPhoneMessage(o) => Some(bind(&send_phone_message::SendPhoneMessage, o)),
    }
}

/// What every point sees of one exchange, but its options (see [`Exchange`]).
pub struct Context<'a> {
    pub request_id: &'a str,
    /// The route's name (hooks target routes by name; logs name it).
    pub route: &'a str,
    pub request: Request,
    /// Tenant-wide settings: `[tenant]`, `[clients]`, `[token]`.
    pub config: &'a Config,
    pub tokens: Tokens<'a>,
    pub hooks: HookChain<'a>,
    pub events: Events<'a>,
}

/// A [`Context`] with the route's options of one point.
pub struct Exchange<'a, O> {
    pub cx: &'a Context<'a>,
    pub options: &'a O,
}

impl<'a, O> std::ops::Deref for Exchange<'a, O> {
    type Target = Context<'a>;
    fn deref(&self) -> &Context<'a> {
        self.cx
    }
}

/// Tokens: the identity server's keys (to verify its tokens) and hookgate's (to re-sign them).
pub struct Tokens<'a> {
    pub upstream_keys: &'a UpstreamKeys,
    /// hookgate's signing keys, when configured.
    pub signing: Option<&'a KeyRing>,
}

/// Runs a request's hooks: picks them from the generation in force, calls the engine with the
/// wait strategy that suits the load, says what a failed hook means (`on_error`), and leaves a
/// run record (`runs`) and the hook's metrics for every call.
pub struct HookChain<'a> {
    pub engine: &'a Engine,
    pub generation: &'a Generation,
    /// The hot-reload generation's number (`Live::number`), for run records.
    pub generation_number: u64,
    /// Where each call's run record goes (recording off: no record, nothing captured).
    pub runs: &'a Runs,
    /// Requests in flight in the process: alone in flight, a request's thread has nothing else
    /// to do and may spin on a hook's answer (see [`Wait`]).
    pub inflight: &'a AtomicUsize,
    pub request_id: &'a str,
    pub route: &'a str,
    /// What an Action's `event.request` reads beyond its Hook arguments
    /// ([`crate::hooks::actions::facts`]); built only while an Action is loaded.
    pub facts: Option<Value>,
}

/// What a point says about its hooks' failures, for [`settle`].
pub struct ErrorTable {
    /// What the request is, in log lines ("token", "signup").
    pub what: &'static str,
    /// The answer when a hook could not run (503 whatever `on_error` says).
    pub overloaded: fn(&Hook) -> Failure,
    /// A deliberate error of the point's contract (`InvalidScopeError`...), if this is one:
    /// it denies whatever `on_error` says.
    pub deliberate: fn(&HookFailure) -> Option<Failure>,
    /// The answer when any other failure denies the request (`on_error = "deny"`).
    pub denied: fn(&Hook, &HookError) -> Failure,
}

/// Whether `f` is a denial of `trigger`'s contract (run records and metrics say `denied`): the
/// classes each point's `deliberate` answers with `Failure::HookDenied`.
pub fn denied_by_contract(trigger: Trigger, f: &HookFailure) -> bool {
    contract::denies(trigger, &f.class)
}

/// The one `on_error` table of the blocking points: `Ok(())` when the request goes on without
/// the failed hook, else the failure to answer. A hook that could not run is the point's 503 and
/// a deliberate error of its contract denies, whatever `on_error` says; any other failure
/// follows the hook's `on_error`.
pub fn settle(
    request_id: &str,
    hook: &Hook,
    e: &HookError,
    table: &ErrorTable,
) -> Result<(), Failure> {
    let what = table.what;
    if *e == HookError::Overloaded {
        tracing::warn!(request_id, hook = %hook.name, "the hook could not run (overloaded); the {what} is refused with 503");
        return Err((table.overloaded)(hook));
    }
    if let HookError::Failed(f) = e {
        if let Some(failure) = (table.deliberate)(f) {
            tracing::info!(request_id, hook = %hook.name, error = %e, "the hook denied the {what}");
            return Err(failure);
        }
    }
    match hook.on_error {
        OnError::Allow => {
            tracing::warn!(request_id, hook = %hook.name, error = %e, "the hook failed; on_error = allow, so the {what} goes on without it");
            Ok(())
        }
        OnError::Deny => {
            tracing::error!(request_id, hook = %hook.name, error = %e, "the hook failed; denying the {what}");
            Err((table.denied)(hook, e))
        }
    }
}

impl HookChain<'_> {
    /// The hooks of `trigger` for this request's route and client, in order.
    pub fn hooks(&self, trigger: Trigger, client_id: Option<&str>) -> Vec<Arc<Hook>> {
        self.generation
            .hooks_for(trigger, client_id, Some(self.route))
    }

    /// Whether a hook of `trigger` may run on this route, for some client.
    pub fn any_for_route(&self, trigger: Trigger) -> bool {
        self.generation.any_for_route(trigger, self.route)
    }

    /// Whether any hook of `trigger` is loaded, whatever its targeting.
    pub fn any_loaded(&self, trigger: Trigger) -> bool {
        self.generation.all_hooks().any(|h| h.trigger == trigger)
    }

    /// How this request waits for its hooks. Alone in flight, its thread has nothing else to
    /// do: it spins on the answer first and saves a thread wake-up per hook (see [`Wait`]).
    fn wait(&self) -> Wait {
        if self.inflight.load(Ordering::Relaxed) <= 1 {
            Wait::SpinFirst
        } else {
            Wait::Sleep
        }
    }

    /// Say that a hook will be called shortly, so a sleeping worker wakes while the caller
    /// still works (only when the request would spin on the answer anyway).
    pub fn prewake(&self) {
        if self.wait() == Wait::SpinFirst {
            self.engine.prewake();
        }
    }

    /// Call one hook with its arguments (those before `cb`), for `client_id` when the point
    /// knows the client. The call's run record is stored when it ends (its work after cb
    /// included); its outcome and the time waited count in the hook's metrics now.
    pub async fn call(
        &self,
        hook: &Arc<Hook>,
        mut args: Vec<Value>,
        client_id: Option<&str>,
    ) -> Result<Value, HookError> {
        // An Action also gets the request's facts after its Hook arguments (its adapter builds
        // `event.request` from them).
        if hook.kind == Kind::Action {
            if let Some(facts) = &self.facts {
                args.push(facts.clone());
            }
        }
        let report = if self.runs.enabled() {
            self.runs.reporter(RunStart {
                hook_id: hook.id.clone(),
                kind: hook.kind.as_str(),
                hook: hook.name.clone(),
                point: hook.trigger,
                route: Some(self.route.to_owned()),
                request_id: Some(self.request_id.to_owned()),
                event_id: None,
                attempt: None,
                client_id: client_id.filter(|c| !c.is_empty()).map(str::to_owned),
                generation: self.generation_number,
                at: SystemTime::now(),
                denies: denied_by_contract,
            })
        } else {
            None
        };
        let started = Instant::now();
        let result = self
            .engine
            .call_with_report(hook, args, self.request_id, self.wait(), report)
            .await;
        hook.stats.observe(
            Outcome::of(&result, |f| denied_by_contract(hook.trigger, f)),
            started.elapsed(),
        );
        result
    }

    /// [`settle`] for this request.
    pub fn settle(&self, hook: &Hook, e: &HookError, table: &ErrorTable) -> Result<(), Failure> {
        settle(self.request_id, hook, e, table)
    }
}

/// Where post-events go: the durable outbox. A point that emits one checks first that it can be
/// stored ([`Events::reserve`], before the upstream changes anything), then stores it after the
/// upstream's 2xx ([`Events::store`]), before the client is answered.
pub struct Events<'a> {
    pub outbox: &'a Arc<Outbox>,
    pub request_id: &'a str,
    pub route: &'a str,
}

/// The outbox can store an event now; kept until the event is stored.
pub struct Reserved(Arc<Outbox>);

impl Events<'_> {
    /// Can a post-event be stored now? Else the request is refused before the upstream changes
    /// anything: 503 (nothing happened, trying again later is safe). `what` names the request in
    /// the log ("signup", "password change").
    pub async fn reserve(&self, what: &str) -> Result<Reserved, Failure> {
        match self.outbox.preflight().await {
            Ok(()) => Ok(Reserved(self.outbox.clone())),
            Err(problem) => {
                tracing::error!(request_id = self.request_id, route = %self.route, problem = %problem, "the {what}'s post-event could not be stored; refused before the upstream was called (nothing was changed)");
                Err(Failure::Unavailable(format!(
                    "the {what} cannot be recorded right now; nothing was changed, try again later"
                )))
            }
        }
    }

    /// Store a post-event after the upstream's 2xx. If that fails, the change exists upstream
    /// but its hooks would never run: the request fails (500; the client must not take the
    /// change as recorded) and the whole event is logged at error level, so an operator can
    /// replay it. Events never hold a password.
    pub async fn store(
        &self,
        reserved: Reserved,
        event: Event,
        user_id: Option<&str>,
    ) -> Result<(), Failure> {
        let request_id = self.request_id;
        let (event_id, trigger) = (event.id.clone(), event.trigger);
        let replay = serde_json::to_string(&event).unwrap_or_default();
        match reserved.0.enqueue(event).await {
            Ok(seq) => {
                tracing::debug!(request_id, event_id, seq, "{trigger} queued");
                Ok(())
            }
            Err(e) => {
                tracing::error!(
                    request_id, route = %self.route, event_id, user_id, error = %format!("{e:#}"),
                    event = %replay,
                    "UNRECORDED {trigger} event: the upstream applied the request but its event could not be stored; the request was answered 500; replay the `event` once the outbox is writable"
                );
                Err(Failure::Internal(format!(
                    "the request reached the identity server but hookgate could not record it \
                     (request id {request_id}); it may have been applied: check before trying again"
                )))
            }
        }
    }
}

/// Set `key` to `value` when there is one; leave it out otherwise, so the hook sees `undefined`
/// (`'phoneNumber' in user === false`) for a field the request did not carry, as Auth0's hooks did.
pub(crate) fn put(user: &mut serde_json::Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        user.insert(key.into(), serde_json::json!(v));
    }
}

/// A hook with `on_error` for a point's error-table unit tests (no program: it is never run).
#[cfg(test)]
pub(crate) fn hook_for_tests(trigger: Trigger, on_error: OnError) -> Arc<Hook> {
    let program = crate::engine::program::Program {
        main: String::new(),
        modules: std::collections::HashMap::new(),
    };
    let mut h = Hook::standalone(
        format!("{}/h", trigger.id()),
        trigger,
        "h.js".into(),
        std::time::Duration::from_secs(1),
        Default::default(),
        program,
    );
    h.on_error = on_error;
    Arc::new(h)
}
