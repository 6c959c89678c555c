//! The condition language of probes, in the style of Gatus:
//! `[BODY].status == "healthy"`, `[STATUS] < 300`, `[RESPONSE_TIME] <= 500`
//! for HTTP; `[VALUE] < 0.05` for Prometheus queries. Each side is a
//! value or arithmetic on numbers (`+ - * /`, parentheses). The language
//! also reads `[CANARY]` and `[BASELINE]` (a query's values over a
//! rollout's new and old instances), which no probe offers yet: a config
//! that names them is refused at load.
//!
//! A condition is parsed once when the config loads ([`Condition::parse`],
//! whose errors carry the column inside the string) and evaluated against
//! every response ([`Condition::eval`]).

use std::fmt;

mod eval;
mod parse;
mod syntax;

pub(crate) use eval::shown;
pub use syntax::{Arith, Expr, Op, Operand, PathSeg, Placeholder};

/// A parsed condition: `left op right`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// The text as written, for messages.
    pub source: String,
    /// Left side.
    pub left: Expr,
    /// Operator.
    pub op: Op,
    /// Right side.
    pub right: Expr,
}

/// Why a condition does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based column (in characters) inside the condition string.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// What an HTTP response offers to conditions.
pub struct Response<'a> {
    /// HTTP status.
    pub status: u16,
    /// Milliseconds.
    pub response_time_ms: f64,
    /// The body, capped.
    pub body: &'a str,
}

/// What a Prometheus query offers to conditions: `None` where the query
/// gave no value.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reading {
    /// `[VALUE]`.
    pub value: Option<f64>,
    /// `[CANARY]`.
    pub canary: Option<f64>,
    /// `[BASELINE]`.
    pub baseline: Option<f64>,
    /// `[RESPONSE_TIME]`: milliseconds the query took.
    pub response_time_ms: f64,
}

