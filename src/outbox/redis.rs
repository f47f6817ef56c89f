//! The Redis Streams backend of the outbox (`[outbox] backend = "redis"`): one stream and one
//! consumer group shared by every replica, so an event accepted by any replica is delivered by
//! whichever replica is alive, and every replica's management API sees the same events.
//!
//! # Durable before the answer: XADD acknowledged by Redis (not a local WAL)
//! An event is accepted when Redis has acknowledged its `XADD` (and, with `wait_replicas > 0`,
//! when `WAIT` says that many Redis replicas have it). How durable that is, is Redis'
//! configuration: `appendonly yes` with `appendfsync always` fsyncs every write before it is
//! acknowledged (nothing acknowledged is lost to a Redis crash); `appendfsync everysec` may lose
//! the last second on a power loss of the Redis host; `WAIT` makes a replica of Redis hold it too.
//! The alternative, a local redb file as write-ahead log relayed to the stream, was rejected:
//! an event would then wait on the disk of the replica that accepted it until that replica came
//! back, which is the very failure this backend exists for (a dead replica's events are delivered
//! by the others). BENCHMARKS.md has the measured costs of both: on the 2-core test machine a
//! signup's added p50 was +0.2–0.3 ms with `everysec`, +0.4–0.6 ms with redb's fsync'd commit (what
//! a WAL would cost), and +1–4 ms with `always` on a busy disk (0.25 ms per XADD on an idle one).
//!
//! # Keys (`stream` = `[outbox] stream`, default `hookgate:outbox`)
//! * `<stream>`: events due now; fields `seq` (the number `hookgate outbox` names an event by)
//!   and `event` (its JSON, as the redb backend stores it). Read through the consumer group.
//! * `<stream>:seq`: the counter `seq` comes from (`INCR`, never reused).
//! * `<stream>:delayed` (sorted set `seq` → due time) and `<stream>:held` (hash `seq` → event):
//!   retries waiting for their backoff. Every dispatcher moves the due ones back to the stream
//!   (one Lua script, so exactly one replica moves each).
//! * `dead_stream` (default `<stream>:dead`): dead letters, fields `seq` and `event`.
//!
//! All scripts touch these keys together: on Redis Cluster give them one hash slot with a hash
//! tag (`stream = "{hookgate}:outbox"`; the derived names keep the tag).
//!
//! # Delivery
//! Each replica's dispatcher reads new entries (`XREADGROUP >`), runs the hooks, then settles
//! each entry with one script: `XACK` and `XDEL`, plus, for a failure, a retry in `delayed`
//! (the existing backoff) or a dead letter after `max_attempts`. An entry whose `XACK` finds it
//! already acknowledged (another replica claimed and settled it) is left alone. Entries another
//! consumer read and left unacknowledged longer than `claim_idle_ms` (its replica died) are taken
//! over with `XAUTOCLAIM` and delivered again: at least once; `context.event_id` is in the event,
//! so it is the same on every replica and attempt.
//!
//! # Redis unavailable
//! Any failed command marks the outbox unwritable: pre-flights refuse (503) until a probe write
//! works again (tried at most every 500 ms, by the dispatcher and by requests), `/readyz` says
//! `redis unreachable: …`. The connection manager reconnects by itself.
//!
//! Owns: the keys above and every command on them, and this backend's health and counters. Must
//! not: know hooks (the dispatcher's [`PostEventRunner`] runs them) or a point's arguments.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use pingora::server::ShutdownWatch;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamRangeReply, StreamReadReply};
use redis::Script;
use serde_json::json;

use super::dispatch::{deliver, PostEventRunner};
use super::{now_ms, Event, Next, Outcome, State, Stored, Unwritable};
use crate::config::OutboxConfig;
use crate::metrics::metric_line;

/// How often a failed Redis is probed, at most.
const PROBE_INTERVAL_MS: u64 = 500;
/// Longest `XREADGROUP` block: the dispatcher looks at retries and claims at least this often.
const BLOCK_MS: u64 = 1000;
/// Bound on any one command (beyond a configured `WAIT`).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

// Every script starts with `#!lua` (Redis 7 script flags, none given): Redis then refuses a
// script that may write *before* it runs when memory is full (OOM), instead of at its first
// denied write after earlier deletes took effect — a settle or retry must never delete an entry
// it then cannot add back.

/// Store an event: next `seq`, then `XADD`. KEYS: stream, seq. ARGV: event JSON.
const ADD: &str = r"#!lua
local s = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], '*', 'seq', s, 'event', ARGV[1])
return s";

/// Settle a delivered entry. KEYS: stream, delayed, held, dead. ARGV: group, entry id, mode
/// (`done`, `retry`, `dead`), seq, due ms, event JSON. Returns 0 when the entry was already
/// acknowledged (another replica claimed and settled it).
const SETTLE: &str = r"#!lua
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[3] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[6])
elseif ARGV[3] == 'dead' then
  redis.call('XADD', KEYS[4], '*', 'seq', ARGV[4], 'event', ARGV[6])
