//! ssh's refusal of a host's key, read. When the key a host offers is not
//! the one known_hosts holds (or none is held and checking is strict), ssh
//! prints a boxed banner of some 900 characters. [`read`] (pure) takes out
//! what matters: which way the key disagrees, the type and fingerprint of
//! the key the host offers now, and the known_hosts file and line that
//! holds another; [`HostKeyRefusal`] says it in one line and
//! [`HostKeyRefusal::steps`] says what to do, without ever turning the
//! check off. The banner itself goes to the log only.
//!
//! The key's type and fingerprint come from the host: they are kept only
//! when they are made of the characters such values are made of, and the
//! commands suggested are quoted for a shell, never pasted raw.

use std::fmt;
use std::path::Path;

use crate::shell::quote;

/// The known_hosts file ssh reads when the config names none.
const DEFAULT_KNOWN_HOSTS: &str = "~/.ssh/known_hosts";

/// Which way the host's key disagrees with known_hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// known_hosts holds another key for the host: the host was
    /// reinstalled, or someone is between us and it.
    Changed,
    /// known_hosts holds no key of that type for the host, and checking
    /// is strict.
    Unknown,
    /// ssh refused the key for another reason (a revoked key, say).
    Other,
}

/// A host key ssh refused: where, which way, and what the host offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKeyRefusal {
    /// Which way it disagrees.
    pub refusal: Refusal,
    /// The address ssh connected to (the config's).
    pub address: String,
    /// The port.
    pub port: u16,
    /// The known_hosts file the config names; `None`: ssh's default.
    pub known_hosts: Option<String>,
    /// The type of the key the host offers, as ssh names it (`ED25519`).
    pub key_type: Option<String>,
    /// That key's fingerprint, as ssh prints it (`SHA256:...`).
    pub fingerprint: Option<String>,
    /// The known_hosts file and line holding the key that disagrees.
    pub offending: Option<(String, u64)>,
}

/// Reads what ssh printed when it failed to connect to `address` on
/// `port` (with the config's `known_hosts`, if any). `None` when it is no
/// host key refusal.
pub fn read(
    banner: &str,
    address: &str,
    port: u16,
    known_hosts: Option<&Path>,
) -> Option<HostKeyRefusal> {
    let lines: Vec<&str> = banner.lines().map(str::trim).collect();
    let mut refusal = None;
    let mut key_type = None;
    let mut fingerprint = None;
    let mut offending = None;
    for (i, line) in lines.iter().enumerate() {
        if line.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || (line.starts_with("Host key for ") && line.contains(" has changed"))
        {
            refusal = Some(Refusal::Changed);
        } else if let Some(rest) = line.strip_prefix("No ")
            && let Some((kind, _)) = rest.split_once(" host key is known for ")
        {
            refusal.get_or_insert(Refusal::Unknown);
            key_type = key_type.or_else(|| key_name(kind));
        } else if let Some(rest) = line.strip_prefix("The fingerprint for the ")
            && let Some((kind, after)) = rest.split_once(" key sent by the remote host is")
        {
            key_type = key_name(kind).or(key_type);
            let next = lines.get(i + 1).copied().unwrap_or("");
            let value = if after.trim().is_empty() { next } else { after };
            fingerprint = fingerprint_of(value);
        } else if let Some(rest) = line.strip_prefix("Offending ")
            && let Some((_, place)) = rest.split_once(" in ")
            && let Some((file, n)) = place.rsplit_once(':')
            && let Ok(n) = n.parse::<u64>()
            && !file.is_empty()
            && !file.chars().any(char::is_control)
        {
            refusal = Some(Refusal::Changed);
            // The host's own line before its IP address's.
            if rest.starts_with("key for IP") {
                offending.get_or_insert((file.to_string(), n));
            } else {
                offending = Some((file.to_string(), n));
            }
        } else if *line == "Host key verification failed."
            || line.contains("REVOKED HOST KEY")
            || line.contains("is marked as revoked")
        {
            refusal.get_or_insert(Refusal::Other);
        }
    }
    Some(HostKeyRefusal {
        refusal: refusal?,
        address: address.to_string(),
        port,
        known_hosts: known_hosts.map(|p| p.display().to_string()),
        key_type,
        fingerprint,
        offending,
    })
}

