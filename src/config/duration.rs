//! Durations as people write them in the config: `250ms`, `10s`, `5m`,
//! `1h30m`, `30d`.

use std::time::Duration;

/// Parses `"250ms"`, `"10s"`, `"5m"`, `"2h"`, `"30d"` and sums like `"1m30s"`.
/// A value or sum too large for a [`Duration`] is an error, never a panic;
/// the config's keys have far smaller bounds of their own.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration; write one like \"250ms\", \"10s\" or \"5m\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "`{s}` is not a duration; write one like \"250ms\", \"10s\" or \"5m\""
            ));
        }
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{}` is not a number", &rest[..digits]))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            "d" => value * 86_400.0,
            "" => {
                return Err(format!(
                    "`{s}` has no unit; add one: ms, s, m, h or d (e.g. \"{s}s\")"
                ));
            }
            other => {
                return Err(format!(
                    "unknown unit `{other}` in `{s}`; use ms, s, m, h or d"
                ));
            }
        };
        let out_of_range = || format!("`{s}` is out of range");
        let part = Duration::try_from_secs_f64(secs).map_err(|_| out_of_range())?;
        total = total.checked_add(part).ok_or_else(out_of_range)?;
    }
    Ok(total)
}

/// Formats a duration the way it would be written in the config.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms.is_multiple_of(86_400_000) {
        format!("{}d", ms / 86_400_000)
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("10y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        for huge in [
            "10000000000000000000s10000000000000000000s",
            "18446744073709551615s1s",
        ] {
            assert!(parse_duration(huge).unwrap_err().contains("out of range"));
        }
        let long = format!("1{}d", "0".repeat(400));
        assert!(parse_duration(&long).unwrap_err().contains("out of range"));
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(86_400 * 30)), "30d");
    }
}
