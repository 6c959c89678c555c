//! `rollguard man`: one roff manual page made by clap_mangen from the same
//! clap definition as the parser: the program's synopsis, description and
//! options, then a COMMANDS section with each command (and each of its
//! own) as a subsection with its description, synopsis and options, so
//! `man rollguard` holds the whole command line; then what the help says
//! after it (the config's places, the exit codes).

use std::io;

use clap::Command;
use clap_mangen::Man;

/// The lines roff adds to the start of every piece it renders (a string
/// for the apostrophe); the page has them once, after its `.TH` line.
const PREAMBLE: [&str; 2] = [r".ie \n(.g .ds Aq \(aq", ".el .ds Aq '"];

/// Options every command takes from the program, described once at the
/// top of the page.
const GLOBAL: [&str; 4] = ["config", "db", "theme", "help"];

/// The manual page of `cmd` (the program's whole definition), in roff.
pub fn page(cmd: Command) -> io::Result<Vec<u8>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let man = Man::new(cmd.clone());
    let mut title = Vec::new();
    man.render_title(&mut title)?;
    let mut body = Vec::new();
    man.render_name_section(&mut body)?;
    man.render_synopsis_section(&mut body)?;
    man.render_description_section(&mut body)?;
    man.render_options_section(&mut body)?;
    body.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command(sub, &mut body)?;
    }
    man.render_extra_section(&mut body)?;
    man.render_version_section(&mut body)?;

    let mut out = Vec::new();
    for line in lines(&title) {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    for line in PREAMBLE {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    for line in lines(&body) {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// The lines of rendered roff, without the preamble roff repeats.
fn lines(roff: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(roff)
        .lines()
        .filter(|l| !PREAMBLE.contains(l))
        .map(str::to_string)
        .collect()
}

/// One command as a subsection: `.SS "rollguard deploy"`, what it does,
/// its synopsis and its options (not the program's), then its own
/// commands the same way.
fn command(sub: &Command, out: &mut Vec<u8>) -> io::Result<()> {
    let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
    let own = sub.clone().mut_args(|a| {
        if GLOBAL.contains(&a.get_id().as_str()) {
            a.hide(true)
        } else {
            a
        }
    });
    let man = Man::new(own);
    let mut piece = Vec::new();
    man.render_description_section(&mut piece)?;
    piece.extend_from_slice(b".PP\n");
    man.render_synopsis_section(&mut piece)?;
    man.render_options_section(&mut piece)?;
    out.extend_from_slice(format!(".SS \"{}\"\n", name.replace('-', r"\-")).as_bytes());
    for line in lines(&piece) {
        // Its sections are parts of this subsection.
        if line.starts_with(".SH ") {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    for inner in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
        command(inner, out)?;
    }
    Ok(())
}