/// A key type as ssh names it (`ED25519`, `ECDSA-SK`), or `None` when
/// `s` is not made like one.
fn key_name(s: &str) -> Option<String> {
    let ok = (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    ok.then(|| s.to_string())
}

/// A fingerprint as ssh prints it (`SHA256:` and base64, or `MD5:` and
/// hex pairs), the sentence's full stop dropped; `None` when `s` is not
/// made like one.
fn fingerprint_of(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches('.');
    let (alg, digest) = s.split_once(':')?;
    let ok = (1..=10).contains(&alg.len())
        && alg
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && (1..=128).contains(&digest.len())
        && digest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b':'));
    ok.then(|| s.to_string())
}

impl HostKeyRefusal {
    /// The same refusal with `mask` applied to what the config gave (the
    /// address, the files): a secret there never reaches a message.
    pub fn masked(self, mask: &impl Fn(String) -> String) -> HostKeyRefusal {
        HostKeyRefusal {
            address: mask(self.address),
            known_hosts: self.known_hosts.map(mask),
            offending: self.offending.map(|(f, n)| (mask(f), n)),
            ..self
        }
    }

    /// The host as known_hosts names it: `address`, or `[address]:port`
    /// off port 22.
    fn known_as(&self) -> String {
        if self.port == 22 {
            self.address.clone()
        } else {
            format!("[{}]:{}", self.address, self.port)
        }
    }

    /// The known_hosts file to change, for a shell: the one holding the
    /// old key, else the config's, else ssh's default (unquoted, so `~`
    /// is the home folder).
    fn file_arg(&self) -> String {
        let named = self
            .offending
            .as_ref()
            .map(|(f, _)| f)
            .or(self.known_hosts.as_ref());
        named.map_or_else(|| DEFAULT_KNOWN_HOSTS.to_string(), |f| quote(f))
    }

    /// `-t TYPE ` for ssh-keyscan when the key's type is one it takes.
    fn keyscan_type(&self) -> String {
        let t = self.key_type.as_deref().unwrap_or("").to_ascii_lowercase();
        match t.as_str() {
            "ed25519" | "ecdsa" | "rsa" | "dsa" | "ed25519-sk" | "ecdsa-sk" => format!("-t {t} "),
            _ => String::new(),
        }
    }

    /// `ssh-keyscan [-t TYPE] -p PORT ADDRESS`.
    fn keyscan(&self) -> String {
        format!(
            "ssh-keyscan {}-p {} {}",
            self.keyscan_type(),
            self.port,
            quote(&self.address)
        )
    }

    /// Where the host's owner reads the key's fingerprint on the host.
    fn on_the_host(&self) -> String {
        let t = self.key_type.as_deref().unwrap_or("").to_ascii_lowercase();
        match t.as_str() {
            "ed25519" | "ecdsa" | "rsa" | "dsa" => {
                format!("on the host: ssh-keygen -lf /etc/ssh/ssh_host_{t}_key.pub")
            }
            _ => "on the host: ssh-keygen -lf on its /etc/ssh/ssh_host_*_key.pub".to_string(),
        }
    }

    /// What to do, step by step; no step turns the check off.
    pub fn steps(&self) -> Vec<String> {
        let scan = self.keyscan();
        let file = self.file_arg();
        match self.refusal {
            Refusal::Changed => {
                let fp = self.fingerprint.as_deref().unwrap_or("its new key");
                vec![
                    format!(
                        "do not trust the new key until the host's owner confirms {fp} ({})",
                        self.on_the_host()
                    ),
                    format!("see what it offers: {scan} | ssh-keygen -lf -"),
                    format!(
                        "only if they match, remove the old key: ssh-keygen -f {file} -R {}",
                        quote(&self.known_as())
                    ),
                    format!("then add the new one: {scan} >> {file}"),
                ]
            }
            Refusal::Unknown => vec![
                format!(
                    "check the key's fingerprint out of band ({}) against what it offers: {scan} | ssh-keygen -lf -",
                    self.on_the_host()
                ),
                format!("only if they match, add it: {scan} >> {file}"),
            ],
            Refusal::Other => {
                let kh = self.known_hosts.as_ref().map_or_else(String::new, |f| {
                    format!("-o UserKnownHostsFile={} ", quote(f))
                });
                vec![format!(
                    "see ssh's reason: ssh -o BatchMode=yes {kh}-p {} {} true",
                    self.port,
                    quote(&self.address)
                )]
            }
        }
    }
}

