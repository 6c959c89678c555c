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

use std::cmp::Ordering;
use std::fmt;

/// A value that a condition reads from the response.
#[derive(Clone, Debug, PartialEq)]
pub enum Placeholder {
    /// `[STATUS]`: the HTTP status code.
    Status,
    /// `[RESPONSE_TIME]`: milliseconds from request to full body.
    ResponseTime,
    /// `[BODY]` or `[BODY].a.b[0]`: the body, or a value inside its JSON.
    Body(Vec<PathSeg>),
    /// `[VALUE]`: a Prometheus query's value for the instance.
    Value,
    /// `[CANARY]`: the query's value over the new release's instances.
    Canary,
    /// `[BASELINE]`: the query's value over the old release's instances.
    Baseline,
}

impl Placeholder {
    /// How it is written.
    pub fn name(&self) -> &'static str {
        match self {
            Placeholder::Status => "[STATUS]",
            Placeholder::ResponseTime => "[RESPONSE_TIME]",
            Placeholder::Body(_) => "[BODY]",
            Placeholder::Value => "[VALUE]",
            Placeholder::Canary => "[CANARY]",
            Placeholder::Baseline => "[BASELINE]",
        }
    }
}

/// One step of a JSON path.
#[derive(Clone, Debug, PartialEq)]
pub enum PathSeg {
    /// `.name`
    Key(String),
    /// `[3]`
    Index(usize),
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A value from the response.
    Placeholder(Placeholder),
    /// A number literal.
    Number(f64),
    /// A double-quoted string literal.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
}

/// Arithmetic between two numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// One side of a comparison: a value, or arithmetic on numbers.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A placeholder or a literal.
    Operand(Operand),
    /// `left op right`.
    Arith(Box<Expr>, Arith, Box<Expr>),
}

