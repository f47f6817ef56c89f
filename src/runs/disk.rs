//! Run records on disk: one redb file (`<[runs] dir>/hookgate-runs.redb`, table `runs`: record
//! id -> the record's JSON), pruned to the same bounds as memory, read back at start.
//!
//! Owns: the file and its one writer thread. Records reach it through a bounded queue (a full
//! queue drops the record from disk only, counted); each batch is committed without fsync and
//! the file is synced at most every [`SYNC_EVERY`] (and on [`Disk::flush`]), so recording costs
//! the request path a queue push, never an fsync. A failed write is counted and logged once
//! (`super::disk_failed`); the records stay in memory. Must not: be read or written by anything
//! but this module while hookgate runs (redb lets one process open the file).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use redb::{Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{disk_failed, RunRecord, DISK_DROPPED, DISK_WRITTEN};

/// The file's name inside `[runs] dir`.
pub(super) const FILE: &str = "hookgate-runs.redb";
const RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("runs");
/// Records waiting for the writer at most; beyond, they are kept in memory only (counted). Large
/// enough for a burst while a commit or an fsync runs; records queued are mostly the ones the
/// store holds anyway (shared), so a stalled disk keeps at most this many more alive.
const QUEUE: usize = 1024;
/// Records per transaction at most.
const BATCH: usize = 256;
/// The longest a committed record waits for an fsync.
const SYNC_EVERY: Duration = Duration::from_millis(100);

enum Msg {
    Record(Arc<RunRecord>),
    Flush(Sender<()>),
}

pub(super) struct Disk {
    tx: Sender<Msg>,
}

impl Disk {
    /// Open (or create) the file, drop what is past the bounds, start the writer; returns the
    /// records kept, oldest first.
    pub fn open(
        path: &Path,
        max_records: usize,
        max_bytes: usize,
    ) -> anyhow::Result<(Disk, Vec<RunRecord>)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the folder {}", dir.display()))?;
        }
        let db = open_db(path)?;
        let tx = db.begin_write()?;
        tx.open_table(RUNS)?;
        tx.commit()?;
        let all = read(&db)?;
        // The newest within the bounds (the newest always).
        let mut kept = Vec::new();
        let mut bytes = 0;
        for r in all.iter().rev() {
            let size = r.approx_bytes();
            if !kept.is_empty() && (kept.len() >= max_records || bytes + size > max_bytes) {
                break;
            }
            bytes += size;
            kept.push(r.clone());
        }
        kept.reverse();
        let oldest_kept = kept.first().map_or(u64::MAX, |r| r.id);
        let stale: Vec<u64> = all
            .iter()
            .map(|r| r.id)
            .filter(|id| *id < oldest_kept)
            .collect();
        if !stale.is_empty() {
            let tx = db.begin_write()?;
            {
                let mut table = tx.open_table(RUNS)?;
                for id in stale {
                    table.remove(id)?;
                }
            }
            tx.commit()?;
        }
        let index = kept.iter().map(|r| (r.id, r.approx_bytes())).collect();
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let mut writer = Writer {
            db,
            index,
            bytes,
            max_records: max_records.max(1),
            max_bytes: max_bytes.max(1),
            unsynced: 0,
        };
        std::thread::Builder::new()
            .name("hookgate-runs".into())
            .spawn(move || writer.run(rx))
            .context("cannot start the run records writer")?;
        Ok((Disk { tx }, kept))
    }

    /// Queue a record for the file; never blocks.
    pub fn write(&self, record: Arc<RunRecord>) {
        if self.tx.try_send(Msg::Record(record)).is_err() {
            DISK_DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Wait until what was queued before is on disk durably (at most `timeout`).
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = crossbeam_channel::bounded(1);
        self.tx.send_timeout(Msg::Flush(ack), timeout).is_ok() && done.recv_timeout(timeout).is_ok()
    }
}