impl fmt::Display for HostKeyRefusal {
    /// One line: which way the key disagrees, where, and what the host
    /// offers now.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("{} port {}", self.address, self.port);
        let key = self
            .key_type
            .as_deref()
            .map_or_else(String::new, |t| format!("{t} "));
        match self.refusal {
            Refusal::Changed => {
                write!(f, "host key CHANGED: {at} now offers ")?;
                match &self.fingerprint {
                    Some(fp) => write!(f, "{key}key {fp}")?,
                    None => write!(f, "another {key}key")?,
                }
                match &self.offending {
                    Some((file, line)) => write!(f, ", not the key at {file}:{line}")?,
                    None => write!(f, ", not the key known_hosts holds")?,
                }
                write!(
                    f,
                    "; this may be an attack (someone between rollguard and the host), or the host was reinstalled"
                )
            }
            Refusal::Unknown => {
                let file = self.known_hosts.as_deref().unwrap_or(DEFAULT_KNOWN_HOSTS);
                write!(
                    f,
                    "host key UNKNOWN: no {key}key for {at} in {file}, and checking is strict"
                )
            }
            Refusal::Other => write!(f, "ssh refused the host key of {at}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What OpenSSH 9.2 printed for a host whose key was made anew, the
    /// old one on line 3 of known_hosts (its `\r\n` and lone `\n` as sent).
    const CHANGED: &str = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n\
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n\
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\r\n\
Someone could be eavesdropping on you right now (man-in-the-middle attack)!\r\n\
It is also possible that a host key has just been changed.\r\n\
The fingerprint for the ED25519 key sent by the remote host is\n\
SHA256:t7BBw13bs338H6o0oPK+DzIzzqFjEJ5yL+Rgkeg7wD8.\r\n\
Please contact your system administrator.\r\n\
Add correct host key in /tmp/hk/known_hosts2 to get rid of this message.\r\n\
Offending ED25519 key in /tmp/hk/known_hosts2:3\r\n\
  remove with:\r\n\
  ssh-keygen -f \"/tmp/hk/known_hosts2\" -R \"[127.0.0.1]:22917\"\r\n\
Host key for [127.0.0.1]:22917 has changed and you have requested strict checking.\r\n\
Host key verification failed.";

    /// What it printed for a host with no key in an empty known_hosts.
    const UNKNOWN: &str = "No ED25519 host key is known for [127.0.0.1]:22917 and you have requested strict checking.\r\n\
Host key verification failed.";

    fn kh() -> Option<&'static Path> {
        Some(Path::new("/tmp/hk/known_hosts2"))
    }

    #[test]
    fn a_changed_key_is_read_out_of_the_banner() {
        let r = read(CHANGED, "127.0.0.1", 22917, kh()).unwrap();
        assert_eq!(r.refusal, Refusal::Changed);
        assert_eq!(r.key_type.as_deref(), Some("ED25519"));
        assert_eq!(
            r.fingerprint.as_deref(),
            Some("SHA256:t7BBw13bs338H6o0oPK+DzIzzqFjEJ5yL+Rgkeg7wD8")
        );
        assert_eq!(r.offending, Some(("/tmp/hk/known_hosts2".into(), 3)));
        assert_eq!(
            r.to_string(),
            "host key CHANGED: 127.0.0.1 port 22917 now offers ED25519 key \
             SHA256:t7BBw13bs338H6o0oPK+DzIzzqFjEJ5yL+Rgkeg7wD8, not the key at \
             /tmp/hk/known_hosts2:3; this may be an attack (someone between rollguard \
             and the host), or the host was reinstalled"
        );
        assert_eq!(
            r.steps(),
            [
                "do not trust the new key until the host's owner confirms \
                 SHA256:t7BBw13bs338H6o0oPK+DzIzzqFjEJ5yL+Rgkeg7wD8 (on the host: \
                 ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)",
                "see what it offers: ssh-keyscan -t ed25519 -p 22917 127.0.0.1 | ssh-keygen -lf -",
                "only if they match, remove the old key: \
                 ssh-keygen -f /tmp/hk/known_hosts2 -R '[127.0.0.1]:22917'",
                "then add the new one: ssh-keyscan -t ed25519 -p 22917 127.0.0.1 >> /tmp/hk/known_hosts2",
            ]
        );
        // The same words with their line ends made spaces (as a one-line
        // log would hold them) read the same, but for the fingerprint's
        // own line.
        let flat = CHANGED.split_whitespace().collect::<Vec<_>>().join(" ");
        let r = read(&flat, "127.0.0.1", 22917, kh()).unwrap();
        assert_eq!(r.refusal, Refusal::Changed);
    }

    #[test]
    fn an_unknown_key_is_read_and_its_steps_add_it() {
        let r = read(UNKNOWN, "127.0.0.1", 22917, kh()).unwrap();
        assert_eq!(r.refusal, Refusal::Unknown);
        assert_eq!(r.key_type.as_deref(), Some("ED25519"));
        assert_eq!(
            (r.fingerprint.as_deref(), r.offending.as_ref()),
            (None, None)
        );
        assert_eq!(
            r.to_string(),
            "host key UNKNOWN: no ED25519 key for 127.0.0.1 port 22917 in \
             /tmp/hk/known_hosts2, and checking is strict"
        );
        let steps = r.steps().join("\n");
        assert!(
            steps.contains("ssh-keyscan -t ed25519 -p 22917 127.0.0.1 >> /tmp/hk/known_hosts2"),
            "{steps}"
        );
        assert!(steps.contains("out of band"), "{steps}");

        // Without a known_hosts in the config: ssh's default, `~` left
        // for the shell; port 22 is the bare address.
        let r = read(UNKNOWN, "db.internal", 22, None).unwrap();
        assert!(r.to_string().contains("in ~/.ssh/known_hosts,"), "{r}");
        assert!(
            r.steps()[1]
                .ends_with("ssh-keyscan -t ed25519 -p 22 db.internal >> ~/.ssh/known_hosts"),
            "{:?}",
            r.steps()
        );
    }

    #[test]
    fn other_failures_are_not_host_key_refusals() {
        for text in [
            "ssh: connect to host 127.0.0.1 port 1: Connection refused",
            "root@127.0.0.1: Permission denied (publickey).",
            "",
        ] {
            assert_eq!(read(text, "127.0.0.1", 22, None), None, "{text}");
        }
        let r = read("Host key verification failed.", "h", 2222, kh()).unwrap();
        assert_eq!(r.refusal, Refusal::Other);
        assert_eq!(r.to_string(), "ssh refused the host key of h port 2222");
        assert_eq!(
            r.steps(),
            ["see ssh's reason: ssh -o BatchMode=yes \
              -o UserKnownHostsFile=/tmp/hk/known_hosts2 -p 2222 h true"]
        );
    }

    #[test]
    fn what_a_host_sends_is_kept_only_when_made_as_it_should_be() {
        let forged = CHANGED
            .replace("the ED25519 key", "the ED25519\u{1b}]0;x\u{7} key")
            .replace("SHA256:t7BB", "SHA256:t7BB\u{1b}[2J$(reboot)");
        let r = read(&forged, "127.0.0.1", 22917, kh()).unwrap();
        assert_eq!(r.refusal, Refusal::Changed);
        assert_eq!(r.fingerprint, None);
        assert!(!r.to_string().chars().any(char::is_control), "{r}");
        for step in r.steps() {
            assert!(!step.contains("reboot"), "{step}");
        }
        assert!(r.to_string().contains("now offers another"), "{r}");

        // A file or address with spaces and quotes is one shell word.
        let mut r = read(CHANGED, "10.0.0.1", 22, None).unwrap();
        r.offending = Some(("/srv/my hosts/it's".into(), 7));
        assert!(
            r.steps()[2].ends_with("ssh-keygen -f '/srv/my hosts/it'\\''s' -R 10.0.0.1"),
            "{:?}",
            r.steps()
        );
    }
}
