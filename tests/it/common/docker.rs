//! Docker test support: a daemon that answers, and small images built
//! locally `FROM scratch` around a static busybox (no registry is needed).

use std::path::Path;
use std::process::Command;

/// Holds image builds and removals to one at a time in the whole test
/// binary: the legacy builder reuses cached layers, and removing one test's
/// image can delete the cached parent another test's build is standing on.
/// [`build_image`] and [`build_image_with_files`] take it themselves; a
/// test removing images holds it while it does.
pub fn image_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `docker info` answers (honours `DOCKER_HOST`).
pub fn available(test: &str) -> bool {
    if super::find_program("docker").is_none() {
        return super::missing::<()>(test, "program `docker`").is_some();
    }
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    ok || super::missing::<()>(test, "a Docker daemon (docker info fails)").is_some()
}

/// Runs `docker ARGS`, panicking with its stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `docker ARGS`, ignoring failure.
pub fn docker_quiet(args: &[&str]) {
    let _ = Command::new("docker").args(args).output();
}

/// Builds `tag` from a Dockerfile body; the build context holds a static
/// busybox at `/busybox`. Returns `None` (after a loud skip) when busybox is
/// missing.
pub fn build_image(test: &str, tag: &str, dockerfile: &str) -> Option<()> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        return super::missing(test, "a static /bin/busybox (package busybox-static)");
    }
    let dir = super::TempDir::new("image");
    std::fs::copy(busybox, dir.join("busybox")).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    let _one_at_a_time = image_lock();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(&dir.0)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run docker build");
    assert!(
        out.status.success(),
        "docker build {tag} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

/// Like [`build_image`], with extra files in the build context: each
/// `(path, contents)` is written under the context (folders created).
pub fn build_image_with_files(
    test: &str,
    tag: &str,
    dockerfile: &str,
    files: &[(&str, &str)],
) -> Option<()> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        return super::missing(test, "a static /bin/busybox (package busybox-static)");
    }
    let dir = super::TempDir::new("image");
    std::fs::copy(busybox, dir.join("busybox")).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    for (path, contents) in files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, contents).unwrap();
    }
    let _one_at_a_time = image_lock();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(&dir.0)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run docker build");
    assert!(
        out.status.success(),
        "docker build {tag} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

/// Runs `docker ARGS`; `Some(stdout)` on success, `None` on failure.
pub fn docker_try(args: &[&str]) -> Option<String> {
    let out = Command::new("docker").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
