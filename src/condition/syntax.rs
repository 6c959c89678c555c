//! What a condition is made of once parsed: placeholders, operands,
//! arithmetic and the comparison operator.

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
    pub(super) fn placeholders<'a>(&'a self, out: &mut Vec<&'a Placeholder>) {
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
    pub(super) fn as_str(self) -> &'static str {
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
