//! Cluster mode: several replicas serving one set of hooks, kept in Redis.
//!
//! With `[cluster] redis_url`, the hooks, their `[[hooks.hook]]` entries and the secrets the
//! management API stores live in Redis; each replica's files are a copy of one revision.
//!
//! ```text
//! API write on any replica ─▶ Redis lock <name>:lock ─▶ catch up to the latest revision
//!        ─▶ the store writes the files as on one replica ─▶ diff of the managed files
//!        ─▶ one Lua script: <name>:rev == ours? then HSET/HDEL <name>:files, XADD <name>:changes,
//!           <name>:rev + 1 (atomic)           no: the local files are put back, 503
//!        ─▶ reload: generation number = revision ─▶ the API answers (read-after-write holds)
//! every replica: XREAD BLOCK <name>:changes ─▶ apply each entry in order (rev = ours + 1;
//!        a gap, another <name>:epoch, or Redis going back: read the snapshot again) ─▶ reload at that number
//! ```
//!
//! Every entry and the snapshot carry the store's **epoch** (`<name>:epoch`, a random id set when
//! the store is seeded): after Redis is flushed and seeded again, or fails over to a copy that
//! missed writes, the same revision numbers may name other content, and a replica seeing another
//! epoch reads the snapshot rather than trusting its number.
//!
//! A replica starts on its own files (generation 0: not yet synced), reads the snapshot (or, when
//! Redis holds none, seeds it with its files: the ConfigMap a deployment ships), then follows the
//! stream. Redis unreachable: the replica keeps serving its last generation, API writes answer
//! 503, `/readyz` is not ready; the follower reconnects by itself (100 ms doubling to 2 s) and
//! catches up. Local edits of managed files are not watched in cluster mode and are overwritten by
//! the next revision (see `files.rs` for what is managed).
//!
//! Where it sits: its own top-level module, a layer between `admin`/`server` (which use it) and
//! `reload`/`config` (which it uses). It must not import `admin`: the admin store's lock is
//! handed in by `server`, and the store's operation is a closure the API passes to
//! [`Cluster::write`].
//!
//! Owns: the Redis keys of the hook store, publishing a change and applying the stream. Must
//! not: validate or write hooks itself (the admin store does, then this publishes what it
//! wrote), build generations (the reload thread does, at the number sent here), or hold a lock
//! while blocked on Redis for longer than one exchange.

pub mod files;
pub mod redis_io;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use redis::Value;

use crate::config::ClusterConfig;
use crate::reload::cluster::ClusterHealth;
use files::{Change, Files, Paths};
use redis_io::{connect, Entry};

/// Redis cannot be reached, or the change lost a race it could not win: the caller answers 503.
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

/// A change Redis delivered that this replica's files could not take (not a Redis failure).
#[derive(Debug)]
struct ApplyFailed(String);

impl std::fmt::Display for ApplyFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ApplyFailed {}

/// How long a change waits for another replica's change to finish: longer than a lock lives, so
/// that a lock left by a replica that died mid-change expires while the next change waits.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// A lock left by a replica that died mid-change expires after this. A change that outlives its
/// lock is still safe: its publish checks the revision it started from.
const LOCK_TTL_MS: u64 = 8_000;
/// How long the follower's XREAD blocks before asking again.
const BLOCK: Duration = Duration::from_millis(1000);
/// `<name>:changes` keeps about this many entries; a replica further behind reads the snapshot.
const CHANGES_KEPT: usize = 1000;

/// Check the revision (and the epoch), write the snapshot and append the entry, as one step.
/// KEYS: rev, last, files, changes, epoch. ARGV: expected revision, origin, kept, epoch, then
/// (op, key, value)... Publishing revision 1 (the seed) starts the epoch it is given.
const PUBLISH: &str = r#"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur ~= tonumber(ARGV[1]) then return {0, cur, ''} end
if cur == 0 then
  redis.call('SET', KEYS[5], ARGV[4])
elseif (redis.call('GET', KEYS[5]) or '') ~= ARGV[4] then
  return {0, cur, ''}