fn open_db(path: &Path) -> anyhow::Result<Database> {
    match Database::create(path) {
        Ok(db) => {
            // Console lines often carry personal data: the owner's alone, whatever the umask.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if let Err(e) =
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                {
                    tracing::warn!(file = %path.display(), error = %e, "cannot make the run records file private (0600)");
                }
            }
            Ok(db)
        }
        Err(DatabaseError::DatabaseAlreadyOpen) => anyhow::bail!(
            "the run records file {} is open in another process (a running hookgate?)",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot open {}", path.display())),
    }
}

/// Every record in the file, oldest first (a record that does not parse is skipped).
fn read(db: &Database) -> anyhow::Result<Vec<RunRecord>> {
    let tx = db.begin_read()?;
    let table = tx.open_table(RUNS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (_, value) = entry?;
        if let Ok(r) = serde_json::from_slice::<RunRecord>(value.value()) {
            out.push(r);
        }
    }
    Ok(out)
}

/// The records in a file no process holds open, oldest first.
pub(super) fn read_all(path: &Path) -> anyhow::Result<Vec<RunRecord>> {
    let db = open_db(path)?;
    let tx = db.begin_write()?;
    tx.open_table(RUNS)?;
    tx.commit()?;
    read(&db)
}

struct Writer {
    db: Database,
    /// What the file holds: (id, size), oldest first.
    index: VecDeque<(u64, usize)>,
    bytes: usize,
    max_records: usize,
    max_bytes: usize,
    /// Records committed since the last fsync.
    unsynced: u64,
}

impl Writer {
    fn run(&mut self, rx: Receiver<Msg>) {
        let mut last_sync = Instant::now();
        loop {
            let first = if self.unsynced > 0 {
                match rx.recv_timeout(SYNC_EVERY.saturating_sub(last_sync.elapsed())) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        self.sync();
                        return;
                    }
                }
            } else {
                match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => return,
                }
            };
            let mut batch = Vec::new();
            let mut acks = Vec::new();
            let mut next = first;
            while let Some(m) = next {
                match m {
                    Msg::Record(r) => batch.push(r),
                    Msg::Flush(ack) => acks.push(ack),
                }
                next = if batch.len() < BATCH {
                    rx.try_recv().ok()
                } else {
                    None
                };
            }
            if !batch.is_empty() {
                if let Err(e) = self.append(&batch) {
                    disk_failed("cannot write run records", &format!("{e:#}"));
                }
            }
            if self.unsynced > 0 && (!acks.is_empty() || last_sync.elapsed() >= SYNC_EVERY) {
                self.sync();
                last_sync = Instant::now();
            }
            for ack in acks {
                let _ = ack.send(());
            }
        }
    }

    /// One transaction, not fsync'd: the records, and the oldest ones past the bounds removed.
    fn append(&mut self, batch: &[Arc<RunRecord>]) -> anyhow::Result<()> {
        let added: Vec<(u64, usize)> = batch.iter().map(|r| (r.id, r.approx_bytes())).collect();
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::None)?;
        let mut len = self.index.len() + added.len();
        let mut total = self.bytes + added.iter().map(|a| a.1).sum::<usize>();
        let mut removed = 0;
        {
            let mut table = tx.open_table(RUNS)?;
            for r in batch {
                table.insert(r.id, serde_json::to_vec(&**r)?.as_slice())?;
            }
            while len > 1 && (len > self.max_records || total > self.max_bytes) {
                let (id, size) = match self.index.get(removed) {
                    Some(x) => *x,
                    None => added[removed - self.index.len()],
                };
                table.remove(id)?;
                total -= size;
                len -= 1;
                removed += 1;
            }
        }
        tx.commit()?;
        self.index.extend(added);
        self.index.drain(..removed);
        self.bytes = total;
        self.unsynced += batch.len() as u64;
        Ok(())
    }

    /// Make every commit so far durable: one empty fsync'd transaction.
    fn sync(&mut self) {
        let synced = (|| -> anyhow::Result<()> {
            self.db.begin_write()?.commit()?;
            Ok(())
        })();
        match synced {
            Ok(()) => {
                DISK_WRITTEN.fetch_add(self.unsynced, Ordering::Relaxed);
                self.unsynced = 0;
            }
            Err(e) => disk_failed("cannot sync the run records file", &format!("{e:#}")),
        }
    }
}