impl Expr {
    fn placeholders<'a>(&'a self, out: &mut Vec<&'a Placeholder>) {
        match self {
            Expr::Operand(Operand::Placeholder(p)) => out.push(p),
            Expr::Operand(_) => {}
            Expr::Arith(l, _, r) => {
                l.placeholders(out);
                r.placeholders(out);
            }
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

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

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    _src: &'a str,
}

impl<'a> Lexer<'a> {
    fn err<T>(&self, at: usize, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            column: at + 1,
            message: message.into(),
        })
    }

    fn skip_ws(&mut self) {
        while self.pos < self.chars.len() && self.chars[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            None => self.err(
                start,
                "expected a value such as [STATUS], [BODY].field, a number or \"text\"",
            ),
            Some('[') => self.placeholder().map(Operand::Placeholder),
            Some('"') => self.string().map(Operand::Str),
            Some(c) if c.is_ascii_digit() || c == '-' || c == '.' => self.number(),
            Some(c) if c.is_alphabetic() => {
                let word = self.word();
                match word.as_str() {
                    "true" => Ok(Operand::Bool(true)),
                    "false" => Ok(Operand::Bool(false)),
                    _ => self.err(
                        start,
                        format!(
                            "unexpected word `{word}`; write text in double quotes: \"{word}\""
                        ),
                    ),
                }
            }
            Some(c) => self.err(start, format!("unexpected `{c}`")),
        }
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn placeholder(&mut self) -> Result<Placeholder, ParseError> {
        let start = self.pos;
        self.pos += 1; // '['
        let name = self.word();
        if self.peek() != Some(']') {
            return self.err(self.pos, "expected `]` to close the placeholder");
        }
        self.pos += 1;
        match name.as_str() {
            "STATUS" => Ok(Placeholder::Status),
            "RESPONSE_TIME" => Ok(Placeholder::ResponseTime),
            "VALUE" => Ok(Placeholder::Value),
            "CANARY" => Ok(Placeholder::Canary),
            "BASELINE" => Ok(Placeholder::Baseline),
            "BODY" => {
                let mut path = Vec::new();
                loop {
                    match self.peek() {
                        Some('.') => {
                            self.pos += 1;
                            let at = self.pos;
                            let key = self.word();
                            if key.is_empty() {
                                return self.err(at, "expected a field name after `.`");
                            }
                            path.push(PathSeg::Key(key));
                        }
                        Some('[') => {
                            self.pos += 1;
                            let at = self.pos;
                            let digits: String = std::iter::from_fn(|| {
                                let c = self.peek().filter(char::is_ascii_digit)?;
                                self.pos += 1;
                                Some(c)
                            })
                            .collect();
                            let Ok(i) = digits.parse::<usize>() else {
                                return self.err(at, "expected an array index such as [0]");
                            };
                            if self.peek() != Some(']') {
                                return self.err(self.pos, "expected `]` after the index");
                            }
                            self.pos += 1;
                            path.push(PathSeg::Index(i));
                        }
                        _ => break,
                    }
                }
                Ok(Placeholder::Body(path))
            }
            _ => self.err(
                start,
                format!(
                    "unknown placeholder [{name}]; known: [STATUS], [RESPONSE_TIME], [BODY], [VALUE], [CANARY], [BASELINE]"
                ),
            ),
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return self.err(start, "this string has no closing `\"`"),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') if matches!(self.chars.get(self.pos + 1), Some('"' | '\\')) => {
                    out.push(self.chars[self.pos + 1]);
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn number(&mut self) -> Result<Operand, ParseError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || c == '.' || c == '_')
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos]
            .iter()
            .filter(|c| **c != '_')
            .collect();
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Operand::Number(n)),
            _ => self.err(start, format!("`{text}` is not a number")),
        }
    }

    /// `term (('+' | '-') term)*`
    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.term()?;
        loop {
            self.skip_ws();
            let op = match self.peek() {
                Some('+') => Arith::Add,
                Some('-') => Arith::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.term()?;
            left = self.arith(left, op, right)?;
        }
    }

    /// `factor (('*' | '/') factor)*`
    fn term(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.factor()?;
        loop {
            self.skip_ws();
            let op = match self.peek() {
                Some('*') => Arith::Mul,
                Some('/') => Arith::Div,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.factor()?;
            left = self.arith(left, op, right)?;
        }
    }

    /// A value or `( expr )`.
    fn factor(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        if self.peek() != Some('(') {
            return self.operand().map(Expr::Operand);
        }
        let open = self.pos;
        self.pos += 1;
        let e = self.expr()?;
        self.skip_ws();
        if self.peek() != Some(')') {
            return self.err(open, "this `(` has no closing `)`");
        }
        self.pos += 1;
        Ok(e)
    }

    /// `left op right`, refused unless both sides can be numbers.
    fn arith(&self, left: Expr, op: Arith, right: Expr) -> Result<Expr, ParseError> {
        for side in [&left, &right] {
            if let Expr::Operand(Operand::Str(_) | Operand::Bool(_)) = side {
                return self.err(
                    self.pos.saturating_sub(1),
                    "only numbers and placeholders can be added, subtracted, multiplied or divided",
                );
            }
        }
        Ok(Expr::Arith(Box::new(left), op, Box::new(right)))
    }

    fn op(&mut self) -> Result<Op, ParseError> {
        self.skip_ws();
        let at = self.pos;
        let two: String = self.chars[self.pos..].iter().take(2).collect();
        let (op, len) = match two.as_str() {
            "==" => (Op::Eq, 2),
            "!=" => (Op::Ne, 2),
            "<=" => (Op::Le, 2),
            ">=" => (Op::Ge, 2),
            _ if two.starts_with('<') => (Op::Lt, 1),
            _ if two.starts_with('>') => (Op::Gt, 1),
            _ if two.starts_with('=') => {
                return self.err(at, "use `==` to compare");
            }
            _ => {
                return self.err(at, "expected an operator: == != < <= > >=");
            }
        };
        self.pos += len;
        Ok(op)
    }
}

/// A value as seen while evaluating.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Number(f64),
    Str(String),
    Bool(bool),
    Null,
    Missing,
    /// A JSON path was asked of a body that does not parse as JSON; holds
    /// the body.
    NotJson(String),
}

