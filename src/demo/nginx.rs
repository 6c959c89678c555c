//! The demo's private nginx: found on the `PATH` (or in `/usr/sbin`,
//! `/sbin`), configured with one front port per app in front of its
//! instances, and started in a process group of its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::own_group_ended_with_demo;

/// The nginx binary, if one is installed.
pub(super) fn find() -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join("nginx"))
        .find(|p| p.is_file())
}

/// A private nginx with one front port per app (`lb`, in app order) in
/// front of the instances' `ports`; returns it and the front ports.
pub(super) fn start(
    dir: &Path,
    nginx: &Path,
    apps: &[(&str, u64)],
    ports: &[u16],
    lb: &[u16],
) -> Result<(Child, Vec<(String, u16)>), String> {
    let d = dir.join("nginx");
    std::fs::create_dir_all(d.join("tmp")).map_err(|e| e.to_string())?;
    let mut servers = String::new();
    let mut lb_ports = Vec::new();
    for (a, (app, _)) in apps.iter().enumerate() {
        let upstream: String = ports[a * 3..a * 3 + 3]
            .iter()
            .map(|p| format!("server 127.0.0.1:{p};\n"))
            .collect();
        std::fs::write(d.join(format!("{app}.upstream")), upstream).map_err(|e| e.to_string())?;
        let port = lb[a];
        lb_ports.push((app.to_string(), port));
        servers.push_str(&format!(
            "  upstream {app} {{ include {d}/{app}.upstream; }}\n  server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://{app}; }} }}\n",
            d = d.display()
        ));
    }
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 256; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n  \
         proxy_temp_path {d}/tmp/proxy;\n{servers}}}\n",
        d = d.display()
    );
    std::fs::write(d.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(nginx);
    cmd.arg("-p")
        .arg(&d)
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // The teardown stops nginx gracefully and, as a last resort, SIGKILLs
    // its whole group, workers included; should the demo die without its
    // teardown (SIGKILL), the master gets SIGTERM (nginx's fast shutdown,
    // workers included).
    own_group_ended_with_demo(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    Ok((child, lb_ports))
}
