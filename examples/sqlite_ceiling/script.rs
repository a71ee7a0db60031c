//! The ceiling scripts of scripts/bench/*.sql, read as SQLite runs them: pgbench's meta lines
//! (`\set …`, which pick the ids) are left to the caller, each `:name` becomes a numbered
//! parameter bound from the caller's variables, and a statement ending in `\gset` stores the
//! columns of its row as variables, as pgbench does.

use std::collections::HashMap;

pub struct Statement {
    /// The SQL with `?1`, `?2`… in place of the variables.
    pub sql: String,
    /// The variable bound to each parameter, in parameter order.
    pub params: Vec<String>,
    /// `\gset`: the row's columns become variables.
    pub gset: bool,
}

/// The statements of a script, in order.
pub fn parse(text: &str) -> Vec<Statement> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("--") || line.starts_with('\\') {
            continue;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(line);
        let gset = current.ends_with("\\gset");
        if gset || current.ends_with(';') {
            let sql = current
                .trim_end_matches("\\gset")
                .trim_end()
                .trim_end_matches(';');
            statements.push(numbered(sql, gset));
            current.clear();
        }
    }
    assert!(current.is_empty(), "a statement without its `;`: {current}");
    statements
}

/// Replaces each `:name` outside string literals by `?n` (one number per distinct name).
fn numbered(sql: &str, gset: bool) -> Statement {
    let mut out = String::with_capacity(sql.len());
    let mut params: Vec<String> = Vec::new();
    let mut chars = sql.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        let starts_name = chars
            .peek()
            .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_');
        if c != ':' || quoted || !starts_name {
            out.push(c);
            continue;
        }
        let mut name = String::new();
        while let Some(n) = chars
            .peek()
            .filter(|n| n.is_ascii_alphanumeric() || **n == '_')
        {
            name.push(*n);
            chars.next();
        }
        let index = match params.iter().position(|p| *p == name) {
            Some(at) => at,
            None => {
                params.push(name);
                params.len() - 1
            }
        };
        out.push_str(&format!("?{}", index + 1));
    }
    Statement {
        sql: out,
        params,
        gset,
    }
}

/// Integer variables, as pgbench's are.
pub type Variables = HashMap<String, i64>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_become_numbered_parameters() {
        let s = parse("\\set i :i + 1\nSELECT ':x', :a, :b, :a FROM t;\nINSERT INTO t VALUES (1) RETURNING id \\gset\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].sql, "SELECT ':x', ?1, ?2, ?1 FROM t");
        assert_eq!(s[0].params, ["a", "b"]);
        assert!(s[1].gset && s[1].params.is_empty());
    }
}
