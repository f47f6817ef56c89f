//! Start the real `hookgate` binary with a generated configuration.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1 (the kernel's choice; released before hookgate binds it).
/// A port nothing listens on now, and one this test binary has not handed out before: tests
/// run in parallel threads, and the OS may give a port just released by one test's probe to
/// another's, so that one hookgate's admin listener took the port another hookgate was told to
/// serve on (and that test talked to the wrong server).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub struct Hookgate {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Hookgate {
    /// Start hookgate in front of `upstream`. `extra` is appended to the generated config: routes,
    /// hook settings, and `[server]`/`[upstream]` keys through `server_extra`/`upstream_extra`.
    pub fn start(
        upstream: &str,
        server_extra: &str,
        upstream_extra: &str,
        extra: &str,
    ) -> Hookgate {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, upstream, server_extra, upstream_extra, extra)
    }

    pub fn start_in(
        dir: tempfile::TempDir,
        upstream: &str,
        server_extra: &str,
        upstream_extra: &str,
        extra: &str,
    ) -> Hookgate {
        let port = free_port();
        let admin_port = free_port();
        let config = format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nadmin_listen = \"127.0.0.1:{admin_port}\"\nthreads = 2\n{server_extra}\n\
             [upstream]\naddress = \"{upstream}\"\n{upstream_extra}\n{extra}\n"
        );
        // Token routes re-sign with hookgate's key: every instance gets one of its own.
        let key = dir.path().join("hookgate.pem");
        if !key.exists() {
            let pem = hookgate::token::keys::generate_pem(hookgate::token::Alg::ES256).unwrap();
            std::fs::write(&key, pem).unwrap();
        }
        let config = if extra.contains("[token]") {
            config
        } else {
            format!("{config}\n[token]\nsigning_key = \"hookgate.pem\"\n")
        };
        let path = dir.path().join("hookgate.toml");
        std::fs::write(&path, config).unwrap();
        std::fs::create_dir_all(dir.path().join("hooks")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("hookgate.log")).unwrap(),
            ))
            .spawn()
            .expect("start hookgate");
        let mut hg = Hookgate {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            admin: format!("127.0.0.1:{admin_port}").parse().unwrap(),
            dir,
            child: Some(child),
        };
        hg.wait_listening();
        hg
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("hookgate exited at start ({status}):\n{}", self.log());
            }
            if TcpStream::connect(self.addr).is_ok() && TcpStream::connect(self.admin).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("hookgate did not start listening:\n{}", self.log());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// One value from the admin listener's `/metrics`; panics, showing them all, if it is absent.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = reqwest::get(self.admin_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
    }

    /// Wait (at most 20 s) until a value in `/metrics` reaches `at_least`.
    pub async fn until_metric(&self, name: &str, at_least: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.metric(name).await < at_least {
            assert!(
                Instant::now() < deadline,
                "{name} never reached {at_least}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("hookgate.toml")
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("hookgate.log")) {
            f.read_to_string(&mut s).ok();
        }
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Wait for the process to exit, at most `limit`; None if it is still running then.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Hookgate {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Run `hookgate <args>` to completion; (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
