//! A SOQL subset: `SELECT fields FROM object [WHERE condition] [ORDER BY field [ASC|DESC]
//! [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]`.
//!
//! Fields may be relationship paths (`EventRelayConfig.DeveloperName`) or `FIELDS(ALL)`; conditions
//! combine `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`, `LIKE`, `IN (...)` and `NOT IN (...)` with `AND`,
//! `OR`, `NOT` and parentheses; values are strings, numbers, `true`, `false` and `null`. Keywords and
//! field names are case-insensitive, as in Salesforce.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub fields: Vec<String>,
    pub all_fields: bool,
    pub object: String,
    pub filter: Option<Cond>,
    pub order: Vec<(String, bool, bool)>,
    pub limit: Option<usize>,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Cmp(String, String, Value),
    In(String, bool, Vec<Value>),
    /// Two or more conditions, all true. n-ary, so that a long chain is not a deep tree.
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

/// The longest query Salesforce takes: "SOQL statements can't exceed 100,000 characters" (SOQL and
/// SOSL Limits, Developer Guide). Longer is `MALFORMED_QUERY` before anything is parsed.
pub const MAX_QUERY_CHARS: usize = 100_000;

/// How deeply parentheses and NOT may nest in a WHERE clause. Salesforce documents no number; the
/// parser is recursive, so a bound keeps a hostile query from exhausting the stack.
pub const MAX_NESTING: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(f64),
    Sym(String),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut v = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string literal".into()),
                    Some('\\') => {
                        let e = chars.get(i + 1).ok_or("unterminated string literal")?;
                        v.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            other => *other,
                        });
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        v.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(v));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Tok::Num(
                text.parse().map_err(|_| format!("bad number {text}"))?,
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["!=", "<>", "<=", ">="].contains(&two.as_str()) {
                out.push(Tok::Sym(two));
                i += 2;
            } else if "=<>(),".contains(c) {
                out.push(Tok::Sym(c.to_string()));
                i += 1;
            } else {
                return Err(format!("unexpected character '{c}'"));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn kw(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }

    fn eat_kw(&mut self, k: &str) -> bool {
        let hit = self.kw(k);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn sym(&mut self, s: &str) -> bool {
        let hit = matches!(self.peek(), Some(Tok::Sym(x)) if x == s);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn word(&mut self, what: &str) -> Result<String, String> {
        match self.toks.get(self.pos) {
            Some(Tok::Word(w)) => {
                self.pos += 1;
                Ok(w.clone())
            }
            other => Err(format!("expected {what}, found {}", describe(other))),
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match t {
            Some(Tok::Str(s)) => Ok(Value::String(s)),
            Some(Tok::Num(n)) => Ok(serde_json::Number::from_f64(n)
                .map(Value::Number)
                .unwrap_or(Value::Null)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Value::Null),
            other => Err(format!(
                "expected a value, found {}",
                describe(other.as_ref())
            )),
        }
    }

    fn cond(&mut self) -> Result<Cond, String> {
        let mut terms = vec![self.conj()?];
        while self.eat_kw("OR") {
            terms.push(self.conj()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Cond::Or(terms)
        })
    }

    fn conj(&mut self) -> Result<Cond, String> {
        let mut terms = vec![self.atom()?];
        while self.eat_kw("AND") {
            terms.push(self.atom()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Cond::And(terms)
        })
    }

    /// One level deeper (a parenthesis or a NOT), refused past [`MAX_NESTING`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "the WHERE clause nests parentheses and NOT more than {MAX_NESTING} deep"
            ));
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn atom(&mut self) -> Result<Cond, String> {
        if self.eat_kw("NOT") {
            return self.nested(|p| Ok(Cond::Not(Box::new(p.atom()?))));
        }
        if self.sym("(") {
            let c = self.nested(Self::cond)?;
            if !self.sym(")") {
                return Err("expected ')'".into());
            }
            return Ok(c);
        }
        let field = self.word("a field")?;
        let negated = self.eat_kw("NOT");
        if self.eat_kw("IN") {
            if !self.sym("(") {
                return Err("expected '(' after IN".into());
            }
            let mut values = vec![self.value()?];
            while self.sym(",") {
                values.push(self.value()?);
            }
            if !self.sym(")") {
                return Err("expected ')' after the IN list".into());
            }
            return Ok(Cond::In(field, negated, values));
        }
        if negated {
            return Err("expected IN after NOT".into());
        }
        let op = match self.toks.get(self.pos) {
            Some(Tok::Sym(s)) if ["=", "!=", "<>", "<", "<=", ">", ">="].contains(&s.as_str()) => {
                s.clone()
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("LIKE") => "LIKE".into(),
            other => {
                return Err(format!(
                    "expected an operator after {field}, found {}",
                    describe(other)
                ));
            }
        };
        self.pos += 1;
        Ok(Cond::Cmp(field, op, self.value()?))
    }
}

fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "the end of the query".into(),
        Some(Tok::Word(w)) => format!("'{w}'"),
        Some(Tok::Str(s)) => format!("'{s}'"),
        Some(Tok::Num(n)) => n.to_string(),
        Some(Tok::Sym(s)) => format!("'{s}'"),
    }
}

/// Parses a query; the error is a `MALFORMED_QUERY` message.
pub fn parse(q: &str) -> Result<Query, String> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(format!(
            "the query is {} characters long; SOQL statements can't exceed {MAX_QUERY_CHARS}",
            q.chars().count()
        ));
    }
    let mut p = Parser {
        toks: lex(q)?,
        pos: 0,
        depth: 0,
    };
    if !p.eat_kw("SELECT") {
        return Err("unexpected token: expected SELECT".into());
    }
    let mut fields = Vec::new();
    let mut all_fields = false;
    loop {
        if p.kw("FIELDS") {
            p.pos += 1;
            if !(p.sym("(") && (p.eat_kw("ALL") || p.eat_kw("STANDARD")) && p.sym(")")) {
                return Err("expected FIELDS(ALL) or FIELDS(STANDARD)".into());
            }
            all_fields = true;
        } else {
            fields.push(p.word("a field name")?);
        }
        if !p.sym(",") {
            break;
        }
    }
    if !p.eat_kw("FROM") {
        return Err(format!(
            "unexpected token: expected FROM, found {}",
            describe(p.peek())
        ));
    }
    let object = p.word("an object name")?;
    let filter = if p.eat_kw("WHERE") {
        Some(p.cond()?)
    } else {
        None
    };
    let mut order = Vec::new();
    if p.eat_kw("ORDER") {
        if !p.eat_kw("BY") {
            return Err("expected BY after ORDER".into());
        }
        loop {
            let f = p.word("a field to order by")?;
            let desc = if p.eat_kw("DESC") {
                true
            } else {
                p.eat_kw("ASC");
                false
            };
            let nulls_last = if p.eat_kw("NULLS") {
                if p.eat_kw("LAST") {
                    true
                } else if p.eat_kw("FIRST") {
                    false
                } else {
                    return Err("expected FIRST or LAST after NULLS".into());
                }
            } else {
                desc
            };
            order.push((f, desc, nulls_last));
            if !p.sym(",") {
                break;
            }
        }
    }
    let mut limit = None;
    let mut offset = 0;
    if p.eat_kw("LIMIT") {
        match p.value()? {
            Value::Number(n) if n.as_f64().is_some_and(|x| x >= 0.0) => {
                limit = Some(n.as_f64().unwrap_or(0.0) as usize)
            }
            _ => return Err("LIMIT takes a non-negative number".into()),
        }
    }
    if p.eat_kw("OFFSET") {
        match p.value()? {
            Value::Number(n) if n.as_f64().is_some_and(|x| x >= 0.0) => {
                offset = n.as_f64().unwrap_or(0.0) as usize
            }
            _ => return Err("OFFSET takes a non-negative number".into()),
        }
    }
    if let Some(t) = p.peek() {
        return Err(format!("unexpected token: {}", describe(Some(t))));
    }
    Ok(Query {
        fields,
        all_fields,
        object,
        filter,
        order,
        limit,
        offset,
    })
}

