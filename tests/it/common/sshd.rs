//! A real, throwaway `sshd` on 127.0.0.1 for SSH tests: its own host key,
//! user key, authorized_keys, known_hosts and config in a temp folder, run
//! in the foreground as a child that is killed on drop.
#![allow(dead_code)]

use std::fs;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rollguard::config::{HostKeyCheck, Ssh};

use crate::common::{TempDir, free_port, program};

/// A running sshd.
pub struct Sshd {
    /// Folder with keys, config and log.
    pub dir: TempDir,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// Private key accepted for login.
    pub user_key: PathBuf,
    /// known_hosts holding the host key it was first started with.
    pub known_hosts: PathBuf,
    sshd: PathBuf,
    keygen: PathBuf,
    child: Option<Child>,
}

impl Sshd {
    /// Starts one, or skips loudly (see `common::missing`) when sshd, ssh or
    /// ssh-keygen is not installed.
    pub fn start(test: &str) -> Option<Sshd> {
        let sshd = program(test, "sshd")?;
        program(test, "ssh")?;
        let keygen = program(test, "ssh-keygen")?;
        // Privilege separation needs this folder.
        let _ = fs::create_dir_all("/run/sshd");
        let dir = TempDir::new("sshd");
        let port = free_port();
        let mut s = Sshd {
            user_key: dir.join("user_key"),
            known_hosts: dir.join("known_hosts"),
            dir,
            port,
            sshd,
            keygen,
            child: None,
        };
        s.keygen("host_key");
        s.keygen("user_key");
        fs::copy(s.dir.join("user_key.pub"), s.dir.join("authorized_keys")).unwrap();
        let cfg = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
             PidFile {pid}\nUsePAM no\nStrictModes no\nPermitRootLogin yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel ERROR\n",
            hk = s.dir.join("host_key").display(),
            ak = s.dir.join("authorized_keys").display(),
            pid = s.dir.join("sshd.pid").display(),
        );
        fs::write(s.dir.join("sshd_config"), cfg).unwrap();
        fs::write(&s.known_hosts, s.known_hosts_line()).unwrap();
        s.launch();
        Some(s)
    }

    fn keygen(&self, name: &str) {
        let path = self.dir.join(name);
        let _ = fs::remove_file(&path);
        let _ = fs::remove_file(path.with_extension("pub"));
        let st = Command::new(&self.keygen)
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "rollguard-test",
                "-f",
            ])
            .arg(&path)
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "ssh-keygen failed for {name}");
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA...` for the current host key.
    pub fn known_hosts_line(&self) -> String {
        let pubkey = fs::read_to_string(self.dir.join("host_key.pub")).unwrap();
        let mut f = pubkey.split_whitespace();
        let (kind, key) = (f.next().unwrap(), f.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }

    /// The current host key's fingerprint, `SHA256:...`, as ssh prints it.
    pub fn host_key_fingerprint(&self) -> String {
        let out = Command::new(&self.keygen)
            .arg("-l")
            .arg("-f")
            .arg(self.dir.join("host_key.pub"))
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-keygen -l failed");
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .find(|w| w.starts_with("SHA256:"))
            .unwrap_or_else(|| panic!("no fingerprint in {text}"))
            .to_string()
    }

    fn launch(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("sshd.log"))
            .unwrap();
        let child = Command::new(&self.sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sshd exited ({st}): {}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What sshd wrote to stderr.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Client settings that trust this sshd (strict host key checking).
    pub fn ssh(&self) -> Ssh {
        Ssh {
            user: None,
            port: self.port,
            identity: Some(self.user_key.clone()),
            known_hosts: Some(self.known_hosts.clone()),
            host_key_check: HostKeyCheck::Strict,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The listener's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Pids of every process below the listener: one tree per connection.
    pub fn connection_pids(&self) -> Vec<i32> {
        let Some(root) = self.pid() else {
            return Vec::new();
        };
        let parents = ppids();
        let mut found = vec![root as i32];
        let mut i = 0;
        while i < found.len() {
            let p = found[i];
            found.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
            i += 1;
        }
        found.remove(0);
        found
    }

    /// Cuts every client connection (kills the per-connection processes);
    /// the listener stays.
    pub fn kill_connections(&self) {
        for p in self.connection_pids() {
            // SAFETY: plain kill(2).
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
    }

    /// Stops everything; with `new_host_key` generates a fresh host key
    /// (known_hosts keeps the old one); starts again on the same port.
    pub fn restart(&mut self, new_host_key: bool) {
        self.stop();
        if new_host_key {
            self.keygen("host_key");
        }
        self.launch();
    }

    fn stop(&mut self) {
        self.kill_connections();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// (pid, ppid) of every process.
fn ppids() -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces): state ppid ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            out.push((pid, ppid));
        }
    }
    out
}

/// Whether `pid` is a live (not zombie) process on this machine.
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
