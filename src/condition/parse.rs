//! Reading a condition ([`Condition::parse`]): a lexer and a
//! recursive-descent parser over its characters, each error with its
//! column.

use super::{Arith, Condition, Expr, Op, Operand, ParseError, PathSeg, Placeholder};

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
}