/// A field of a record by path, case-insensitively.
pub fn get<'a>(record: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut cur = record
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(first))
        .map(|(_, v)| v)?;
    for part in parts {
        cur = cur
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(part))
            .map(|(_, v)| v)?;
    }
    Some(cur)
}

fn cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        _ => cmp(a, b) == Some(std::cmp::Ordering::Equal),
    }
}

/// SOQL `LIKE`: `%` any run, `_` one character, case-insensitive.
fn like(pattern: &str, s: &str) -> bool {
    crate::glob::matches(
        pattern.to_lowercase().as_bytes(),
        s.to_lowercase().as_bytes(),
        b'%',
        Some(b'_'),
    )
}

pub fn eval(c: &Cond, r: &Map<String, Value>) -> bool {
    match c {
        Cond::And(all) => all.iter().all(|c| eval(c, r)),
        Cond::Or(any) => any.iter().any(|c| eval(c, r)),
        Cond::Not(a) => !eval(a, r),
        Cond::In(f, neg, vals) => {
            let v = get(r, f).unwrap_or(&Value::Null);
            vals.iter().any(|x| eq(v, x)) != *neg
        }
        Cond::Cmp(f, op, x) => {
            let v = get(r, f).unwrap_or(&Value::Null);
            match op.as_str() {
                "=" => eq(v, x),
                "!=" | "<>" => !eq(v, x),
                "LIKE" => matches!((v, x), (Value::String(s), Value::String(p)) if like(p, s)),
                "<" => cmp(v, x) == Some(std::cmp::Ordering::Less),
                "<=" => matches!(
                    cmp(v, x),
                    Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                ),
                ">" => cmp(v, x) == Some(std::cmp::Ordering::Greater),
                _ => matches!(
                    cmp(v, x),
                    Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                ),
            }
        }
    }
}