end
return 1";

/// Move due retries back to the stream. KEYS: stream, delayed, held. ARGV: now ms, limit.
/// Returns the earliest due time still waiting, or -1.
const PROMOTE: &str = r"#!lua
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, s in ipairs(due) do
  local j = redis.call('HGET', KEYS[3], s)
  redis.call('ZREM', KEYS[2], s)
  redis.call('HDEL', KEYS[3], s)
  if j then redis.call('XADD', KEYS[1], '*', 'seq', s, 'event', j) end
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if nxt[2] then return tonumber(nxt[2]) end
return -1";

/// Make one event due now (an operator's retry). KEYS: stream, delayed, held, dead. ARGV: seq,
/// dead entry id or '', event JSON (attempts reset). Returns 1 when it was moved.
const RETRY: &str = r"#!lua
local moved = 0
if ARGV[2] ~= '' then
  moved = redis.call('XDEL', KEYS[4], ARGV[2])
elseif redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[3], ARGV[1])
  moved = 1
end
if moved == 1 then redis.call('XADD', KEYS[1], '*', 'seq', ARGV[1], 'event', ARGV[3]) end
return moved";

/// Delete one event. KEYS: stream, delayed, held, dead. ARGV: group, seq, where (`stream`,
/// `delayed`, `dead`), entry id. Returns 1 when it was deleted.
const DROP: &str = r"#!lua
if ARGV[3] == 'dead' then return redis.call('XDEL', KEYS[4], ARGV[4]) end
if ARGV[3] == 'delayed' then
  redis.call('HDEL', KEYS[3], ARGV[2])
  return redis.call('ZREM', KEYS[2], ARGV[2])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[4])
return redis.call('XDEL', KEYS[1], ARGV[4])";

struct Scripts {
    add: Script,
    settle: Script,
    promote: Script,
    retry: Script,
    drop: Script,
}

/// The two connections: `conn` for everything but the dispatcher's blocking read, which has
/// `reader` (a blocked `XREADGROUP` would hold every command queued behind it).
struct Conns {
    conn: ConnectionManager,
    reader: ConnectionManager,
}

/// The Redis backend of one hookgate process. Cheap to clone.
#[derive(Clone)]
pub struct RedisOutbox(Arc<Inner>);

struct Inner {
    config: OutboxConfig,
    stream: String,
    seq_key: String,
    delayed: String,
    held: String,
    dead: String,
    consumer: String,
    scripts: Scripts,
    /// The runtime every command runs on: the connections' tasks live there, whichever runtime
    /// (pingora's services, the API's blocking pool, the CLI) asks.
    rt: tokio::runtime::Handle,
    conns: OnceLock<Conns>,
    writable: AtomicBool,
    last_error: Mutex<Option<(SystemTime, String)>>,
    last_probe_ms: AtomicU64,
    /// Pending (stream + delayed) and dead, as last counted by the dispatcher (-1: never).
    pending: AtomicI64,
    dead_count: AtomicI64,
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    dead_letters: AtomicU64,
    reclaimed: AtomicU64,
    redis_errors: AtomicU64,
    refused: AtomicU64,
    unrecorded: AtomicU64,
}

/// A Redis URL's host part, for logs (never its password).
fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{host}")
        }
        None => "(redis)".into(),
    }
}

impl RedisOutbox {
    /// Not connected yet: [`RedisOutbox::connect`] does (lazily; a down Redis does not stop it).
    pub fn new(config: &OutboxConfig) -> RedisOutbox {
        static RUNTIME: OnceLock<tokio::runtime::Handle> = OnceLock::new();
        let rt = RUNTIME
            .get_or_init(|| {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("hookgate-redis")
                    .enable_all()
                    .build()
                    .expect("a one-thread tokio runtime");
                let handle = rt.handle().clone();
                // Lives as long as the process (dropping a runtime inside another panics).
                std::mem::forget(rt);
                handle
            })
            .clone();
        let stream = config.stream.clone();
        RedisOutbox(Arc::new(Inner {
            seq_key: format!("{stream}:seq"),
            delayed: format!("{stream}:delayed"),
            held: format!("{stream}:held"),
            dead: config.dead_stream(),
            consumer: config.consumer(),
            stream,
            config: config.clone(),
            scripts: Scripts {
                add: Script::new(ADD),
                settle: Script::new(SETTLE),
                promote: Script::new(PROMOTE),
                retry: Script::new(RETRY),
                drop: Script::new(DROP),
            },
            rt,
            conns: OnceLock::new(),
            writable: AtomicBool::new(false),
            last_error: Mutex::new(None),
            last_probe_ms: AtomicU64::new(0),
            pending: AtomicI64::new(-1),
            dead_count: AtomicI64::new(-1),
            delivered: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            reclaimed: AtomicU64::new(0),
            redis_errors: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            unrecorded: AtomicU64::new(0),
        }))
    }

    pub fn stream(&self) -> &str {
        &self.0.stream
    }

