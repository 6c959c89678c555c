//! Judging a condition ([`Condition::eval`], [`Condition::eval_on`]):
//! each side resolved against a response or a query's values, compared,
//! and on failure a message that says what was measured.

use std::cmp::Ordering;
use std::fmt;

use super::{Arith, Condition, Expr, Op, Operand, PathSeg, Placeholder, Response, Subject};

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
pub(super) const EXCERPT_CHARS: usize = 40;

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
pub(super) fn excerpt(s: &str) -> String {
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