/// What a condition is evaluated against.
pub enum Subject<'a> {
    /// An HTTP response and its body parsed as JSON (`None`: it is not).
    Http(&'a Response<'a>, Option<&'a serde_json::Value>),
    /// A Prometheus query's values.
    Metric(&'a Reading),
}

impl Condition {
    /// The placeholders it reads, left to right.
    pub fn placeholders(&self) -> Vec<&Placeholder> {
        let mut out = Vec::new();
        self.left.placeholders(&mut out);
        self.right.placeholders(&mut out);
        out
    }

    /// Whether this condition needs the body parsed as JSON.
    pub fn needs_json(&self) -> bool {
        self.placeholders()
            .iter()
            .any(|p| matches!(p, Placeholder::Body(path) if !path.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::eval::{EXCERPT_CHARS, excerpt};
    use super::*;

    #[test]
    fn numbers_are_shown_to_six_significant_digits_and_never_lose_their_integer_part() {
        assert_eq!(shown(0.219900732687), "0.219901");
        assert_eq!(shown(0.1 + 0.2), "0.3");
        assert_eq!(shown(12345678.0), "12345678");
        assert_eq!(shown(1234.56789), "1234.57");
        assert_eq!(shown(-0.000012345678), "-0.0000123457");
    }

    fn check(cond: &str, status: u16, ms: f64, body: &str) -> Result<(), String> {
        let c = Condition::parse(cond).unwrap();
        let json = serde_json::from_str(body).ok();
        c.eval(
            &Response {
                status,
                response_time_ms: ms,
                body,
            },
            json.as_ref(),
        )
    }

    #[test]
    fn status_and_time() {
        assert!(check("[STATUS] == 200", 200, 1.0, "").is_ok());
        assert!(check("[STATUS] < 300", 503, 1.0, "").is_err());
        assert!(check("[RESPONSE_TIME] < 500", 200, 499.0, "").is_ok());
        assert!(check("[RESPONSE_TIME] < 500", 200, 500.0, "").is_err());
        assert!(check("500 > [RESPONSE_TIME]", 200, 20.0, "").is_ok());
    }

    #[test]
    fn json_paths() {
        let body = r#"{"status":"healthy","error_rate":2.5,"items":[{"ok":true}],"n":"7"}"#;
        assert!(check(r#"[BODY].status == "healthy""#, 200, 1.0, body).is_ok());
        assert!(check("[BODY].error_rate < 5", 200, 1.0, body).is_ok());
        assert!(check("[BODY].error_rate >= 5", 200, 1.0, body).is_err());
        assert!(check("[BODY].items[0].ok == true", 200, 1.0, body).is_ok());
        assert!(check("[BODY].n > 6", 200, 1.0, body).is_ok());
        let e = check("[BODY].missing == 1", 200, 1.0, body).unwrap_err();
        assert!(e.contains("missing"), "{e}");
        assert!(check("[BODY].status != \"down\"", 200, 1.0, body).is_ok());
        assert!(check("[BODY] == \"pong\"", 200, 1.0, "pong").is_ok());
        let e = check("[BODY].a == 1", 200, 1.0, "not json").unwrap_err();
        assert_eq!(
            e,
            r#"[BODY].a == 1 failed: the body is not JSON ("not json")"#
        );
        let e = check("[BODY].a != 1", 200, 1.0, " \r\n").unwrap_err();
        assert_eq!(e, "[BODY].a != 1 failed: the body is empty, not JSON");
    }

    #[test]
    fn failure_message_has_measured_value() {
        let e = check("[BODY].error_rate < 5", 200, 1.0, r#"{"error_rate": 7.5}"#).unwrap_err();
        assert_eq!(e, "[BODY].error_rate < 5 failed: 7.5 < 5");
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("  a\r\n\tb\x1b[0m\x07c  "), "a b [0m c");
        let long = "x".repeat(EXCERPT_CHARS + 5);
        assert_eq!(excerpt(&long), format!("{}…", "x".repeat(EXCERPT_CHARS)));
        assert_eq!(
            excerpt(&"é".repeat(EXCERPT_CHARS)),
            "é".repeat(EXCERPT_CHARS)
        );
        let e = check("[BODY] == \"pong\"", 200, 1.0, "po\x1bng\n").unwrap_err();
        assert_eq!(e, "[BODY] == \"pong\" failed: \"po ng\" == \"pong\"");
    }

    #[test]
    fn parse_errors_have_columns() {
        let e = Condition::parse("[BODY].status = \"x\"").unwrap_err();
        assert_eq!(e.column, 15);
        let e = Condition::parse("[STATUSS] == 200").unwrap_err();
        assert_eq!(e.column, 1);
        assert!(e.message.contains("unknown placeholder"));
        let e = Condition::parse("[BODY].status == healthy").unwrap_err();
        assert_eq!(e.column, 18);
        assert!(e.message.contains("double quotes"));
        let e = Condition::parse("[STATUS] == 200 extra").unwrap_err();
        assert_eq!(e.column, 17);
        let e = Condition::parse("[BODY].items[x] == 1").unwrap_err();
        assert_eq!(e.column, 14);
        let e = Condition::parse("[STATUS] == \"20").unwrap_err();
        assert_eq!(e.column, 13);
        assert!(Condition::parse("1 == 1").is_err());
        assert!(Condition::parse("").is_err());
    }

    fn metric(
        cond: &str,
        value: Option<f64>,
        canary: Option<f64>,
        baseline: Option<f64>,
    ) -> Result<(), String> {
        let c = Condition::parse(cond).unwrap();
        c.eval_on(&Subject::Metric(&Reading {
            value,
            canary,
            baseline,
            response_time_ms: 3.0,
        }))
    }

    #[test]
    fn arithmetic_follows_precedence_and_parentheses() {
        assert!(metric("[VALUE] == 1 + 2 * 3", Some(7.0), None, None).is_ok());
        assert!(metric("[VALUE] == (1 + 2) * 3", Some(9.0), None, None).is_ok());
        assert!(metric("[VALUE] == 10 - 4 - 3", Some(3.0), None, None).is_ok());
        assert!(metric("[VALUE] == 8 / 4 / 2", Some(1.0), None, None).is_ok());
        assert!(metric("[VALUE]*2 < 1", Some(0.4), None, None).is_ok());
        assert!(metric("[VALUE] - 1 > -0.5", Some(0.6), None, None).is_ok());
    }

    #[test]
    fn a_canary_is_compared_with_its_baseline_and_the_message_shows_both() {
        let c = "[CANARY] <= [BASELINE] * 1.2 + 0.01";
        assert!(metric(c, None, Some(0.05), Some(0.05)).is_ok());
        let e = metric(c, None, Some(0.31), Some(0.05)).unwrap_err();
        assert_eq!(
            e,
            "[CANARY] <= [BASELINE] * 1.2 + 0.01 failed: 0.31 <= 0.07 ([CANARY] = 0.31, [BASELINE] = 0.05)"
        );
        // No baseline value: the comparison cannot hold.
        let e = metric(c, None, Some(0.01), None).unwrap_err();
        assert!(e.contains("[BASELINE] = missing"), "{e}");
        // Division by zero is no number.
        assert!(metric("[VALUE] / 0 < 1", Some(1.0), None, None).is_err());
    }

    #[test]
    fn metric_placeholders_are_missing_from_an_http_response_and_back() {
        assert!(check("[VALUE] < 1", 200, 1.0, "").is_err());
        assert!(metric("[STATUS] == 200", Some(1.0), None, None).is_err());
        assert!(metric("[RESPONSE_TIME] < 5", Some(1.0), None, None).is_ok());
    }

    #[test]
    fn arithmetic_on_text_is_refused_at_parse() {
        let e = Condition::parse("[BODY].a == \"x\" + 1").unwrap_err();
        assert!(e.message.contains("only numbers"), "{e}");
        let e = Condition::parse("[VALUE] < (1 + 2").unwrap_err();
        assert_eq!(e.column, 11);
        assert!(Condition::parse("1 + 1 == 2").is_err());
        let c = Condition::parse("[CANARY] <= [BASELINE] * 2").unwrap();
        assert_eq!(
            c.placeholders(),
            vec![&Placeholder::Canary, &Placeholder::Baseline]
        );
    }
}
