//! Colors of the console, read from small TOML files.
//!
//! Two themes are compiled in (`default` for dark terminals, `light`), from
//! the files in `themes/` at the top of the repository, which double as the
//! documentation of the format. A theme file may set any subset of the keys;
//! the rest come from `default`. Unknown keys and unreadable colors are
//! errors that name the file, the key and what is accepted.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::Color;

use crate::model::{AppStatus, Verdict};

const DEFAULT_TOML: &str = include_str!("../../themes/default.toml");
const LIGHT_TOML: &str = include_str!("../../themes/light.toml");

/// Names of the compiled-in themes.
pub const BUILTIN_THEMES: [&str; 2] = ["default", "light"];

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
        /// The console's colors.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Theme {
            /// Where it came from: a built-in name or a file path.
            pub name: String,
            $($(#[$doc])* pub $key: Color,)*
        }

        impl Theme {
            /// Every key a theme file may set.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($key)),*];

            fn slot(&mut self, key: &str) -> Option<&mut Color> {
                match key {
                    $(stringify!($key) => Some(&mut self.$key),)*
                    _ => None,
                }
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
    /// Background of the selected row.
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
            selection: Color::DarkGray,
            border: Color::DarkGray,
            text: Color::Reset,
            dim: Color::DarkGray,
            rollout: Color::Cyan,
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
            "light" => LIGHT_TOML,
            _ => return None,
        };
        Theme::parse(text, name).ok()
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

impl fmt::Display for Theme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        for name in BUILTIN_THEMES {
            Theme::parse(
                match name {
                    "default" => DEFAULT_TOML,
                    _ => LIGHT_TOML,
                },
                name,
            )
            .unwrap();
            assert!(Theme::builtin(name).is_some(), "{name}");
        }
        let d = Theme::default();
        assert_eq!(d.fail_bar, Color::Red);
        assert_eq!(d.selection, Color::Rgb(0x30, 0x38, 0x48));
        assert_ne!(Theme::builtin("light").unwrap(), d);
    }

    #[test]
    fn partial_files_fall_back_to_default() {
        let t = Theme::parse("healthy = \"blue\"\n", "mine").unwrap();
        assert_eq!(t.healthy, Color::Blue);
        assert_eq!(t.fail_bar, Theme::default().fail_bar);
        assert_eq!(t.name, "mine");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Theme::parse("helthy = \"blue\"\n", "mine.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("unknown key `helthy`"), "{msg}");
        assert!(msg.contains("mine.toml"), "{msg}");
        assert!(msg.contains("healthy"), "{msg}");
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
        assert_eq!(
            Theme::load("light", std::slice::from_ref(&dir))
                .unwrap()
                .name,
            "light"
        );
        let msg = Theme::load("nope", std::slice::from_ref(&dir))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("theme `nope` not found"), "{msg}");
        assert!(msg.contains("nope.toml"), "{msg}");
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
