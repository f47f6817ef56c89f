//! Cluster mode's run records: every replica appends its records to one capped Redis stream
//! (`<name>:runs`, `XADD MAXLEN ~ [cluster] runs_max`), and the runs routes of any replica read
//! that stream, so the list and the live tail show every replica's runs, each naming its replica.
//!
//! A record's `id` there is its stream id `<ms>-<seq>` as one number, `ms * 1000 + seq`: the same
//! on every replica (so a `Last-Event-ID` or a `before` works whichever replica a load balancer
//! picks), increasing, and below 2^53 (exact in the dashboard's JavaScript). More than 1000
//! records in one millisecond would share numbers (hookgate does not come near); the tail and the
//! list's pages still move by the raw stream id, so such records are neither repeated nor skipped.
//!
//! Owns: publishing to and reading from that stream. Must not: block a hook call (records go
//! through a bounded queue to a publisher thread; a full queue or an unreachable Redis drops them,
//! counted in `hookgate_runs_shared_dropped_total`), or know HTTP.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use redis::Value;

use super::{Page, Query, RunRecord, Tail, DEFAULT_LIMIT, MAX_LIMIT};
use crate::config::ClusterConfig;

/// Records waiting for the publisher at most.
const QUEUE: usize = 4096;
const IO_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a tail's XREAD blocks before asking again.
const BLOCK: Duration = Duration::from_millis(1000);

pub(super) static SHARED_DROPPED: AtomicU64 = AtomicU64::new(0);

/// The shared stream of run records.
pub struct SharedRuns {
    client: redis::Client,
    key: String,
    replica: String,
    tx: Sender<Arc<RunRecord>>,
}

/// A stream id as a record id.
pub fn id_of(stream_id: &str) -> u64 {
    let (ms, seq) = stream_id.split_once('-').unwrap_or((stream_id, "0"));
    let ms: u64 = ms.parse().unwrap_or(0);
    let seq: u64 = seq.parse().unwrap_or(0);
    ms * 1000 + seq.min(999)
}

/// A record id as a stream id.
pub fn stream_id(id: u64) -> String {
    format!("{}-{}", id / 1000, id % 1000)
}

fn connect(client: &redis::Client, block: Duration) -> redis::RedisResult<redis::Connection> {
    let con = client.get_connection_with_timeout(IO_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT + block))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}

/// The records of an XRANGE / XREVRANGE / XREAD reply, with their stream ids as ids, each with
/// its raw stream id (the cursor: `id_of` is not exact past 1000 records in one millisecond).
fn records(v: &Value) -> Vec<(String, RunRecord)> {
    fn items(v: &Value) -> Vec<&Value> {
        match v {
            Value::Array(a) => a.iter().collect(),
            Value::Map(m) => m.iter().flat_map(|(k, v)| [k, v]).collect(),
            _ => Vec::new(),
        }
    }
    fn text(v: &Value) -> Option<String> {
        match v {
            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        }
    }
    let mut out = Vec::new();
    for entry in items(v) {
        let parts = items(entry);
        let (Some(id), Some(fields)) = (parts.first().and_then(|i| text(i)), parts.get(1)) else {
            continue;
        };
        let fields = items(fields);
        for pair in fields.chunks(2) {
            if pair.len() == 2 && text(pair[0]).as_deref() == Some("r") {
                if let Some(mut r) =
                    text(pair[1]).and_then(|json| serde_json::from_str::<RunRecord>(&json).ok())
                {
                    r.id = id_of(&id);
                    out.push((id.clone(), r));
                }
            }
        }
    }
    out
}