end
local rev = cur + 1
local fields = {'rev', tostring(rev), 'origin', ARGV[2], 'epoch', ARGV[4]}
local i = 5
while i <= #ARGV do
  local op, key, val = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'put' then redis.call('HSET', KEYS[3], key, val) else redis.call('HDEL', KEYS[3], key) end
  fields[#fields + 1] = op .. ':' .. key
  fields[#fields + 1] = val
  i = i + 3
end
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
redis.call('SET', KEYS[1], rev)
redis.call('SET', KEYS[2], id)
return {1, rev, id}
"#;

const UNLOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// What the snapshot read gives: `<name>:rev`, `<name>:last`, `<name>:epoch`, `<name>:files`.
type Snapshot = (
    Option<u64>,
    Option<String>,
    Option<String>,
    Vec<(String, Vec<u8>)>,
);

/// This replica's side of the cluster.
pub struct Cluster {
    cfg: ClusterConfig,
    client: redis::Client,
    paths: Paths,
    /// The admin store's process lock: applying a revision takes it, so a store read never sees
    /// half of one.
    store_lock: Arc<Mutex<()>>,
    /// What this replica's files hold; held for a whole write or apply.
    inner: Mutex<Inner>,
    health: Arc<ClusterHealth>,
    /// To the reload thread: build the files as this revision.
    revisions: Sender<u64>,
}

struct Inner {
    /// The revision the files hold (0: not synced yet).
    rev: u64,
    /// The `<name>:changes` id of that revision ("0" before any).
    last: String,
    /// The epoch of that revision: a random id set when the store is seeded, in every entry and
    /// the snapshot. A revision number alone does not say which content it is (Redis flushed
    /// and seeded again, or failed over to a replica that missed writes, counts from 1 again).
    /// "" for a store seeded before epochs.
    epoch: String,
    con: Option<redis::Connection>,
}

impl Cluster {
    /// Set up the cluster side and start following Redis (a thread). Fails only on a URL the
    /// client cannot use; an unreachable Redis is retried in the background.
    pub fn start(
        cfg: &ClusterConfig,
        paths: Paths,
        store_lock: Arc<Mutex<()>>,
        health: Arc<ClusterHealth>,
        revisions: Sender<u64>,
    ) -> anyhow::Result<Arc<Cluster>> {
        let client = redis::Client::open(cfg.redis_url.as_str()).map_err(|e| {
            anyhow::anyhow!(
                "[cluster] redis_url {}: {e}",
                crate::config::cluster::redacted(&cfg.redis_url)
            )
        })?;
        let cluster = Arc::new(Cluster {
            cfg: cfg.clone(),
            client,
            paths,
            store_lock,
            inner: Mutex::new(Inner {
                rev: 0,
                last: "0".into(),
                epoch: String::new(),
                con: None,
            }),
            health,
            revisions,
        });
        let follower = cluster.clone();
        std::thread::Builder::new()
            .name("hookgate-cluster".into())
            .spawn(move || follower.follow())?;
        tracing::info!(
            redis = %crate::config::cluster::redacted(&cfg.redis_url),
            name = %cfg.name,
            replica = %cfg.replica,
            "cluster mode: hooks are kept in Redis and followed from its stream"
        );
        Ok(cluster)
    }

    /// The revision this replica's files hold.
    pub fn revision(&self) -> u64 {
        self.health.applied()
    }

    pub fn replica(&self) -> &str {
        &self.cfg.replica
    }

    fn key(&self, what: &str) -> String {
        format!("{}:{what}", self.cfg.name)
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run a store operation as a cluster change: under the cluster-wide lock, on files caught
    /// up with the latest revision; what it wrote is published as the next revision (and this
    /// replica's reload to it requested). `Ok(Err(_))`: the operation's own error (nothing is
    /// published); `Ok(Ok((_, None)))`: it changed nothing.
    pub fn write<T, E>(
        &self,
        op: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<(T, Option<u64>), E>, Unavailable> {
        let mut inner = self.inner();
        let mut con = match inner.con.take() {
            Some(c) => c,
            None => connect(&self.client, Duration::ZERO).map_err(|e| self.unreachable(e))?,
        };
        let token = uuid::Uuid::new_v4().to_string();
        let lock = self.key("lock");
        let started = Instant::now();
        loop {
            let got: Option<String> = redis::cmd("SET")
                .arg(&lock)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(LOCK_TTL_MS)
                .query(&mut con)
                .map_err(|e| self.unreachable(e))?;
            if got.is_some() {
                break;
            }
            if started.elapsed() > LOCK_WAIT {
                return Err(Unavailable(
                    "another replica's hook change is taking too long; try again".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let result = self.write_locked(&mut inner, &mut con, op);
        let _ = redis::Script::new(UNLOCK)
            .key(&lock)
            .arg(&token)
            .invoke::<i64>(&mut con);
        if result.is_ok() {
            inner.con = Some(con);
        }
        result
    }

    fn write_locked<T, E>(
        &self,
        inner: &mut Inner,
        con: &mut redis::Connection,
        op: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<(T, Option<u64>), E>, Unavailable> {
        self.catch_up(inner, con)
            .map_err(|e| Unavailable(format!("cannot catch up with the cluster: {e:#}")))?;
        let read = |what| {
            self.paths.read().map_err(|e| {
                Unavailable(format!(
                    "cannot read the hook files {what} the change: {e:#}"
                ))
            })
        };
        let before = read("before")?;
        let out = op();
        let after = read("after")?;
        let change = files::diff(&before, &after);
        let value = match out {
            Err(e) => {
                // Whatever a failed operation left is put back: only published changes stay.
                self.put_back(&before, &after);
                return Ok(Err(e));
            }
            Ok(v) => v,
        };
        if change.is_empty() {
            return Ok(Ok((value, None)));
        }
        // What every other replica would refuse is never published (it would stop them all).
        let problems = self.paths.problems(&change);
        if !problems.is_empty() {
            self.put_back(&before, &after);
            return Err(Unavailable(format!(
                "the change cannot be shared with the other replicas: {}",
                problems.join("; ")
            )));
        }
        match self.publish(con, inner.rev, &inner.epoch, &change) {
            Ok(Some((rev, id))) => {
                inner.rev = rev;
                inner.last = id;
                self.health.set_applied(rev);
                let _ = self.revisions.send(rev);
                tracing::info!(
                    revision = rev,
                    files = change.len(),
                    "hook change published to the cluster"
                );
                Ok(Ok((value, Some(rev))))
            }
            Ok(None) => {
                self.put_back(&before, &after);
                Err(Unavailable(
                    "another replica changed the hooks at the same time; try again".into(),
                ))
            }
            Err(e) => {
                self.put_back(&before, &after);
                Err(self.unreachable(e))
            }
        }
    }

    fn put_back(&self, before: &Files, after: &Files) {
        let undo = files::diff(after, before);
        if undo.is_empty() {
            return;
        }
        let _g = self.store_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = self.paths.apply(&undo) {
            tracing::error!(error = %format!("{e:#}"), "cannot put the hook files back after a change that was not published; the next revision overwrites them");
        }
    }

    fn unreachable(&self, e: redis::RedisError) -> Unavailable {
        self.health.failed(e.to_string());
        Unavailable(format!(
            "the cluster's store (Redis) is unreachable, so hooks cannot be changed now: {e}"
        ))
    }

    /// The change as the next revision after `expected`; `None` if Redis is past it.
    fn publish(
        &self,
        con: &mut redis::Connection,
        expected: u64,
        epoch: &str,
        change: &Change,
    ) -> redis::RedisResult<Option<(u64, String)>> {
        let script = redis::Script::new(PUBLISH);
        let mut call = script.prepare_invoke();
        call.key(self.key("rev"))
            .key(self.key("last"))
            .key(self.key("files"))
            .key(self.key("changes"))
            .key(self.key("epoch"))
            .arg(expected)
            .arg(&self.cfg.replica)
            .arg(CHANGES_KEPT)
            .arg(epoch);
        for (key, content) in change {
            match content {
                Some(bytes) => call.arg("put").arg(key).arg(bytes.as_slice()),
                None => call.arg("del").arg(key).arg(""),
            };
        }
        let (ok, rev, id): (i64, u64, String) = call.invoke(con)?;
        Ok((ok == 1).then_some((rev, id)))
    }

    /// Bring the files up to Redis's latest revision: the stream's entries after ours, or the
    /// snapshot when they do not follow on (trimmed, Redis emptied or gone back).
    fn catch_up(&self, inner: &mut Inner, con: &mut redis::Connection) -> anyhow::Result<()> {
        let (latest, epoch): (Option<u64>, Option<String>) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(self.key("rev"))
            .cmd("GET")
            .arg(self.key("epoch"))
            .query(con)?;
        if latest.is_some() && epoch.unwrap_or_default() != inner.epoch {
            // Same numbers may hold other content: only the snapshot says what this epoch holds.
            return self.sync_all(inner, con);
        }
        match latest {
            Some(r) if r == inner.rev => return Ok(()),
            Some(r) if r > inner.rev && inner.rev > 0 => {
                let v: Value = redis::cmd("XRANGE")
                    .arg(self.key("changes"))
                    .arg(format!("({}", inner.last))
                    .arg("+")
                    .query(con)?;
                for e in redis_io::entries(&v) {
                    if !self.apply_entry(inner, &e)? {
                        break;
                    }
                }
                if inner.rev == r {
                    return Ok(());
                }
            }
            _ => {}
        }
        self.sync_all(inner, con)
    }

    /// Apply one stream entry if it is the next revision; false on a gap, or on an entry this
    /// replica refuses (the caller reads the snapshot instead, which skips what is refused).
    fn apply_entry(&self, inner: &mut Inner, (id, fields): &Entry) -> anyhow::Result<bool> {
        let mut rev = None;
        let mut epoch = String::new();
        let mut origin = String::new();
        let mut change = Change::new();
        let mut unknown = Vec::new();
        for (name, value) in fields {
            match name.as_str() {
                "rev" => rev = String::from_utf8_lossy(value).parse::<u64>().ok(),
                "origin" => origin = String::from_utf8_lossy(value).into_owned(),
                "epoch" => epoch = String::from_utf8_lossy(value).into_owned(),
                other => {
                    if let Some(key) = other.strip_prefix("put:") {
                        change.push((key.to_string(), Some(value.clone())));
                    } else if let Some(key) = other.strip_prefix("del:") {
                        change.push((key.to_string(), None));
                    } else {
                        unknown.push(other.to_string());
                    }
                }
            }
        }
        let Some(rev) = rev else {
            self.refused(id, &[format!("entry has no revision (fields {unknown:?})")]);
            return Ok(false);
        };
        if epoch != inner.epoch {
            tracing::warn!(
                entry = %id,
                "cluster: the shared store was seeded again (a new epoch): reading its snapshot"
            );
            return Ok(false);
        }
        if rev <= inner.rev {
            return Ok(true);
        }
        if rev != inner.rev + 1 {
            return Ok(false);
        }
        let problems = self.paths.problems(&change);
        if !problems.is_empty() {
            self.refused(id, &problems);
            return Ok(false);
        }
        {
            let _g = self.store_lock.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = self.paths.apply(&change) {
                return Err(self.apply_failed(format!("revision {rev}: {e:#}")));
            }
        }
        inner.rev = rev;
        inner.last = id.clone();
        self.health.set_applied(rev);
        let _ = self.revisions.send(rev);
        tracing::info!(revision = rev, origin = %origin, files = change.len(), "applied a hook change from the cluster");
        Ok(true)
    }

    /// A stream entry this replica will not apply: said loudly and counted; the caller then
    /// takes the snapshot (without what is refused) rather than retrying the entry.
    fn refused(&self, id: &str, problems: &[String]) {
        let message = format!(
            "{} entry {id} refused: {}",
            self.key("changes"),
            problems.join("; ")
        );
        tracing::error!(error = %message, "cluster: a shared hook change cannot be applied on this replica; reading the snapshot without it");
        self.health.apply_failed(message);
    }

    /// The files could not be written (disk): said, counted, and the error the follower retries
    /// (with its backoff) without blaming Redis.
    fn apply_failed(&self, message: String) -> anyhow::Error {
        tracing::error!(error = %message, "cluster: cannot write a shared hook change to this replica's files");
        self.health.apply_failed(message.clone());
        anyhow::Error::new(ApplyFailed(message))
    }

    /// Make the files what the snapshot holds; seed it with this replica's files when Redis has
    /// none.
    fn sync_all(&self, inner: &mut Inner, con: &mut redis::Connection) -> anyhow::Result<()> {
        for _ in 0..5 {
            let (rev, last, epoch, snapshot): Snapshot = redis::pipe()
                .atomic()
                .cmd("GET")
                .arg(self.key("rev"))
                .cmd("GET")
                .arg(self.key("last"))
                .cmd("GET")
                .arg(self.key("epoch"))
                .cmd("HGETALL")
                .arg(self.key("files"))
                .query(con)?;
            let local = self.paths.read()?;
            let Some(rev) = rev else {
                let seed: Change = local
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect();
                let problems = self.paths.problems(&seed);
                if !problems.is_empty() {
                    return Err(self.apply_failed(format!(
                        "the cluster's store is empty, and this replica's hooks cannot seed it: {}",
                        problems.join("; ")
                    )));
                }
                let epoch = uuid::Uuid::new_v4().simple().to_string();
                if let Some((rev, id)) = self.publish(con, 0, &epoch, &seed)? {
                    tracing::info!(
                        revision = rev,
                        files = seed.len(),
                        "the cluster's store was empty: seeded it with this replica's hooks"
                    );
                    self.synced(inner, rev, id, epoch);
                    return Ok(());
                }
                continue;
            };
            let snapshot: Files = snapshot.into_iter().collect();
            // What this replica refuses (a forged or broken key or entry) is left out; the rest
            // is applied, so one bad entry does not stop the replica following the stream.
            let (change, problems) = self.paths.sanitized(&files::diff(&local, &snapshot));
            {
                let _g = self.store_lock.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = self.paths.apply(&change) {
                    return Err(self.apply_failed(format!("snapshot of revision {rev}: {e:#}")));
                }
            }
            if problems.is_empty() {
                self.health.apply_ok();
            } else {
                let message = format!(
                    "snapshot of revision {rev}: refused: {}",
                    problems.join("; ")
                );
                tracing::error!(error = %message, "cluster: parts of the shared hooks cannot be applied on this replica; applied the rest");
                self.health.apply_failed(message);
            }
            if rev < inner.rev {
                tracing::warn!(
                    redis = rev,
                    ours = inner.rev,
                    "Redis holds an older revision than this replica applied (restored without its appendonly file?): its snapshot is taken as it is"
                );
            }
            tracing::info!(
                revision = rev,
                changed = change.len(),
                "synced with the cluster's snapshot"
            );
            self.synced(
                inner,
                rev,
                last.unwrap_or_else(|| "0".into()),
                epoch.unwrap_or_default(),
            );
            return Ok(());
        }
        anyhow::bail!("the cluster's snapshot kept changing while it was read")
    }

    fn synced(&self, inner: &mut Inner, rev: u64, last: String, epoch: String) {
        inner.rev = rev;
        inner.last = last;
        inner.epoch = epoch;
        self.health.set_applied(rev);
        self.health.synced();
        let _ = self.revisions.send(rev);
    }

    /// The follower thread: sync, then apply the stream as it grows; reconnect on any error.
    fn follow(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if let Err(e) = self.follow_once(&mut backoff) {
                if e.downcast_ref::<ApplyFailed>().is_some() {
                    self.health.connected();
                    // Redis answered; this replica's files could not take the change (logged and
                    // counted where it happened). Try again after the backoff.
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
                let message = format!("{e:#}");
                if self.health.is_connected() {
                    tracing::error!(error = %message, "cluster: lost Redis; serving the last generation, hook changes refused until it is back");
                }
                self.health.failed(message);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }

    fn follow_once(&self, backoff: &mut Duration) -> anyhow::Result<()> {
        let mut con = connect(&self.client, BLOCK)?;
        {
            let mut inner = self.inner();
            self.catch_up(&mut inner, &mut con)?;
        }
        if !self.health.is_connected() {
            tracing::info!(
                revision = self.revision(),
                "cluster: connected to Redis and caught up"
            );
        }
        self.health.connected();
        *backoff = Duration::from_millis(100);
        loop {
            let last = self.inner().last.clone();
            let v: Value = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(100)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(self.key("changes"))
                .arg(&last)
                .query(&mut con)?;
            self.health.connected();
            let entries = redis_io::read_entries(&v);
            if entries.is_empty() {
                continue;
            }
            let mut inner = self.inner();
            for e in &entries {
                if !self.apply_entry(&mut inner, e)? {
                    self.sync_all(&mut inner, &mut con)?;
                    break;
                }
            }
        }
    }
}