/// Fields a condition mentions.
pub fn cond_fields(c: &Cond, out: &mut Vec<String>) {
    match c {
        Cond::And(cs) | Cond::Or(cs) => cs.iter().for_each(|c| cond_fields(c, out)),
        Cond::Not(a) => cond_fields(a, out),
        Cond::In(f, ..) | Cond::Cmp(f, ..) => out.push(f.clone()),
    }
}

/// Sorts records by the query's ORDER BY.
pub fn sort(records: &mut [Map<String, Value>], order: &[(String, bool, bool)]) {
    records.sort_by(|a, b| {
        for (f, desc, nulls_last) in order {
            let (x, y) = (
                get(a, f).unwrap_or(&Value::Null),
                get(b, f).unwrap_or(&Value::Null),
            );
            let o = match (x.is_null(), y.is_null()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => {
                    if *nulls_last {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Less
                    }
                }
                (false, true) => {
                    if *nulls_last {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    }
                }
                _ => {
                    let o = cmp(x, y).unwrap_or(std::cmp::Ordering::Equal);
                    if *desc { o.reverse() } else { o }
                }
            };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn parses_the_relay_queries() {
        let q =
            parse("SELECT Id, DeveloperName FROM EventRelayConfig WHERE DeveloperName = 'orders'")
                .unwrap();
        assert_eq!(q.object, "EventRelayConfig");
        assert_eq!(q.fields, ["Id", "DeveloperName"]);
        let q = parse("select EventRelayConfig.DeveloperName, Status from EventRelayFeedback where Status in ('RUNNING','ERROR') and (ErrorCode != null or Status = 'RUNNING') order by Status desc nulls last limit 10 offset 2").unwrap();
        assert_eq!(q.limit, Some(10));
        assert_eq!(q.offset, 2);
        assert!(
            parse("SELECT FIELDS(ALL) FROM EventRelayConfig LIMIT 200")
                .unwrap()
                .all_fields
        );
    }

    #[test]
    fn rejects_what_it_does_not_understand() {
        for q in [
            "",
            "SELECT FROM X",
            "SELECT Id X",
            "SELECT Id FROM X WHERE",
            "SELECT Id FROM X WHERE a = 'b",
            "SELECT Id FROM X GROUP BY Id",
            "SELECT Id FROM X WHERE a ~ 1",
        ] {
            assert!(parse(q).is_err(), "{q}");
        }
    }

    /// A 3 KB query of parentheses used to overflow the stack and kill the process.
    #[test]
    fn nesting_and_length_are_bounded() {
        let deep = format!(
            "SELECT Id FROM X WHERE {}a = 1{}",
            "(".repeat(3000),
            ")".repeat(3000)
        );
        assert!(parse(&deep).unwrap_err().contains("more than 64 deep"));
        let nots = format!("SELECT Id FROM X WHERE {}a = 1", "NOT ".repeat(3000));
        assert!(parse(&nots).unwrap_err().contains("more than 64 deep"));
        let ok = format!(
            "SELECT Id FROM X WHERE {}a = 1{}",
            "(".repeat(64),
            ")".repeat(64)
        );
        assert!(parse(&ok).is_ok());
        // A long chain is flat: evaluating it does not recurse once per term.
        let chain = format!("SELECT Id FROM X WHERE a = 1{}", " AND a = 1".repeat(9_000));
        let q = parse(&chain).unwrap();
        assert!(eval(q.filter.as_ref().unwrap(), &rec(json!({"a": 1}))));
        let long = format!(
            "SELECT Id FROM X WHERE a = '{}'",
            "x".repeat(MAX_QUERY_CHARS)
        );
        assert!(parse(&long).unwrap_err().contains("can't exceed 100000"));
    }

    #[test]
    fn evaluates() {
        let r = rec(
            json!({"DeveloperName": "Orders", "Count": 3, "Rel": {"Name": "x"}, "Empty": null}),
        );
        let t = |q: &str| {
            eval(
                parse(&format!("SELECT Id FROM X WHERE {q}"))
                    .unwrap()
                    .filter
                    .as_ref()
                    .unwrap(),
                &r,
            )
        };
        assert!(t("developername = 'orders'"));
        assert!(t("Count >= 3 AND Count < 4"));
        assert!(t("Rel.Name IN ('y', 'x')"));
        assert!(t("Empty = null"));
        assert!(t("DeveloperName LIKE 'Ord%'"));
        assert!(t("NOT Count = 2"));
        assert!(!t("DeveloperName NOT IN ('Orders')"));
        assert!(t("Count = 1 OR (Count = 3 AND Empty = null)"));
    }
}
