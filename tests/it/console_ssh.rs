//! The console where on-call engineers run it: inside `ssh -t` to a real
//! sshd on 127.0.0.1, in a tmux pane. The fleet shows, keys work through
//! the SSH session (`?` opens the help, Esc closes it), Ctrl-Z says plainly
//! that there is no shell here to return to and the console goes on, and
//! `q` ends the console and the SSH session cleanly (exit status 0) with
//! the terminal given back: the main screen, the cursor shown, the local
//! terminal in its usual mode. How many bytes an idle console sends over
//! such a session is measured by `benches/idle_bytes.sh --ssh`.

use crate::common;

use std::net::TcpListener;
use std::time::Duration;

use common::sshd::Sshd;
use common::tmux::{Session, process_with};

const T: Duration = Duration::from_secs(30);

#[test]
fn the_console_over_ssh_shows_the_fleet_takes_keys_and_quits_cleanly() {
    let test = "the_console_over_ssh_shows_the_fleet_takes_keys_and_quits_cleanly";
    let Some(sshd) = Sshd::start(test) else {
        return;
    };
    let Some(s) = Session::start("console-ssh", 100, 30) else {
        return;
    };
    // Two apps probed over TCP on a listener of the test: healthy.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = String::new();
    for app in ["orders", "ledger"] {
        config.push_str(&format!(
            "[[app]]\nname = \"{app}\"\n[[app.instance]]\nname = \"{app}-1\"\nport = {port}\n\
             [[app.probe]]\nname = \"tcp\"\ntype = \"tcp\"\n[app.health]\ninterval = \"1s\"\n\
             success_threshold = 1\n\n"
        ));
    }
    let cfg = sshd.dir.join("fleet.toml");
    std::fs::write(&cfg, config).unwrap();
    let db = sshd.dir.join("history.db");
    let remote = format!(
        "{} --config {} --db {}",
        env!("CARGO_BIN_EXE_rollguard"),
        cfg.display(),
        db.display()
    );
    s.run(&format!(
        "ssh -t -p {} -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} \
         -o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR 127.0.0.1 '{remote}'; \
         echo ssh-exit=$?",
        sshd.port,
        sshd.user_key.display(),
        sshd.known_hosts.display(),
    ));
    let fleet =
        |sc: &str| sc.contains("fleet · 2 apps") && sc.contains("orders") && sc.contains("ledger");
    let screen = s.wait("the fleet over ssh", T, |sc| {
        fleet(sc) && sc.matches("● healthy").count() == 2
    });
    assert!(screen.contains("probing"), "{screen}\nsshd: {}", sshd.log());
    assert_eq!(s.flag("#{alternate_on}"), "1");
    let marker = db.to_string_lossy().into_owned();
    assert!(
        process_with(&marker).is_some(),
        "the console runs under sshd"
    );

    s.keys(&["?"]);
    s.wait("the help", T, |sc| {
        sc.contains(" keys ") && sc.contains("show / hide this help")
    });
    s.keys(&["Escape"]);
    s.wait("the help closed", T, |sc| {
        !sc.contains(" keys ") && fleet(sc)
    });

    // Nothing here could continue a stopped console: it says so, goes on.
    s.keys(&["C-z"]);
    s.wait("why it does not suspend", T, |sc| {
        sc.contains("cannot be suspended") && fleet(sc)
    });
    assert_eq!(s.flag("#{alternate_on}"), "1", "still the console");
    let (_, state) = process_with(&marker).expect("the console runs");
    assert_ne!(state, 'T', "not stopped");

    s.keys(&["q"]);
    let end = s.wait("the ssh session to end", T, |sc| {
        sc.lines().any(|l| l.trim() == "ssh-exit=0")
    });
    assert!(
        !end.contains("orders"),
        "the console's screen is gone:\n{end}"
    );
    s.wait_prompt(T);
    assert_eq!(s.flag("#{alternate_on}"), "0", "the main screen");
    assert_eq!(s.flag("#{cursor_flag}"), "1", "the cursor is shown");
    assert_eq!(s.flag("#{mouse_any_flag}"), "0", "no mouse reports");
    // The local terminal is in its usual mode again.
    s.run("stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo -e -icanon -e -echo | tr '\\n' ' '; echo");
    s.wait("stty's answer", T, |sc| {
        sc.lines().any(|l| l.trim() == "icanon echo")
    });
    // And the console has ended on the far side.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while process_with(&marker).is_some() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(process_with(&marker).is_none(), "the console ended");
}