    /// Create the connections (they connect on first use and reconnect by themselves) and
    /// probe Redis once: a Redis that is down is reported (not ready, pre-flights refuse) but
    /// does not stop hookgate. Fails only on a URL that cannot be used. Blocking.
    pub fn connect(&self) -> anyhow::Result<()> {
        let i = &self.0;
        if i.conns.get().is_none() {
            let url = i
                .config
                .redis_url_value
                .as_ref()
                .context("outbox.redis_url is not set")?;
            let client = redis::Client::open(url.0.as_str())
                .with_context(|| format!("outbox.redis_url {}", redacted(&url.0)))?;
            let base = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_number_of_retries(2)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(500));
            let wait = Duration::from_millis(i.config.wait_timeout_ms);
            let _in_rt = i.rt.enter();
            let conn = ConnectionManager::new_lazy_with_config(
                client.clone(),
                base.clone()
                    .set_response_timeout(Some(COMMAND_TIMEOUT + wait)),
            )?;
            let reader = ConnectionManager::new_lazy_with_config(
                client,
                base.set_response_timeout(Some(COMMAND_TIMEOUT + Duration::from_millis(BLOCK_MS))),
            )?;
            let _ = i.conns.set(Conns { conn, reader });
            tracing::info!(redis = %redacted(&url.0), stream = %i.stream, group = %i.config.group, consumer = %i.consumer, "outbox on Redis");
        }
        match self.block_on(self.clone().probe()) {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, "Redis is not reachable: requests with post hooks are refused (503) until it is")
            }
        }
        Ok(())
    }

    fn conn(&self) -> anyhow::Result<ConnectionManager> {
        Ok(self
            .0
            .conns
            .get()
            .context("the Redis outbox is not connected")?
            .conn
            .clone())
    }

    /// Run `fut` on the backend's runtime and wait for it from an async caller.
    async fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> anyhow::Result<T> {
        self.0
            .rt
            .spawn(fut)
            .await
            .map_err(|e| anyhow::anyhow!("the Redis outbox task failed: {e}"))?
    }

    /// Run `fut` on the backend's runtime and wait for it from a thread that may block (the
    /// API's blocking pool, the CLI).
    fn block_on<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.0.rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| anyhow::anyhow!("the Redis outbox task failed"))?
    }

    /// Record a command's result in the health: a failure makes the outbox unwritable until a
    /// command or a probe works.
    fn observe<T>(&self, r: anyhow::Result<T>) -> anyhow::Result<T> {
        match &r {
            Ok(_) => self.succeeded(),
            Err(e) => self.failed(format!("{e:#}")),
        }
        r
    }

    fn succeeded(&self) {
        if !self.0.writable.swap(true, Ordering::AcqRel) {
            tracing::info!("Redis is reachable: the outbox accepts events");
        }
    }

    fn failed(&self, error: String) {
        self.0.redis_errors.fetch_add(1, Ordering::Relaxed);
        if self.0.writable.swap(false, Ordering::AcqRel) {
            tracing::error!(error, "Redis unreachable: requests with post hooks are refused (503) until it answers again (probed about twice a second)");
        }
        *self.0.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((SystemTime::now(), error));
    }

    /// A small write (`SET <stream>:probe`, expiring), bounded; its result is the health. Not
    /// `PING`: a Redis out of memory or refusing writes (`MISCONF`) still answers that, and an
    /// outbox that cannot store an event is not writable.
    async fn probe(self) -> anyhow::Result<()> {
        self.0.last_probe_ms.store(now_ms(), Ordering::Release);
        let mut c = self.conn()?;
        let key = format!("{}:probe", self.0.stream);
        let r = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("SET")
                .arg(&key)
                .arg(now_ms())
                .arg("PX")
                .arg(60_000)
                .query_async::<String>(&mut c),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the probe write timed out"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .map(drop);
        self.observe(r)
    }

    fn probe_due(&self) -> bool {
        !self.0.writable.load(Ordering::Acquire)
            && now_ms().saturating_sub(self.0.last_probe_ms.load(Ordering::Acquire))
                >= PROBE_INTERVAL_MS
    }

    /// Can an event be stored now, as far as is known without storing one?
    pub fn writable(&self) -> Result<(), Unwritable> {
        if self.0.writable.load(Ordering::Acquire) {
            return Ok(());
        }
        let why = self
            .last_error()
            .unwrap_or_else(|| "not connected yet".into());
        Err(Unwritable(format!("redis unreachable: {why}")))
    }

    fn last_error(&self) -> Option<String> {
        self.0
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(_, e)| e.clone())
    }

    pub fn write_failures(&self) -> u64 {
        self.0.redis_errors.load(Ordering::Relaxed)
    }

    /// A pre-flight: a failed Redis is probed first (at most every 500 ms).
    pub async fn preflight(&self) -> Result<(), Unwritable> {
        if self.probe_due() {
            let _ = self.run(self.clone().probe()).await;
        }
        self.writable()
            .inspect_err(|_| _ = self.0.refused.fetch_add(1, Ordering::Relaxed))
    }

    /// Store an event: acknowledged by Redis (and `WAIT`ed for, when configured) when this
    /// returns. Returns its sequence number.
    pub async fn enqueue(&self, event: Event) -> anyhow::Result<u64> {
        let me = self.clone();
        let r = self
            .run(async move {
                let json = serde_json::to_string(&event)?;
                let mut c = me.conn()?;
                let i = &me.0;
                let add = async {
                    let seq: u64 = i
                        .scripts
                        .add
                        .key(&i.stream)
                        .key(&i.seq_key)
                        .arg(&json)
                        .invoke_async(&mut c)
                        .await
                        .context("XADD to the outbox stream")?;
                    if i.config.wait_replicas > 0 {
                        let acked: u32 = redis::cmd("WAIT")
                            .arg(i.config.wait_replicas)
                            .arg(i.config.wait_timeout_ms)
                            .query_async(&mut c)
                            .await
                            .context("WAIT")?;
                        if acked < i.config.wait_replicas {
                            anyhow::bail!(
                                "only {acked} of outbox.wait_replicas = {} Redis replicas had the event after {} ms (it is on the primary and may still be delivered)",
                                i.config.wait_replicas,
                                i.config.wait_timeout_ms
                            );
                        }
                    }
                    Ok(seq)
                };
                let limit = COMMAND_TIMEOUT + Duration::from_millis(i.config.wait_timeout_ms);
                let r = tokio::time::timeout(limit, add)
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("Redis did not answer within {limit:?}")));
                me.observe(r)
            })
            .await;
        if r.is_err() {
            self.0.unrecorded.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// `/readyz`'s `outbox` object, and whether an event can be stored.
    pub fn readiness(&self) -> (bool, serde_json::Value) {
        let check = self.writable();
        let last = self
            .0
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(at, e)| {
                json!({ "at_unix": at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()), "error": e })
            });
        let body = json!({
            "backend": "redis",
            "stream": self.0.stream,
            "group": self.0.config.group,
            "consumer": self.0.consumer,
            "writable": check.is_ok(),
            "problem": check.as_ref().err().map(|e| e.0.clone()),
            "redis_errors": self.0.redis_errors.load(Ordering::Relaxed),
            "refused": self.0.refused.load(Ordering::Relaxed),
            "unrecorded": self.0.unrecorded.load(Ordering::Relaxed),
            "last_error": last,
        });
        (check.is_ok(), body)
    }

    /// `/metrics` lines. The gauges count the shared stream (every replica reports the same
    /// numbers, as last counted by its dispatcher); the counters are this replica's.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let i = &self.0;
        for (name, help, v) in [
            (
                "hookgate_outbox_pending",
                "Post-events waiting for delivery in the shared stream, retries included.",
                &i.pending,
            ),
            (
                "hookgate_outbox_dead",
                "Dead letters in the shared dead-letter stream.",
                &i.dead_count,
            ),
        ] {
            let v = v.load(Ordering::Relaxed);
            if v >= 0 {
                metric_line(&mut out, name, "gauge", help, v as u64);
            }
        }
        metric_line(
            &mut out,
            "hookgate_outbox_writable",
            "gauge",
            "1 while an event can be stored (Redis answered the last command).",
            self.writable().is_ok() as u64,
        );
        for (name, help, counter) in [
            ("hookgate_outbox_delivered_total", "Post-events whose hooks all succeeded (this replica).", &i.delivered),
            ("hookgate_outbox_failed_attempts_total", "Delivery attempts in which a hook failed (this replica).", &i.failed_attempts),
            ("hookgate_outbox_dead_letters_total", "Post-events that became dead letters (this replica).", &i.dead_letters),
            ("hookgate_outbox_reclaimed_total", "Entries another consumer left unacknowledged longer than claim_idle_ms, claimed by this replica.", &i.reclaimed),
            ("hookgate_outbox_redis_errors_total", "Redis commands of the outbox that failed.", &i.redis_errors),
            ("hookgate_outbox_refused_total", "Requests refused (503) before the upstream was called: their event could not be stored.", &i.refused),
            ("hookgate_outbox_unrecorded_total", "Requests the upstream accepted whose event could not be stored (answered 500, logged for replay).", &i.unrecorded),
        ] {
            metric_line(&mut out, name, "counter", help, counter.load(Ordering::Relaxed));
        }
        out
    }

    // ---- the operator's calls (list, retry, drop): blocking, from any replica ----

    /// Every event: due now (the stream), waiting for a retry, then the dead letters. Blocking.
    pub fn list(&self) -> anyhow::Result<Vec<Stored>> {
        let me = self.clone();
        let r = self.block_on(async move { me.list_located().await });
        self.observe(r)
            .map(|all| all.into_iter().map(|(s, _)| s).collect())
    }

    /// Every event with where it is (`stream`, `delayed`, `dead`) and its entry id there.
    async fn list_located(&self) -> anyhow::Result<Vec<(Stored, (&'static str, String))>> {
        let i = &self.0;
        let mut c = self.conn()?;
        let fut = async {
            let mut out = Vec::new();
            let live: StreamRangeReply = redis::cmd("XRANGE")
                .arg(&i.stream)
                .arg("-")
                .arg("+")
                .query_async(&mut c)
                .await?;
            for e in live.ids {
                if let Some((seq, event)) = parse_entry(&e) {
                    let due = e.id.split('-').next().and_then(|ms| ms.parse().ok());
                    out.push((
                        Stored {
                            seq,
                            state: State::Pending,
                            due_ms: due,
                            event,
                        },
                        ("stream", e.id.clone()),
                    ));
                }
            }
            let delayed: Vec<(String, f64)> = redis::cmd("ZRANGE")
                .arg(&i.delayed)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut c)
                .await?;
            for (seq, due) in delayed {
                let json: Option<String> = redis::cmd("HGET")
                    .arg(&i.held)
                    .arg(&seq)
                    .query_async(&mut c)
                    .await?;
                if let (Ok(n), Some(Ok(event))) = (
                    seq.parse::<u64>(),
                    json.map(|j| serde_json::from_str::<Event>(&j)),
                ) {
                    out.push((
                        Stored {
                            seq: n,
                            state: State::Pending,
                            due_ms: Some(due as u64),
                            event,
                        },
                        ("delayed", String::new()),
                    ));
                }
            }
            let dead: StreamRangeReply = redis::cmd("XRANGE")
                .arg(&i.dead)
                .arg("-")
                .arg("+")
                .query_async(&mut c)
                .await?;
            for e in dead.ids {
                if let Some((seq, event)) = parse_entry(&e) {
                    out.push((
                        Stored {
                            seq,
                            state: State::Dead,
                            due_ms: None,
                            event,
                        },
                        ("dead", e.id.clone()),
                    ));
                }
            }
            anyhow::Ok(out)
        };
        tokio::time::timeout(COMMAND_TIMEOUT * 3, fut)
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("Redis did not answer in time")))
    }

    /// The events a command names: these sequence numbers, or (`None`) every dead letter.
    async fn named(
        &self,
        seqs: Option<Vec<u64>>,
    ) -> anyhow::Result<Vec<(Stored, (&'static str, String))>> {
        Ok(self
            .list_located()
            .await?
            .into_iter()
            .filter(|(s, _)| match &seqs {
                None => s.state == State::Dead,
                Some(list) => list.contains(&s.seq),
            })
            .collect())
    }

    /// Make events due now with fresh attempts (dead letters back to the stream). Blocking.
    pub fn retry(&self, seqs: Option<&[u64]>) -> anyhow::Result<usize> {
        let me = self.clone();
        let seqs = seqs.map(<[u64]>::to_vec);
        let r = self.block_on(async move {
            let i = &me.0;
            let mut c = me.conn()?;
            let mut moved = 0;
            for (s, (place, id)) in me.named(seqs).await? {
                if place == "stream" {
                    // Already due (or being delivered): nothing to move.
                    moved += 1;
                    continue;
                }
                let mut e = s.event;
                e.attempts = 0;
                let n: u32 = i
                    .scripts
                    .retry
                    .key(&i.stream)
                    .key(&i.delayed)
                    .key(&i.held)
                    .key(&i.dead)
                    .arg(s.seq)
                    .arg(if place == "dead" { id } else { String::new() })
                    .arg(serde_json::to_string(&e)?)
                    .invoke_async(&mut c)
                    .await?;
                moved += n as usize;
            }
            anyhow::Ok(moved)
        });
        self.observe(r)
    }

    /// Delete events for good. Blocking.
    pub fn drop_events(&self, seqs: Option<&[u64]>) -> anyhow::Result<usize> {
        let me = self.clone();
        let seqs = seqs.map(<[u64]>::to_vec);
        let r = self.block_on(async move {
            let i = &me.0;
            let mut c = me.conn()?;
            let mut dropped = 0;
            for (s, (place, id)) in me.named(seqs).await? {
                let n: u32 = i
                    .scripts
                    .drop
                    .key(&i.stream)
                    .key(&i.delayed)
                    .key(&i.held)
                    .key(&i.dead)
                    .arg(&i.config.group)
                    .arg(s.seq)
                    .arg(place)
                    .arg(id)
                    .invoke_async(&mut c)
                    .await?;
                dropped += n as usize;
            }
            anyhow::Ok(dropped)
        });
        self.observe(r)
    }

    // ---- the dispatcher ----

    /// The consumer group, created with the stream if missing (from the stream's start, so
    /// events added before any dispatcher ran are read too).
    async fn ensure_group(&self) -> anyhow::Result<()> {
        let mut c = self.conn()?;
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.0.stream)
            .arg(&self.0.config.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut c)
            .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e).context("XGROUP CREATE"),
        }
    }

    /// Move due retries to the stream; returns when the next one is due.
    async fn promote(&self) -> anyhow::Result<Option<u64>> {
        let i = &self.0;
        let mut c = self.conn()?;
        let next: i64 = i
            .scripts
            .promote
            .key(&i.stream)
            .key(&i.delayed)
            .key(&i.held)
            .arg(now_ms())
            .arg(i.config.batch.max(1))
            .invoke_async(&mut c)
            .await
            .context("moving due retries to the stream")?;
        Ok((next >= 0).then_some(next as u64))
    }

    /// New entries for this consumer, waiting up to `block_ms` for some.
    async fn read(&self, block_ms: u64) -> anyhow::Result<Vec<StreamId>> {
        let i = &self.0;
        let mut c = i
            .conns
            .get()
            .context("the Redis outbox is not connected")?
            .reader
            .clone();
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&i.config.group)
            .arg(&i.consumer)
            .arg("COUNT")
            .arg(i.config.batch.max(1))
            .arg("BLOCK")
            .arg(block_ms.max(1))
            .arg("STREAMS")
            .arg(&i.stream)
            .arg(">")
            .query_async(&mut c)
            .await
            .context("XREADGROUP")?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    /// Entries other consumers left unacknowledged longer than `claim_idle_ms`, now this one's.
    async fn claim(&self, cursor: &mut String) -> anyhow::Result<Vec<StreamId>> {
        let i = &self.0;
        let mut c = self.conn()?;
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&i.stream)
            .arg(&i.config.group)
            .arg(&i.consumer)
            .arg(i.config.claim_idle().as_millis() as u64)
            .arg(cursor.as_str())
            .arg("COUNT")
            .arg(i.config.batch.max(1))
            .query_async(&mut c)
            .await
            .context("XAUTOCLAIM")?;
        *cursor = reply.next_stream_id;
        if !reply.claimed.is_empty() {
            tracing::warn!(
                entries = reply.claimed.len(),
                "claimed outbox entries another replica left unacknowledged (it died or stalled); delivering them again"
            );
            i.reclaimed
                .fetch_add(reply.claimed.len() as u64, Ordering::Relaxed);
        }
        Ok(reply.claimed)
    }

    /// Count what waits, for `/metrics`.
    async fn count(&self) -> anyhow::Result<()> {
        let i = &self.0;
        let mut c = self.conn()?;
        let (live, delayed, dead): (i64, i64, i64) = redis::pipe()
            .cmd("XLEN")
            .arg(&i.stream)
            .cmd("ZCARD")
            .arg(&i.delayed)
            .cmd("XLEN")
            .arg(&i.dead)
            .query_async(&mut c)
            .await?;
        i.pending.store(live + delayed, Ordering::Relaxed);
        i.dead_count.store(dead, Ordering::Relaxed);
        Ok(())
    }

    /// Run the hooks of `entries` (concurrently) and settle each.
    async fn deliver_all(
        &self,
        entries: Vec<StreamId>,
        hooks: &Arc<dyn PostEventRunner>,
    ) -> anyhow::Result<usize> {
        let i = &self.0;
        let mut tasks = tokio::task::JoinSet::new();
        let mut c = self.conn()?;
        for e in entries {
            let Some((seq, event)) = parse_entry(&e) else {
                // Not an event (written by something else?): acknowledged and removed, so it
                // does not come back forever.
                tracing::error!(entry = %e.id, stream = %i.stream, "outbox stream entry without a valid `seq` and `event`; dropped");
                let _: redis::RedisResult<()> = redis::pipe()
                    .cmd("XACK")
                    .arg(&i.stream)
                    .arg(&i.config.group)
                    .arg(&e.id)
                    .cmd("XDEL")
                    .arg(&i.stream)
                    .arg(&e.id)
                    .query_async(&mut c)
                    .await;
                continue;
            };
            let (hooks, me, id) = (hooks.clone(), self.clone(), e.id.clone());
            // Each entry is settled as soon as its hooks are done; the settles of a batch share
            // the multiplexed connection (pipelined), instead of one round trip after another.
            tasks.spawn(async move {
                let stored = Stored {
                    seq,
                    state: State::Pending,
                    due_ms: None,
                    event,
                };
                let outcome = deliver(&*hooks, &me.0.config, stored).await;
                let mut c = me.conn()?;
                me.settle(&mut c, &id, outcome).await
            });
        }
        let mut n = 0;
        let mut first_error = None;
        while let Some(done) = tasks.join_next().await {
            match done.map_err(anyhow::Error::from).and_then(|r| r) {
                Ok(()) => n += 1,
                // Unsettled entries stay pending in the group: claimed again after claim_idle_ms.
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    async fn settle(&self, c: &mut ConnectionManager, id: &str, o: Outcome) -> anyhow::Result<()> {
        let i = &self.0;
        let (mode, due, json, counter) = match &o.next {
            Next::Delivered => ("done", 0, String::new(), &i.delivered),
            Next::Retry { due_ms, event } => (
                "retry",
                *due_ms,
                serde_json::to_string(event)?,
                &i.failed_attempts,
            ),
            Next::Dead(event) => ("dead", 0, serde_json::to_string(event)?, &i.dead_letters),
        };
        let settled: u32 = i
            .scripts
            .settle
            .key(&i.stream)
            .key(&i.delayed)
            .key(&i.held)
            .key(&i.dead)
            .arg(&i.config.group)
            .arg(id)
            .arg(mode)
            .arg(o.seq)
            .arg(due)
            .arg(json)
            .invoke_async(c)
            .await
            .context("settling an outbox entry")?;
        if settled == 0 {
            tracing::debug!(
                entry = id,
                seq = o.seq,
                "outbox entry was settled by another replica"
            );
            return Ok(());
        }
        if matches!(o.next, Next::Dead(_)) {
            i.failed_attempts.fetch_add(1, Ordering::Relaxed);
        }
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The dispatch loop of this replica: until shutdown. A failing Redis is probed about every
    /// 500 ms (nothing is delivered meanwhile; entries read and not yet acknowledged stay in the
    /// group and are read again or claimed).
    pub async fn dispatch(
        &self,
        outbox: &super::Outbox,
        hooks: Arc<dyn PostEventRunner>,
        mut shutdown: ShutdownWatch,
    ) {
        tracing::info!(stream = %self.0.stream, consumer = %self.0.consumer, "outbox dispatcher started (Redis)");
        let mut group_ready = false;
        let mut cursor = "0-0".to_string();
        let mut last_claim = 0u64;
        // First claim soon after start: a replica restarted after a crash takes its own
        // previous incarnation's entries once they are idle long enough.
        let claim_every = (self.0.config.claim_idle().as_millis() as u64 / 2).clamp(200, 10_000);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let me = self.clone();
            let hooks2 = hooks.clone();
            let claim_now = now_ms().saturating_sub(last_claim) >= claim_every;
            if claim_now {
                last_claim = now_ms();
            }
            let mut cur = std::mem::take(&mut cursor);
            let ready = group_ready;
            let busy = outbox.busy();
            let step = self
                .run(async move {
                    if !ready {
                        me.ensure_group().await?;
                    }
                    let next_due = me.promote().await?;
                    let mut worked = 0;
                    if claim_now {
                        let claimed = me.claim(&mut cur).await?;
                        worked += me.deliver_all(claimed, &hooks2).await?;
                    }
                    let block = next_due
                        .map_or(BLOCK_MS, |d| d.saturating_sub(now_ms()).clamp(1, BLOCK_MS));
                    let block = if worked > 0 { 1 } else { block };
                    let fresh = me.read(block).await?;
                    worked += me.deliver_all(fresh, &hooks2).await?;
                    me.count().await?;
                    anyhow::Ok((worked, cur))
                })
                .await;
            drop(busy);
            match step {
                Ok((_, cur)) => {
                    cursor = cur;
                    group_ready = true;
                    self.succeeded();
                }
                Err(e) => {
                    let text = format!("{e:#}");
                    // The group disappears with the stream (a Redis restarted without
                    // persistence, or the key deleted): create it again.
                    if text.contains("NOGROUP") {
                        group_ready = false;
                    }
                    cursor = "0-0".into();
                    self.failed(text.clone());
                    tracing::warn!(error = %text, "outbox dispatch on Redis failed; retrying");
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tokio::time::sleep(Duration::from_millis(PROBE_INTERVAL_MS)) => {},
                    }
                    let _ = self.run(self.clone().probe()).await;
                }
            }
        }
    }
}

/// An entry's `seq` and event, if it is one of ours.
fn parse_entry(e: &StreamId) -> Option<(u64, Event)> {
    let seq: String = e.get("seq")?;
    let json: String = e.get("event")?;
    Some((seq.parse().ok()?, serde_json::from_str(&json).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Trigger;
    use std::path::Path;
    use std::sync::atomic::AtomicU32;

    /// A redis-server of the test's own on a free port (None, said, where none is installed),
    /// and its data folder, kept while it runs.
    struct Server(
        std::process::Child,
        u16,
        #[allow(dead_code)] tempfile::TempDir,
    );

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn server() -> Option<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let Ok(s) = spawn_on(port) else {
            eprintln!("skipped: no redis-server (scripts/setup installs it)");
            return None;
        };
        for _ in 0..400 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not listen");
    }

    /// Start a redis-server on `port`, its data in a temp folder, without waiting for it.
    fn spawn_on(port: u16) -> std::io::Result<Server> {
        let dir = tempfile::tempdir()?;
        let child = std::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()?;
        Ok(Server(child, port, dir))
    }

    fn outbox(port: u16) -> RedisOutbox {
        outbox_with(port, 0)
    }

    fn outbox_with(port: u16, wait_replicas: u32) -> RedisOutbox {
        let config = OutboxConfig {
            wait_replicas,
            wait_timeout_ms: 50,
            backend: crate::config::outbox::Backend::Redis,
            redis_url_value: Some(crate::config::Secret(format!("redis://127.0.0.1:{port}"))),
            max_attempts: 3,
            retry_base_ms: 100,
            retry_max_ms: 400,
            claim_idle_ms: Some(200),
            ..OutboxConfig::default()
        };
        let o = RedisOutbox::new(&config);
        o.connect().unwrap();
        o
    }

    /// Fails every attempt and counts them.
    struct Failing(AtomicU32);

    #[async_trait::async_trait]
    impl PostEventRunner for Failing {
        async fn run(&self, _: &mut Event) -> Vec<String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            vec!["notify: down".into()]
        }
    }

    fn event() -> Event {
        Event::new(
            Trigger::PostUserRegistration,
            "signup",
            None,
            vec![json!({ "id": "u1" }), json!({})],
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_event_waits_its_backoff_between_attempts_then_is_a_dead_letter_that_can_be_retried_and_dropped(
    ) {
        let Some(s) = server() else { return };
        let o = outbox(s.1);
        assert!(o.preflight().await.is_ok());
        let e = event();
        assert_eq!(o.enqueue(e.clone()).await.unwrap(), 1);
        assert_eq!(
            o.enqueue(event()).await.unwrap(),
            2,
            "sequence numbers count up"
        );
        let runner = Arc::new(Failing(AtomicU32::new(0)));
        let hooks: Arc<dyn PostEventRunner> = runner.clone();
        // One pass: both are read, fail, and wait in the delayed set with a due time ahead.
        let fresh = o.run({
            let o = o.clone();
            async move {
                o.ensure_group().await?;
                o.read(10).await
            }
        });
        let fresh = fresh.await.unwrap();
        assert_eq!(fresh.len(), 2);
        let oo = o.clone();
        o.run(async move { oo.deliver_all(fresh, &hooks).await })
            .await
            .unwrap();
        let now = now_ms();
        let listed = tokio::task::spawn_blocking({
            let o = o.clone();
            move || o.list()
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(listed.len(), 2);
        for s in &listed {
            assert_eq!(s.state, State::Pending);
            assert_eq!(s.event.attempts, 1);
            assert!(s.due_ms.unwrap() > now - 5, "a retry is due later, not now");
        }
        assert!(
            listed.iter().any(|s| s.event.id == e.id),
            "the event id is kept across attempts"
        );
        // The dispatcher loop: the retries are made, each after its backoff, then dead letters.
        let (tx, rx) = tokio::sync::watch::channel(false);
        let holder = Arc::new(crate::outbox::Outbox::with_opener(
            Path::new("unused"),
            0,
            Box::new(|p| redb::Database::create(p)),
        ));
        let d = {
            let (o, h) = (o.clone(), runner.clone() as Arc<dyn PostEventRunner>);
            tokio::spawn(async move { o.dispatch(&holder, h, rx).await })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while o.0.dead_letters.load(Ordering::SeqCst) < 2 {
            assert!(std::time::Instant::now() < deadline, "never dead");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            runner.0.load(Ordering::SeqCst),
            6,
            "max_attempts = 3 attempts each, no more"
        );
        let oo = o.clone();
        let dead = tokio::task::spawn_blocking(move || oo.list())
            .await
            .unwrap()
            .unwrap();
        assert!(dead
            .iter()
            .all(|s| s.state == State::Dead && s.event.attempts == 3));
        let oo = o.clone();
        assert_eq!(
            tokio::task::spawn_blocking(move || oo.retry(Some(&[1])))
                .await
                .unwrap()
                .unwrap(),
            1
        );
        let oo = o.clone();
        assert_eq!(
            tokio::task::spawn_blocking(move || oo.drop_events(None))
                .await
                .unwrap()
                .unwrap(),
            1,
            "the other dead letter is dropped"
        );
        while o.0.dead_letters.load(Ordering::SeqCst) < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "the retried one never ran"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            runner.0.load(Ordering::SeqCst),
            9,
            "retried with fresh attempts"
        );
        tx.send(true).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(5), d).await;
        assert!(o.metrics().contains("hookgate_outbox_dead_letters_total 3"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_redis_down_preflight_refuses_and_readiness_says_why_then_it_recovers() {
        let Some(s) = server() else { return };
        let port = s.1;
        let o = outbox(port);
        assert!(o.preflight().await.is_ok());
        drop(s);
        let e = o.enqueue(event()).await;
        assert!(e.is_err(), "no event is stored without Redis");
        let refused = o.preflight().await.unwrap_err();
        assert!(refused.0.starts_with("redis unreachable: "), "{refused}");
        let (ready, detail) = o.readiness();
        assert!(!ready);
        assert!(detail["problem"]
            .as_str()
            .unwrap()
            .contains("redis unreachable"));
        assert!(o.metrics().contains("hookgate_outbox_unrecorded_total 1"));
        // Redis back on the same port: the next pre-flight after the probe interval works.
        let _back = spawn_on(port).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while o.preflight().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "never recovered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(o.enqueue(event()).await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_event_without_the_configured_redis_replicas_is_not_accepted() {
        let Some(s) = server() else { return };
        let o = outbox_with(s.1, 1);
        let err = o.enqueue(event()).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("only 0 of outbox.wait_replicas = 1"),
            "{err:#}"
        );
        assert!(o.metrics().contains("hookgate_outbox_unrecorded_total 1"));
    }
}
