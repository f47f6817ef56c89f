//! Which settings a reload cannot apply, and keeping them as they were.
//!
//! Applied live: routes (and which point each triggers), `[clients]`, `[tenant]`, `[[hooks.hook]]`
//! (settings, enable/disable, order, secrets, targeting), `[hooks] timeout_ms`, `[token]` keys and
//! paths, `server.max_body_bytes`, `server.body_read_timeout_ms`, `server.access_log`.
//!
//! Need a restart, because something was built from them once at start:
//! * listeners and threads (`server.listen`, `admin_listen`, `threads`, `work_stealing`), the shutdown grace
//!   period and the log format — pingora and the logger are set up before serving;
//! * `[upstream]` — its connection pool and the upstream's JWKS cache
//!   (`token.upstream_jwks_url`) are tied to it; a sidecar's upstream moves with a deploy anyway;
//! * the engine's pool and sandbox (`[hooks] workers`, memory/stack limits, result and log
//!   limits, `[hooks.egress]`) — the worker threads and their runtimes are built once;
//! * the watcher's own settings (`[hooks] dir`, `watch`, `rescan_secs`, `debounce_ms`).
//!
//! A new configuration keeps the running values of these, so the snapshot in force always says
//! what is really running; the names of those that differ are reported.

use crate::config::Config;

/// Copy every restart-only setting of `running` into `new`; the names of those that differed.
pub fn pin(new: &mut Config, running: &Config) -> Vec<String> {
    let mut changed = Vec::new();
    // Compared through `Debug`: these types are plain data, and it keeps `PartialEq` out of the
    // configuration model for one comparison.
    macro_rules! pin {
        ($name:literal, $($field:tt)+) => {
            if format!("{:?}", new.$($field)+) != format!("{:?}", running.$($field)+) {
                changed.push($name.to_string());
                new.$($field)+ = running.$($field)+.clone();
            }
        };
    }
    pin!("server.listen", server.listen);
    pin!("server.admin_listen", server.admin_listen);
    pin!("server.threads", server.threads);
    pin!("server.grace_period_secs", server.grace_period);
    pin!("server.log_format", server.log_format);
    pin!("server.work_stealing", server.work_stealing);
    pin!("upstream", upstream);
    pin!("token.upstream_jwks_url", token.upstream_jwks_url);
    // The outbox's file and its dispatcher's settings are fixed at start (a reload that adds the
    // first signup route opens that file; see `Reloader::attempt`).
    pin!("outbox", outbox);
    pin!("hooks.dir", hooks.dir);
    pin!("hooks.workers", hooks.workers);
    pin!("hooks.memory_limit_mb", hooks.memory_limit_mb);
    pin!("hooks.stack_limit_kb", hooks.stack_limit_kb);
    pin!("hooks.max_response_bytes", hooks.max_response_bytes);
    pin!("hooks.max_log_bytes", hooks.max_log_bytes);
    // The engine's queue and caps are set when it starts.
    pin!("hooks.queue_timeout_ms", hooks.queue_timeout_ms);
    pin!("hooks.calls_per_worker", hooks.calls_per_worker);
    pin!("hooks.max_workers", hooks.max_workers);
    pin!("hooks.call_cpu_ms", hooks.call_cpu_ms);
    pin!(
        "hooks.max_concurrency_per_hook",
        hooks.max_concurrency_per_hook
    );
    pin!("hooks.max_requests_per_call", hooks.max_requests_per_call);
    pin!("hooks.egress", hooks.egress);
    pin!("hooks.watch", hooks.watch);
    pin!("hooks.rescan_secs", hooks.rescan_secs);
    pin!("hooks.debounce_ms", hooks.debounce_ms);
    // Contexts read it when they are made (`process.version`).
    pin!("hooks.node_version", hooks.node_version);
    changed
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
