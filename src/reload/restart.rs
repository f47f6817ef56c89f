//! Which settings a reload cannot apply, and keeping them as they were.
//!
//! Some settings need a restart, because something was built from them once at start: the
//! listeners and threads, the logger, the upstream's pool, the engine's pool and sandbox, the
//! outbox and the watcher. Each section of the configuration model says which of its settings
//! these are, next to its fields (`Config::pin_boot` and the sections' `pin_boot`); everything
//! else (routes, `[clients]`, `[tenant]`, `[[hooks.hook]]`, `[token]` keys and paths, the request
//! limits, ...) applies live.
//!
//! A new configuration keeps the running values of these, so the snapshot in force always says
//! what is really running; the names of those that differ are reported.
//!
//! Owns: applying the pin to a reload. Must not: list settings itself (the sections do).

use crate::config::Config;

/// Copy every restart-only setting of `running` into `new`; the names of those that differed.
pub fn pin(new: &mut Config, running: &Config) -> Vec<String> {
    new.pin_boot(running)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Config {
        Config::parse(Path::new("hookgate.toml"), text, &|_| None).unwrap()
    }

    #[test]
    fn keeps_listeners_and_upstream_and_applies_routes() {
        let running = parse(
            "[server]\nlisten = [\"127.0.0.1:8080\"]\n[upstream]\naddress = \"127.0.0.1:1\"\n\
             [[route]]\npath = \"/a\"\n",
        );
        let mut new = parse(
            "[server]\nlisten = [\"127.0.0.1:9090\"]\naccess_log = true\n\
             [upstream]\naddress = \"127.0.0.1:2\"\n[[route]]\npath = \"/b\"\n\
             [hooks]\nworkers = 7\ntimeout_ms = 5\n",
        );
        let changed = pin(&mut new, &running);
        assert_eq!(changed, ["server.listen", "upstream", "hooks.workers"]);
        assert_eq!(new.server.listen, running.server.listen);
        assert_eq!(new.upstream.address, "127.0.0.1:1");
        assert_eq!(new.hooks.workers, None);
        assert_eq!(new.routes[0].path, "/b", "routes apply live");
        assert!(new.server.access_log, "access_log applies live");
        assert_eq!(new.hooks.timeout_ms, 5, "hook timeouts apply live");
    }

    #[test]
    fn nothing_to_report_when_only_live_settings_change() {
        let running = parse("[upstream]\naddress = \"127.0.0.1:1\"\n[tenant]\nname = \"a\"\n");
        let mut new = parse("[upstream]\naddress = \"127.0.0.1:1\"\n[tenant]\nname = \"b\"\n");
        assert!(pin(&mut new, &running).is_empty());
        assert_eq!(new.tenant.name, "b");
    }
}