impl SharedRuns {
    /// Connect lazily and start the publisher thread.
    pub fn start(cfg: &ClusterConfig) -> anyhow::Result<Arc<SharedRuns>> {
        let client = redis::Client::open(cfg.redis_url.as_str())?;
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let key = format!("{}:runs", cfg.name);
        let publisher = (client.clone(), key.clone(), cfg.runs_max);
        std::thread::Builder::new()
            .name("hookgate-runs-pub".into())
            .spawn(move || publish(publisher.0, &publisher.1, publisher.2, rx))?;
        Ok(Arc::new(SharedRuns {
            client,
            key,
            replica: cfg.replica.clone(),
            tx,
        }))
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Queue a record for the shared stream; never blocks.
    pub(super) fn send(&self, record: Arc<RunRecord>) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(record)
        {
            SHARED_DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The records matching `query`, newest first, from every replica. Blocking.
    pub fn query(&self, query: &Query) -> anyhow::Result<Page> {
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let needle = query
            .q
            .as_deref()
            .filter(|q| !q.is_empty())
            .map(str::to_ascii_lowercase);
        let mut con = connect(&self.client, Duration::ZERO)?;
        let mut end = match query.before {
            Some(b) => format!("({}", stream_id(b)),
            None => "+".into(),
        };
        let mut out = Vec::new();
        let mut more = false;
        'pages: loop {
            let v: Value = redis::cmd("XREVRANGE")
                .arg(&self.key)
                .arg(&end)
                .arg("-")
                .arg("COUNT")
                .arg(500)
                .query(&mut con)?;
            let page = records(&v);
            let Some(oldest) = page.last().map(|(sid, _)| sid.clone()) else {
                break;
            };
            for (_, r) in page {
                if query.matches(&r, needle.as_deref()) {
                    if out.len() == limit {
                        more = true;
                        break 'pages;
                    }
                    out.push(Arc::new(r));
                }
            }
            end = format!("({oldest}");
        }
        let next_before = more.then(|| out.last().map(|r| r.id)).flatten();
        Ok(Page {
            records: out,
            next_before,
        })
    }

    /// One record by id. Blocking.
    pub fn get(&self, id: u64) -> anyhow::Result<Option<RunRecord>> {
        let mut con = connect(&self.client, Duration::ZERO)?;
        let sid = stream_id(id);
        let v: Value = redis::cmd("XRANGE")
            .arg(&self.key)
            .arg(&sid)
            .arg(&sid)
            .query(&mut con)?;
        Ok(records(&v).into_iter().next().map(|(_, r)| r))
    }

    /// A live tail from after `after` (a record id), or from now.
    pub fn tail(self: &Arc<Self>, after: Option<u64>) -> SharedTail {
        SharedTail {
            shared: self.clone(),
            after: after.map(stream_id),
            con: None,
            buffer: VecDeque::new(),
        }
    }
}

/// A live tail over the shared stream. Its [`SharedTail::poll`] blocks (up to a second): call it
/// off the async threads.
pub struct SharedTail {
    shared: Arc<SharedRuns>,
    /// The stream id of the last record yielded; `None` until the first read (from now).
    after: Option<String>,
    con: Option<redis::Connection>,
    buffer: VecDeque<Tail>,
}

impl SharedTail {
    /// The next record, or `None` when none came within a second (call again). Redis errors
    /// wait a little and reconnect.
    pub fn poll(&mut self) -> Option<Tail> {
        if let Some(t) = self.buffer.pop_front() {
            return Some(t);
        }
        match self.read() {
            Ok(()) => self.buffer.pop_front(),
            Err(e) => {
                tracing::debug!(error = %e, "run records tail: Redis read failed; retrying");
                self.con = None;
                std::thread::sleep(Duration::from_millis(500));
                None
            }
        }
    }

    fn read(&mut self) -> redis::RedisResult<()> {
        let con = match &mut self.con {
            Some(c) => c,
            None => self.con.insert(connect(&self.shared.client, BLOCK)?),
        };
        let after = match &self.after {
            Some(a) => a.clone(),
            None => {
                let v: Value = redis::cmd("XREVRANGE")
                    .arg(&self.shared.key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query(con)?;
                let newest = records(&v)
                    .first()
                    .map_or_else(|| "0-0".to_string(), |(sid, _)| sid.clone());
                self.after = Some(newest.clone());
                newest
            }
        };
        let v: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(100)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.shared.key)
            .arg(&after)
            .query(con)?;
        let streams = match &v {
            Value::Array(a) => a.clone(),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| Value::Array(vec![k.clone(), v.clone()]))
                .collect(),
            _ => Vec::new(),
        };
        for s in streams {
            if let Value::Array(parts) = s {
                if let Some(entries) = parts.get(1) {
                    for (sid, r) in records(entries) {
                        self.after = Some(sid);
                        self.buffer.push_back(Tail::Record(Arc::new(r)));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The publisher thread: batches of records, one pipeline each.
fn publish(client: redis::Client, key: &str, max: usize, rx: Receiver<Arc<RunRecord>>) {
    let mut con: Option<redis::Connection> = None;
    let logged = AtomicBool::new(false);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 100 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        for r in &batch {
            pipe.cmd("XADD")
                .arg(key)
                .arg("MAXLEN")
                .arg("~")
                .arg(max)
                .arg("*")
                .arg("r")
                .arg(serde_json::to_string(&**r).unwrap_or_default())
                .ignore();
        }
        let result = match &mut con {
            Some(c) => pipe.query::<()>(c),
            None => connect(&client, Duration::ZERO).and_then(|mut c| {
                let r = pipe.query::<()>(&mut c);
                con = Some(c);
                r
            }),
        };
        match result {
            Ok(()) => logged.store(false, Ordering::Relaxed),
            Err(e) => {
                con = None;
                SHARED_DROPPED.fetch_add(batch.len() as u64, Ordering::Relaxed);
                if !logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "run records: cannot append to the shared stream; records stay on this replica only until Redis is back (counted in hookgate_runs_shared_dropped_total)");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_and_stream_ids_map_both_ways_and_stay_exact_in_javascript() {
        let id = id_of("1764632400123-7");
        assert_eq!(id, 1_764_632_400_123_007);
        assert_eq!(stream_id(id), "1764632400123-7");
        assert!(id < (1u64 << 53));
        assert!(id_of("1764632400123-8") > id);
        assert!(id_of("1764632400124-0") > id_of("1764632400123-999"));
    }
}
