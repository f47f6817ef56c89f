//! The reload thread: notify events, debounced, and a periodic rescan, each ending in
//! [`Reloader::check`]. Compiling runs here, never on a request's thread.
//!
//! What is watched, and why:
//! * the hooks folder, recursively (with symlinks followed): editors save by writing a temporary
//!   file and renaming it over the old one, which ends a watch on that file; a folder watch sees
//!   the rename. A ConfigMap's `..data` swap happens inside the folder too.
//! * the folder of the configuration file and the parent of the hooks folder, not recursively:
//!   the configuration file is replaced by renames too, and when the hooks folder itself is a
//!   symlink that gets swapped, only its parent sees it (the recursive watch is then re-armed).
//!   Other files there (logs, say) are ignored.
//!
//! In cluster mode ([`spawn_revisions`]) nothing is watched: the cluster layer writes the files
//! of each revision and sends its number, and only then is a generation built (numbered by the
//! revision). A local edit of a hook file is not picked up; the next revision overwrites it.
//!
//! Secret and key files outside these folders are not watched: the periodic rescan reads them.
//! A watcher that cannot start (inotify limits) is logged and leaves the rescan to do the work.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use notify::event::{AccessKind, AccessMode, EventKind, MetadataKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::Reloader;

/// A burst of events longer than this is read anyway: a rebuild must not wait forever behind a
/// process that keeps writing.
const MAX_DEBOUNCE: Duration = Duration::from_millis(250);
/// Rescan interval used when neither watching nor a rescan interval is configured: something
/// must notice changes.
const FALLBACK_RESCAN: Duration = Duration::from_secs(10);

enum Wake {
    /// Something changed; `rewatch` when the hooks folder itself may have been replaced.
    Changed { rewatch: bool },
    /// notify lost events (queue overflow): everything must be looked at again.
    Rescan,
}

/// The paths the watcher cares about, absolute.
struct Paths {
    config_file: PathBuf,
    config_dir: PathBuf,
    hooks_dir: PathBuf,
    hooks_parent: PathBuf,
}

impl Paths {
    /// Is an event on `p` one hookgate must look at? `Some(rewatch)` if so.
    fn classify(&self, p: &Path) -> Option<bool> {
        if p == self.hooks_dir {
            return Some(true);
        }
        if p.starts_with(&self.hooks_dir) {
            return Some(false);
        }
        if p == self.config_file {
            return Some(false);
        }
        // A ConfigMap's `..data`, `..data_tmp`, `..2026_...` next to the file or the folder.
        let parent = p.parent()?;
        let dotdot = p
            .file_name()
            .is_some_and(|n| n.as_encoded_bytes().starts_with(b".."));
        (dotdot && (parent == self.config_dir || parent == self.hooks_parent))
            .then_some(parent == self.hooks_parent)
    }
}

/// Start the reload thread. It runs for the life of the process.
pub fn spawn(reloader: Reloader) -> std::io::Result<()> {
    let boot = reloader.boot();
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let config_file = abs(&boot.path);
    let hooks_dir = abs(&boot.base_dir().join(&boot.hooks.dir));
    let paths = Paths {
        config_dir: config_file.parent().unwrap_or(Path::new("/")).to_path_buf(),
        hooks_parent: hooks_dir.parent().unwrap_or(Path::new("/")).to_path_buf(),
        config_file,
        hooks_dir,
    };
    let quiet = Duration::from_millis(boot.hooks.debounce_ms);
    let mut rescan =
        (boot.hooks.rescan_secs > 0).then(|| Duration::from_secs(boot.hooks.rescan_secs));
    let (tx, rx) = crossbeam_channel::unbounded();
    let watcher = if boot.hooks.watch {
        match start_watcher(&paths, tx) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch for changes; relying on the periodic rescan");
                None
            }
        }
    } else {
        None
    };
    if watcher.is_none() && rescan.is_none() {
        rescan = Some(FALLBACK_RESCAN);
    }
    tracing::info!(
        watching = watcher.is_some(),
        hooks = %paths.hooks_dir.display(),
        config = %paths.config_file.display(),
        rescan_secs = rescan.map(|d| d.as_secs()),
        "hot reload on"
    );
    std::thread::Builder::new()
        .name("hookgate-reload".into())
        .spawn(move || run(reloader, watcher, &paths, rx, quiet, rescan))?;
    Ok(())
}

/// Cluster mode: build a generation for each revision received (the last, when several are
/// waiting), numbered by it. With `[hooks] rescan_secs`, also look at the files that often:
/// what the cluster does not manage (signing keys, TLS files, `file =` secrets outside the
/// managed ones, the rest of hookgate.toml) is picked up as with one replica, rebuilt under the
/// same revision number (nothing is built before the first revision). Runs for the life of the
/// process.
pub fn spawn_revisions(mut reloader: Reloader, revisions: Receiver<u64>) -> std::io::Result<()> {
    let boot = reloader.boot();
    let rescan = (boot.hooks.rescan_secs > 0).then(|| Duration::from_secs(boot.hooks.rescan_secs));
    tracing::info!(
        rescan_secs = rescan.map(|d| d.as_secs()),
        "hot reload follows the cluster's revisions (the file watcher is off; unmanaged files are rescanned)"
    );
    std::thread::Builder::new()
        .name("hookgate-reload".into())
        .spawn(move || {
            let mut last: Option<u64> = None;
            loop {
                let (why, mut revision) = match rescan {
                    Some(every) => match revisions.recv_timeout(every) {
                        Ok(r) => ("cluster revision", r),
                        Err(RecvTimeoutError::Timeout) => match last {
                            Some(r) => ("rescan", r),
                            None => continue,
                        },
                        Err(RecvTimeoutError::Disconnected) => return,
                    },
                    None => match revisions.recv() {
                        Ok(r) => ("cluster revision", r),
                        Err(_) => return,
                    },
                };
                // Sent in the order the files were written: the last one is what they hold.
                while let Ok(later) = revisions.try_recv() {
                    revision = later;
                }
                last = Some(revision);
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    reloader.check_at(why, revision)
                }));
                if outcome.is_err() {
                    tracing::error!("reload check panicked; the generation in force keeps serving");
                }
            }
        })?;
    Ok(())
}

