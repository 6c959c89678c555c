//! Colors of the console, read from small TOML files.
//!
//! Five themes are compiled in, from the files in `themes/` at the top of
//! the repository: `default` (only the 16 ANSI colors, so it follows the
//! terminal's palette), `dark`, `light`, `high-contrast` and `mono` (no
//! color at all: the selected row is reversed and marked). `themes/default.toml`
//! documents the format. A theme file may set any subset of the keys; the
//! rest come from `default`. Unknown keys and unreadable values are errors
//! that name the file, the key and what is accepted.
//!
//! Which theme the console opens with is [`Theme::pick`]ed: `--theme`, else
//! `mono` when `NO_COLOR` is set, else `[console] theme`. Files are looked
//! for in [`Theme::search_dirs`].

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};

use crate::model::{AppStatus, Verdict};

const DEFAULT_TOML: &str = include_str!("../../themes/default.toml");
const DARK_TOML: &str = include_str!("../../themes/dark.toml");
const LIGHT_TOML: &str = include_str!("../../themes/light.toml");
const HIGH_CONTRAST_TOML: &str = include_str!("../../themes/high-contrast.toml");
const MONO_TOML: &str = include_str!("../../themes/mono.toml");

/// Names of the compiled-in themes.
pub const BUILTIN_THEMES: [&str; 5] = ["default", "dark", "light", "high-contrast", "mono"];

/// The theme used when `NO_COLOR` is set (and `--theme` does not name one).
pub const NO_COLOR_THEME: &str = "mono";

/// The modifiers a theme may give the selected row, by name.
const MODIFIERS: [(&str, Modifier); 6] = [
    ("bold", Modifier::BOLD),
    ("dim", Modifier::DIM),
    ("italic", Modifier::ITALIC),
    ("underlined", Modifier::UNDERLINED),
    ("reversed", Modifier::REVERSED),
    ("crossed_out", Modifier::CROSSED_OUT),
];

/// The widest `selection_marker`, in columns.
const MARKER_MAX: usize = 4;