/// Longest excerpt of a string or body shown in a message, in characters.
const EXCERPT_CHARS: usize = 40;

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => f.write_str(&shown(*n)),
            Value::Str(s) => write!(f, "\"{}\"", excerpt(s)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => f.write_str("null"),
            Value::Missing => f.write_str("missing"),
            Value::NotJson(body) if body.trim().is_empty() => {
                f.write_str("the body is empty, not JSON")
            }
            Value::NotJson(body) => write!(f, "the body is not JSON (\"{}\")", excerpt(body)),
        }
    }
}

/// `n` to 6 significant digits, so arithmetic reads as written (`0.07`,
/// not `0.06999999999999999`) and a measured ratio reads at a glance
/// (`0.219901`, not `0.219900732687`); never rounded left of the point
/// (`12345678` stays whole).
pub(crate) fn shown(n: f64) -> String {
    if n == 0.0 || !n.is_finite() {
        return format!("{n}");
    }
    let digits = (6 - n.abs().log10().ceil() as i32).max(0);
    if !(-15..=15).contains(&digits) {
        return format!("{n}");
    }
    let f = 10f64.powi(digits);
    format!("{}", (n * f).round() / f)
}

/// `s` fit for a one-line message: each run of whitespace and control
/// characters becomes one space, and it is cut to [`EXCERPT_CHARS`]
/// characters with `…`.
fn excerpt(s: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut gap = false;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        gap = false;
        if count >= EXCERPT_CHARS {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

impl Condition {
    /// Parses `src`. Errors carry the 1-based column inside `src`.
    pub fn parse(src: &str) -> Result<Condition, ParseError> {
        let mut lx = Lexer {
            chars: src.chars().collect(),
            pos: 0,
            _src: src,
        };
        let left = lx.expr()?;
        let op = lx.op()?;
        let right = lx.expr()?;
        lx.skip_ws();
        if lx.pos < lx.chars.len() {
            return lx.err(lx.pos, "unexpected text after the condition");
        }
        let c = Condition {
            source: src.to_string(),
            left,
            op,
            right,
        };
        if c.placeholders().is_empty() {
            return lx.err(
                0,
                "a condition must read a placeholder: [STATUS], [RESPONSE_TIME], [BODY], [VALUE], [CANARY] or [BASELINE]",
            );
        }
        Ok(c)
    }

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

    /// Evaluates against an HTTP response. `json` is the body parsed once
    /// by the caller (`None` when it is not JSON). `Err` says what was
    /// measured.
    pub fn eval(
        &self,
        resp: &Response<'_>,
        json: Option<&serde_json::Value>,
    ) -> Result<(), String> {
        self.eval_on(&Subject::Http(resp, json))
    }

    /// Evaluates against `subject`. `Err` says what was measured: both
    /// sides' values, and each placeholder's when a side is arithmetic.
    pub fn eval_on(&self, subject: &Subject<'_>) -> Result<(), String> {
        let l = evaluate(&self.left, subject);
        let r = evaluate(&self.right, subject);
        if let Some(not_json) = [&l, &r]
            .into_iter()
            .find(|v| matches!(v, Value::NotJson(_)))
        {
            return Err(format!("{} failed: {not_json}", self.source));
        }
        if compare(&l, self.op, &r) {
            return Ok(());
        }
        let mut msg = format!("{} failed: {} {} {}", self.source, l, self.op.as_str(), r);
        let arithmetic = [&self.left, &self.right]
            .iter()
            .any(|e| matches!(e, Expr::Arith(..)));
        if arithmetic {
            let mut seen = Vec::new();
            for p in self.placeholders() {
                if !seen.contains(&p) {
                    seen.push(p);
                }
            }
            let values: Vec<String> = seen
                .iter()
                .map(|p| format!("{} = {}", p.name(), resolve_placeholder(p, subject)))
                .collect();
            msg.push_str(&format!(" ({})", values.join(", ")));
        }
        Err(msg)
    }
}

fn evaluate(e: &Expr, subject: &Subject<'_>) -> Value {
    match e {
        Expr::Operand(o) => resolve(o, subject),
        Expr::Arith(l, op, r) => {
            let (l, r) = (evaluate(l, subject), evaluate(r, subject));
            if let Some(absent) = [&l, &r]
                .into_iter()
                .find(|v| matches!(v, Value::Missing | Value::NotJson(_)))
            {
                return absent.clone();
            }
            let (Some(a), Some(b)) = (as_number(&l), as_number(&r)) else {
                return Value::Missing;
            };
            let n = match op {
                Arith::Add => a + b,
                Arith::Sub => a - b,
                Arith::Mul => a * b,
                Arith::Div => a / b,
            };
            if n.is_finite() {
                Value::Number(n)
            } else {
                Value::Missing
            }
        }
    }
}

fn resolve(o: &Operand, subject: &Subject<'_>) -> Value {
    match o {
        Operand::Number(n) => Value::Number(*n),
        Operand::Str(s) => Value::Str(s.clone()),
        Operand::Bool(b) => Value::Bool(*b),
        Operand::Placeholder(p) => resolve_placeholder(p, subject),
    }
}

fn resolve_placeholder(p: &Placeholder, subject: &Subject<'_>) -> Value {
    let number = |v: Option<f64>| v.map_or(Value::Missing, Value::Number);
    match (p, subject) {
        (Placeholder::Value, Subject::Metric(m)) => number(m.value),
        (Placeholder::Canary, Subject::Metric(m)) => number(m.canary),
        (Placeholder::Baseline, Subject::Metric(m)) => number(m.baseline),
        (Placeholder::ResponseTime, Subject::Metric(m)) => Value::Number(m.response_time_ms),
        (_, Subject::Metric(_)) => Value::Missing,
        (p, Subject::Http(resp, json)) => resolve_http(p, resp, *json),
    }
}

fn resolve_http(p: &Placeholder, resp: &Response<'_>, json: Option<&serde_json::Value>) -> Value {
    match p {
        Placeholder::Value | Placeholder::Canary | Placeholder::Baseline => Value::Missing,
        Placeholder::Status => Value::Number(f64::from(resp.status)),
        Placeholder::ResponseTime => Value::Number(resp.response_time_ms),
        Placeholder::Body(path) if path.is_empty() => Value::Str(resp.body.to_string()),
        Placeholder::Body(path) => {
            let Some(mut v) = json else {
                return Value::NotJson(resp.body.to_string());
            };
            for seg in path {
                let next = match seg {
                    PathSeg::Key(k) => v.get(k.as_str()),
                    PathSeg::Index(i) => v.get(*i),
                };
                match next {
                    Some(n) => v = n,
                    None => return Value::Missing,
                }
            }
            match v {
                serde_json::Value::Null => Value::Null,
                serde_json::Value::Bool(b) => Value::Bool(*b),
                serde_json::Value::Number(n) => n.as_f64().map_or(Value::Missing, Value::Number),
                serde_json::Value::String(s) => Value::Str(s.clone()),
                other => Value::Str(other.to_string()),
            }
        }
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn compare(l: &Value, op: Op, r: &Value) -> bool {
    let absent = |v: &Value| matches!(v, Value::Missing | Value::NotJson(_));
    if absent(l) || absent(r) {
        return false;
    }
    let ord = match (as_number(l), as_number(r)) {
        (Some(a), Some(b)) if matches!(l, Value::Number(_)) || matches!(r, Value::Number(_)) => {
            a.partial_cmp(&b)
        }
        _ => match (l, r) {
            (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) if a == b => Some(Ordering::Equal),
            (Value::Null, Value::Null) => Some(Ordering::Equal),
            _ => None,
        },
    };
    match (op, ord) {
        (Op::Eq, o) => o == Some(Ordering::Equal),
        (Op::Ne, o) => o != Some(Ordering::Equal),
        (_, None) => false,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
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