fn start_watcher(paths: &Paths, tx: Sender<Wake>) -> notify::Result<RecommendedWatcher> {
    let filter = Paths {
        config_file: paths.config_file.clone(),
        config_dir: paths.config_dir.clone(),
        hooks_dir: paths.hooks_dir.clone(),
        hooks_parent: paths.hooks_parent.clone(),
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let wake = match res {
            Err(e) => {
                tracing::warn!(error = %e, "file watcher error; rescanning");
                Some(Wake::Rescan)
            }
            Ok(ev) if ev.need_rescan() => Some(Wake::Rescan),
            Ok(ev) if is_read_only(&ev.kind) => None,
            Ok(ev) => ev
                .paths
                .iter()
                .filter_map(|p| filter.classify(p))
                .reduce(|a, b| a || b)
                .map(|rewatch| Wake::Changed { rewatch }),
        };
        if let Some(w) = wake {
            let _ = tx.send(w);
        }
    })?;
    watcher.watch(&paths.config_dir, RecursiveMode::NonRecursive)?;
    if paths.hooks_parent != paths.config_dir {
        watcher.watch(&paths.hooks_parent, RecursiveMode::NonRecursive)?;
    }
    if let Err(e) = watcher.watch(&paths.hooks_dir, RecursiveMode::Recursive) {
        // The folder may appear later; its parent's watch will see it.
        tracing::warn!(error = %e, hooks = %paths.hooks_dir.display(), "cannot watch the hooks folder yet");
    }
    Ok(watcher)
}

/// Events caused by reading (hookgate's own rescans open every file): never a change.
fn is_read_only(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => false,
        EventKind::Access(_) => true,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => true,
        _ => false,
    }
}

fn run(
    mut reloader: Reloader,
    mut watcher: Option<RecommendedWatcher>,
    paths: &Paths,
    rx: Receiver<Wake>,
    quiet: Duration,
    rescan: Option<Duration>,
) {
    loop {
        let first = match rescan {
            Some(every) => rx.recv_timeout(every),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let (why, mut rewatch) = match first {
            Ok(Wake::Changed { rewatch }) => ("change", rewatch),
            Ok(Wake::Rescan) => ("rescan requested by the watcher", true),
            Err(RecvTimeoutError::Timeout) => ("periodic rescan", false),
            Err(RecvTimeoutError::Disconnected) => {
                // No watcher (its sender is gone): the rescan timer alone drives reloads.
                match rescan {
                    Some(every) => std::thread::sleep(every),
                    None => return,
                }
                ("periodic rescan", false)
            }
        };
        if why != "periodic rescan" {
            rewatch |= debounce(&rx, quiet);
        }
        if rewatch {
            if let Some(w) = watcher.as_mut() {
                // The hooks folder was replaced: the recursive watch is on the old one.
                let _ = w.unwatch(&paths.hooks_dir);
                if let Err(e) = w.watch(&paths.hooks_dir, RecursiveMode::Recursive) {
                    tracing::debug!(error = %e, "cannot watch the hooks folder");
                }
            }
        }
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reloader.check(why)));
        if outcome.is_err() {
            tracing::error!("reload check panicked; the generation in force keeps serving");
        }
    }
}

/// Wait until no event came for `quiet` (at most [`MAX_DEBOUNCE`]); whether any asked to re-arm.
fn debounce(rx: &Receiver<Wake>, quiet: Duration) -> bool {
    let start = Instant::now();
    let mut rewatch = false;
    while start.elapsed() < MAX_DEBOUNCE {
        match rx.recv_timeout(quiet) {
            Ok(Wake::Changed { rewatch: r }) => rewatch |= r,
            Ok(Wake::Rescan) => rewatch = true,
            Err(_) => break,
        }
    }
    rewatch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Paths {
        Paths {
            config_file: "/etc/hg/hookgate.toml".into(),
            config_dir: "/etc/hg".into(),
            hooks_dir: "/etc/hg/hooks".into(),
            hooks_parent: "/etc/hg".into(),
        }
    }

    #[test]
    fn looks_at_hooks_the_config_and_configmap_swaps_only() {
        let p = paths();
        assert_eq!(
            p.classify(Path::new("/etc/hg/hooks/credentials-exchange/a.js")),
            Some(false)
        );
        assert_eq!(p.classify(Path::new("/etc/hg/hooks/..data")), Some(false));
        assert_eq!(p.classify(Path::new("/etc/hg/hooks")), Some(true));
        assert_eq!(p.classify(Path::new("/etc/hg/hookgate.toml")), Some(false));
        assert_eq!(p.classify(Path::new("/etc/hg/..data")), Some(true));
        assert_eq!(p.classify(Path::new("/etc/hg/hookgate.log")), None);
        assert_eq!(p.classify(Path::new("/etc/other/..data")), None);
    }
}