/// Why a theme could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    /// Neither a built-in nor a file in the search folders.
    #[error(
        "theme `{name}` not found: it is not a built-in theme ({builtins}) and none of these files exists: {searched}",
        builtins = BUILTIN_THEMES.join(", "),
        searched = display_paths(.searched)
    )]
    NotFound {
        /// The name asked for.
        name: String,
        /// The files looked for.
        searched: Vec<PathBuf>,
    },
    /// The file exists but cannot be read.
    #[error("cannot read theme file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("theme {origin} is not valid TOML: {message}")]
    Syntax {
        /// File or built-in name.
        origin: String,
        /// What the TOML parser said.
        message: String,
    },
    /// A key that is not a theme color.
    #[error("theme {origin}: unknown key `{key}` (known keys: {known})", known = Theme::KEYS.join(", "))]
    UnknownKey {
        /// File or built-in name.
        origin: String,
        /// The key.
        key: String,
    },
    /// A value that is not a color.
    #[error(
        "theme {origin}: `{key} = {value}` is not a color; use a name such as \"red\" or \"darkgray\", an index \"0\"..\"255\", or \"#rrggbb\""
    )]
    BadColor {
        /// File or built-in name.
        origin: String,
        /// The key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A value that is not a list of modifiers.
    #[error(
        "theme {origin}: `{key} = {value}` is not a list of modifiers; use a list of {known}, e.g. [\"reversed\"] (or [] for none)",
        known = MODIFIERS.map(|(name, _)| name).join(", ")
    )]
    BadModifiers {
        /// File or built-in name.
        origin: String,
        /// The key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A marker that is not short printable text.
    #[error(
        "theme {origin}: `selection_marker = {value}` cannot be drawn in front of a row; use text of at most {MARKER_MAX} columns without control characters, e.g. \"> \" (or \"\" for none)"
    )]
    BadMarker {
        /// File or built-in name.
        origin: String,
        /// The value as written.
        value: String,
    },
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(no theme folders given)".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! theme {
    ($($(#[$doc:meta])* $key:ident),* $(,)?) => {
        /// The console's colors, and how the selected row stands out.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Theme {
            /// Where it came from: a built-in name or a file path.
            pub name: String,
            $($(#[$doc])* pub $key: Color,)*
            /// Modifiers of the selected row (with [`Theme::selection`] as
            /// its background), e.g. reverse video.
            pub selection_modifiers: Modifier,
            /// Drawn in front of the selected row ("" for nothing), so that
            /// it shows without color.
            pub selection_marker: String,
        }

        impl Theme {
            /// Every key a theme file may set.
            pub const KEYS: &'static [&'static str] =
                &[$(stringify!($key),)* "selection_modifiers", "selection_marker"];

            fn slot(&mut self, key: &str) -> Option<&mut Color> {
                match key {
                    $(stringify!($key) => Some(&mut self.$key),)*
                    _ => None,
                }
            }

            /// Every color key with its value.
            #[cfg(test)]
            fn colors(&self) -> Vec<(&'static str, Color)> {
                vec![$((stringify!($key), self.$key)),*]
            }
        }
    };
}

theme! {
    /// A healthy app or instance.
    healthy,
    /// A degraded app.
    degraded,
    /// An app that is down, an unhealthy instance, a current error.
    down,
    /// No verdict yet.
    unknown,
    /// Sparkline bar of a passing probe.
    ok_bar,
    /// Sparkline bar of a failed probe.
    fail_bar,
    /// Header text.
    header_fg,
    /// Header background.
    header_bg,
    /// Background of the selected row (see also `selection_modifiers`).
    selection,
    /// Panel and popup borders.
    border,
    /// Ordinary text.
    text,
    /// Less important text.
    dim,
    /// A rollout in progress.
    rollout,
}

impl Default for Theme {
    /// The built-in `default` theme.
    fn default() -> Self {
        let mut t = Theme {
            name: "default".into(),
            healthy: Color::Green,
            degraded: Color::Yellow,
            down: Color::LightRed,
            unknown: Color::Gray,
            ok_bar: Color::Green,
            fail_bar: Color::Red,
            header_fg: Color::Black,
            header_bg: Color::Cyan,
            selection: Color::Reset,
            border: Color::DarkGray,
            text: Color::Reset,
            dim: Color::DarkGray,
            rollout: Color::LightCyan,
            selection_modifiers: Modifier::REVERSED,
            selection_marker: String::new(),
        };
        // The compiled-in file is the reference; a test checks it parses.
        let _ = t.apply(DEFAULT_TOML, "default");
        t
    }
}

impl Theme {
    /// A compiled-in theme by name.
    pub fn builtin(name: &str) -> Option<Theme> {
        let text = match name {
            "default" => return Some(Theme::default()),
            "dark" => DARK_TOML,
            "light" => LIGHT_TOML,
            "high-contrast" => HIGH_CONTRAST_TOML,
            "mono" => MONO_TOML,
            _ => return None,
        };
        Theme::parse(text, name).ok()
    }

    /// The name of the theme the console opens with: the one `--theme`
    /// names (`flag`) when given; else `NO_COLOR_THEME` when `NO_COLOR`
    /// (`no_color`, the variable's value) is set to anything but ""; else
    /// `[console] theme` (`configured`). `NO_COLOR` is the operator's own
    /// wish, so it wins over the fleet's config, which a team shares; a
    /// flag given for this console wins over both.
    pub fn pick<'a>(
        flag: Option<&'a str>,
        configured: &'a str,
        no_color: Option<&OsStr>,
    ) -> &'a str {
        match flag {
            Some(name) => name,
            None if no_color.is_some_and(|v| !v.is_empty()) => NO_COLOR_THEME,
            None => configured,
        }
    }

    /// Where theme files are looked for, in order: `themes/` beside the
    /// config file `config`, then `$XDG_CONFIG_HOME/rollguard/themes`.
    pub fn search_dirs(config: &Path) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(parent) = config.parent() {
            dirs.push(parent.join("themes"));
        }
        dirs.push(crate::config::xdg_dir("XDG_CONFIG_HOME", ".config").join("rollguard/themes"));
        dirs
    }

    /// Parses a theme file's text; keys left out come from `default`.
    /// `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Theme, ThemeError> {
        let mut t = Theme::default();
        t.apply(text, origin)?;
        t.name = origin.to_string();
        Ok(t)
    }

    fn apply(&mut self, text: &str, origin: &str) -> Result<(), ThemeError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ThemeError::Syntax {
                origin: origin.to_string(),
                message: e.to_string().trim().to_string(),
            })?;
        for (key, value) in table {
            match key.as_str() {
                "selection_modifiers" => {
                    self.selection_modifiers =
                        modifiers(&value).ok_or_else(|| ThemeError::BadModifiers {
                            origin: origin.to_string(),
                            key: key.clone(),
                            value: value.to_string(),
                        })?;
                    continue;
                }
                "selection_marker" => {
                    self.selection_marker =
                        marker(&value).ok_or_else(|| ThemeError::BadMarker {
                            origin: origin.to_string(),
                            value: value.to_string(),
                        })?;
                    continue;
                }
                _ => {}
            }
            let bad = |value: String| ThemeError::BadColor {
                origin: origin.to_string(),
                key: key.clone(),
                value,
            };
            let color = match &value {
                toml::Value::String(s) => Color::from_str(s).map_err(|_| bad(format!("{s:?}")))?,
                other => return Err(bad(other.to_string())),
            };
            match self.slot(&key) {
                Some(slot) => *slot = color,
                None => {
                    return Err(ThemeError::UnknownKey {
                        origin: origin.to_string(),
                        key,
                    });
                }
            }
        }
        Ok(())
    }

    /// Loads the theme `name`: a path to a file (if it contains a `/` or
    /// ends in `.toml`), else `NAME.toml` in the first of `search_dirs`
    /// that has it, else a built-in theme.
    pub fn load(name: &str, search_dirs: &[PathBuf]) -> Result<Theme, ThemeError> {
        if name.contains('/') || name.contains('\\') || name.ends_with(".toml") {
            return Theme::load_file(Path::new(name));
        }
        let mut searched = Vec::new();
        for dir in search_dirs {
            let path = dir.join(format!("{name}.toml"));
            if path.is_file() {
                return Theme::load_file(&path);
            }
            searched.push(path);
        }
        Theme::builtin(name).ok_or_else(|| ThemeError::NotFound {
            name: name.to_string(),
            searched,
        })
    }

    /// Loads a theme file.
    pub fn load_file(path: &Path) -> Result<Theme, ThemeError> {
        let text = std::fs::read_to_string(path).map_err(|source| ThemeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Theme::parse(&text, &path.display().to_string())
    }

    /// The style of the selected row: [`Theme::selection`] behind it and
    /// [`Theme::selection_modifiers`].
    pub fn selection_style(&self) -> Style {
        Style::new()
            .bg(self.selection)
            .add_modifier(self.selection_modifiers)
    }

    /// Columns the selection marker takes in front of every row of a
    /// table (0 without a marker): the columns have that much less room.
    pub fn marker_width(&self) -> u16 {
        crate::tui::text::width(&self.selection_marker) as u16
    }

    /// The color of an app status.
    pub fn status(&self, s: AppStatus) -> Color {
        match s {
            AppStatus::Healthy => self.healthy,
            AppStatus::Degraded => self.degraded,
            AppStatus::Down => self.down,
            AppStatus::Unknown => self.unknown,
        }
    }

    /// The color of a verdict.
    pub fn verdict(&self, v: Verdict) -> Color {
        match v {
            Verdict::Healthy => self.healthy,
            Verdict::Unhealthy => self.down,
            Verdict::Unknown => self.unknown,
        }
    }
}

