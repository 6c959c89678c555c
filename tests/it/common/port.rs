//! Ports for the processes a test starts (nginx, HAProxy, sshd, a
//! container's published port, an agent, an SMTP server): one allocator for
//! the whole test binary, so that tests running side by side never get the
//! same port.
//!
//! A port is handed out once per run, and only after binding it showed it
//! free. Ports come from below the range where `rollguard demo` picks its
//! own (10000 and up, see `src/demo`) and below the kernel's ephemeral
//! range (`ip_local_port_range`), where outgoing connections take their
//! local ports: between the check and the moment the started process binds
//! it, neither another test, nor a demo, nor a client connection can take
//! it. Where the code under test can take a listener, [`listener`] hands
//! over the bound socket itself and there is no gap at all.

use std::net::TcpListener;
use std::sync::Mutex;

/// The first and one past the last port handed out.
const LOW: u32 = 2_000;
const HIGH: u32 = 10_000;

/// The next port to try, as an offset from a start that differs between
/// processes (so two test runs at once rarely probe the same ports first).
static NEXT: Mutex<Option<u32>> = Mutex::new(None);

/// A bound listener on 127.0.0.1 on a port nobody else in this run gets.
pub fn listener() -> TcpListener {
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    let span = HIGH - LOW;
    let offset = next.get_or_insert_with(|| std::process::id().wrapping_mul(2_654_435_761) % span);
    for _ in 0..span {
        let port = LOW + *offset % span;
        *offset += 1;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port as u16)) {
            return l;
        }
    }
    panic!("no free port left between {LOW} and {HIGH}");
}

/// A port that is free now and that no other test of this run gets, for a
/// process that binds it itself.
pub fn free_port() -> u16 {
    listener().local_addr().unwrap().port()
}