/// A list of modifier names, e.g. `["reversed", "bold"]`; none for
/// anything else.
fn modifiers(value: &toml::Value) -> Option<Modifier> {
    let toml::Value::Array(names) = value else {
        return None;
    };
    names.iter().try_fold(Modifier::empty(), |all, name| {
        let name = name.as_str()?;
        let (_, m) = MODIFIERS
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))?;
        Some(all | *m)
    })
}

/// A marker: short text without control characters; none otherwise.
fn marker(value: &toml::Value) -> Option<String> {
    let text = value.as_str()?;
    let printable = !text.chars().any(char::is_control);
    (printable && crate::tui::text::width(text) <= MARKER_MAX).then(|| text.to_string())
}

impl fmt::Display for Theme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compiled-in text of a built-in theme.
    fn builtin_text(name: &str) -> &'static str {
        match name {
            "default" => DEFAULT_TOML,
            "dark" => DARK_TOML,
            "light" => LIGHT_TOML,
            "high-contrast" => HIGH_CONTRAST_TOML,
            "mono" => MONO_TOML,
            other => panic!("no text for {other}"),
        }
    }

    /// One of the 16 ANSI colors (or the terminal's own), which follow the
    /// terminal's palette.
    fn ansi(c: Color) -> bool {
        !matches!(c, Color::Rgb(..) | Color::Indexed(_))
    }

    #[test]
    fn builtins_parse() {
        for name in BUILTIN_THEMES {
            let parsed = Theme::parse(builtin_text(name), name).unwrap();
            let t = Theme::builtin(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(t.name, name);
            assert_eq!(t, parsed, "{name}");
        }
        // The file is the reference: the Rust defaults agree with it.
        let mut from_file = Theme::default();
        from_file.apply(DEFAULT_TOML, "default").unwrap();
        assert_eq!(from_file, Theme::default());
        let themes: Vec<Theme> = BUILTIN_THEMES.map(|n| Theme::builtin(n).unwrap()).into();
        for (i, a) in themes.iter().enumerate() {
            for b in &themes[i + 1..] {
                assert_ne!(a.colors(), b.colors(), "{a} and {b} look alike");
            }
        }
        assert_eq!(Theme::builtin("nope"), None);
    }

    #[test]
    fn default_uses_only_the_16_ansi_colors() {
        let d = Theme::default();
        for (key, c) in d.colors() {
            assert!(ansi(c), "default's {key} is {c:?}");
        }
        // Written as names in the file too, not as indexes or #rrggbb.
        let table: toml::Table = DEFAULT_TOML.parse().unwrap();
        for (key, value) in &table {
            if let Some(s) = value.as_str().filter(|_| key != "selection_marker") {
                assert!(s.chars().all(|c| c.is_ascii_lowercase()), "{key} = {s:?}");
            }
        }
        // The selection is reverse video, which reads on any palette.
        assert_eq!(d.selection, Color::Reset);
        assert!(d.selection_modifiers.contains(Modifier::REVERSED));
        assert_eq!(d.fail_bar, Color::Red);
    }

    #[test]
    fn mono_has_no_color_and_marks_the_selection() {
        let m = Theme::builtin("mono").unwrap();
        for (key, c) in m.colors() {
            assert_eq!(c, Color::Reset, "mono's {key}");
        }
        assert!(m.selection_modifiers.contains(Modifier::REVERSED));
        assert!(!m.selection_marker.is_empty());
        let s = m.selection_style();
        assert_eq!(s.bg, Some(Color::Reset));
        assert!(s.add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn high_contrast_and_dark_mark_their_selection() {
        let hc = Theme::builtin("high-contrast").unwrap();
        assert!(!hc.selection_marker.is_empty());
        assert!(hc.selection_modifiers.contains(Modifier::BOLD));
        let dark = Theme::builtin("dark").unwrap();
        assert!(matches!(dark.selection, Color::Rgb(..)));
        assert_eq!(dark.selection_modifiers, Modifier::empty());
        let light = Theme::builtin("light").unwrap();
        assert_eq!(light.selection_modifiers, Modifier::empty());
    }

    #[test]
    fn no_color_picks_mono_unless_the_flag_names_a_theme() {
        let set = Some(OsStr::new("1"));
        assert_eq!(Theme::pick(None, "light", None), "light");
        assert_eq!(Theme::pick(None, "light", set), "mono");
        assert_eq!(
            Theme::pick(None, "default", Some(OsStr::new("yes"))),
            "mono"
        );
        // Set but empty counts as not set (no-color.org).
        assert_eq!(Theme::pick(None, "light", Some(OsStr::new(""))), "light");
        assert_eq!(Theme::pick(Some("dark"), "light", set), "dark");
        assert_eq!(Theme::pick(Some("dark"), "light", None), "dark");
    }

    #[test]
    fn search_dirs_are_beside_the_config_then_the_users() {
        let dirs = Theme::search_dirs(Path::new("/etc/rollguard/fleet.toml"));
        assert_eq!(dirs[0], Path::new("/etc/rollguard/themes"));
        assert!(dirs[1].ends_with("rollguard/themes"), "{dirs:?}");
        assert_eq!(dirs.len(), 2);
    }

    #[test]
    fn partial_files_fall_back_to_default() {
        let t = Theme::parse("healthy = \"blue\"\n", "mine").unwrap();
        assert_eq!(t.healthy, Color::Blue);
        assert_eq!(t.fail_bar, Theme::default().fail_bar);
        assert_eq!(t.selection_modifiers, Modifier::REVERSED);
        assert_eq!(t.name, "mine");
    }

    #[test]
    fn selection_modifiers_and_marker() {
        let t = Theme::parse(
            "selection = \"#101010\"\nselection_modifiers = [\"Bold\", \"underlined\"]\nselection_marker = \"▶ \"\n",
            "mine",
        )
        .unwrap();
        assert_eq!(t.selection_modifiers, Modifier::BOLD | Modifier::UNDERLINED);
        assert_eq!(t.selection_marker, "▶ ");
        let s = t.selection_style();
        assert_eq!(s.bg, Some(Color::Rgb(0x10, 0x10, 0x10)));
        let none = Theme::parse("selection_modifiers = []\n", "mine").unwrap();
        assert_eq!(none.selection_modifiers, Modifier::empty());
        for bad in [
            "selection_modifiers = \"bold\"",
            "selection_modifiers = [\"blinking\"]",
            "selection_modifiers = [1]",
        ] {
            let msg = Theme::parse(bad, "mine.toml").unwrap_err().to_string();
            assert!(msg.contains("mine.toml"), "{msg}");
            assert!(msg.contains("is not a list of modifiers"), "{msg}");
            assert!(msg.contains("reversed"), "{msg}");
        }
        for bad in [
            "selection_marker = \"-----> \"",
            "selection_marker = \"\\u001b[7m\"",
            "selection_marker = 1",
        ] {
            let msg = Theme::parse(bad, "mine.toml").unwrap_err().to_string();
            assert!(msg.contains("selection_marker"), "{msg}");
            assert!(msg.contains("at most 4 columns"), "{msg}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Theme::parse("helthy = \"blue\"\n", "mine.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("unknown key `helthy`"), "{msg}");
        assert!(msg.contains("mine.toml"), "{msg}");
        assert!(msg.contains("healthy"), "{msg}");
        assert!(msg.contains("selection_marker"), "{msg}");
    }

    #[test]
    fn bad_colors_are_errors() {
        let msg = Theme::parse("down = \"reddish\"\n", "x")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`down = \"reddish\"` is not a color"), "{msg}");
        let msg = Theme::parse("down = 3\n", "x").unwrap_err().to_string();
        assert!(msg.contains("`down = 3`"), "{msg}");
        let msg = Theme::parse("down = \n", "x").unwrap_err().to_string();
        assert!(msg.contains("not valid TOML"), "{msg}");
    }

    #[test]
    fn load_searches_dirs_then_builtins() {
        let dir = std::env::temp_dir().join(format!("rollguard-theme-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mine.toml"), "ok_bar = \"#010203\"\n").unwrap();
        let t = Theme::load("mine", std::slice::from_ref(&dir)).unwrap();
        assert_eq!(t.ok_bar, Color::Rgb(1, 2, 3));
        let t = Theme::load(dir.join("mine.toml").to_str().unwrap(), &[]).unwrap();
        assert_eq!(t.ok_bar, Color::Rgb(1, 2, 3));
        for name in BUILTIN_THEMES {
            let t = Theme::load(name, std::slice::from_ref(&dir)).unwrap();
            assert_eq!(t.name, name);
        }
        // A file of a built-in's name in a folder is used instead of it.
        std::fs::write(dir.join("mono.toml"), "text = \"white\"\n").unwrap();
        let t = Theme::load("mono", std::slice::from_ref(&dir)).unwrap();
        assert_eq!(t.text, Color::White);
        let msg = Theme::load("nope", std::slice::from_ref(&dir))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("theme `nope` not found"), "{msg}");
        assert!(msg.contains("nope.toml"), "{msg}");
        assert!(msg.contains("high-contrast, mono"), "{msg}");
        let msg = Theme::load("/nonexistent/x.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("cannot read theme file /nonexistent/x.toml"),
            "{msg}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
