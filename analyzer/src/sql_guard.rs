//! Limits on the SQL a user gives, checked before DataFusion plans it.
//!
//! DataFusion plans and optimizes expressions by recursion, and memory grows with the
//! expression tree. `SELECT 1+1+...` with thousands of terms would exhaust the stack or
//! the memory of a postmortem laptop; these limits turn such input into one error line
//! while leaving every real query (long `IN` lists included) alone.
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::{
    ast::{Expr, Query, SetExpr, Visit, Visitor},
    dialect::GenericDialect,
    parser::Parser,
};

/// Longer SQL than this is refused: no query a person writes or a tool generates for a
/// capture comes near it.
pub const MAX_SQL_BYTES: usize = 1 << 20;
/// Expressions and subqueries nested deeper than this are refused. A chain `a + b + c`
/// nests one level per operator.
pub const MAX_DEPTH: usize = 256;
/// More parts than this (each SELECT joined by UNION, EXCEPT or INTERSECT, each CTE, each
/// subquery) are refused: DataFusion plans set operations and CTE chains by recursion,
/// and 10,000 `UNION ALL`s, 190 KB of SQL, overflowed its stack; 2,000 `EXCEPT`s took
/// 24 s to plan.
pub const MAX_PARTS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum SqlLimit {
    #[error("SQL: the query is {0} bytes, more than the {MAX_SQL_BYTES} this analyze takes")]
    TooLong(usize),
    #[error(
        "SQL: expressions nest more than {MAX_DEPTH} levels deep (a chain of operators nests \
         one level each); split the query or use IN lists"
    )]
    TooDeep,
    #[error(
        "SQL: the query has more than {MAX_PARTS} parts (SELECTs joined by UNION, EXCEPT or \
         INTERSECT, CTEs and subqueries); split it"
    )]
    TooManyParts,
}

struct Depth {
    now: usize,
    parts: usize,
}

/// The SELECTs a query body joins by set operations, counted without recursion (a chain
/// of 10,000 is one long left spine).
fn set_operands(body: &SetExpr) -> usize {
    let mut count = 0;
    let mut todo = vec![body];
    while let Some(b) = todo.pop() {
        match b {
            SetExpr::SetOperation { left, right, .. } => {
                todo.push(left);
                todo.push(right);
            }
            _ => count += 1,
        }
    }
    count
}

impl Depth {
    fn enter(&mut self) -> ControlFlow<()> {
        self.now += 1;
        if self.now > MAX_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.enter()
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        // A CTE's or a subquery's own query is visited too, and counts there.
        self.parts += set_operands(&q.body);
        if self.parts > MAX_PARTS {
            return ControlFlow::Break(());
        }
        self.enter()
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }
}

/// Refuses SQL over the limits. SQL that does not parse here is left to DataFusion, whose
/// dialect and error messages are the ones users see.
pub fn check(sql: &str) -> Result<(), SqlLimit> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(SqlLimit::TooLong(sql.len()));
    }
    let Ok(statements) = Parser::parse_sql(&GenericDialect {}, sql) else {
        return Ok(());
    };
    let mut depth = Depth { now: 0, parts: 0 };
    match statements.visit(&mut depth) {
        ControlFlow::Break(()) if depth.parts > MAX_PARTS => Err(SqlLimit::TooManyParts),
        ControlFlow::Break(()) => Err(SqlLimit::TooDeep),
        ControlFlow::Continue(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_chains_are_refused_and_wide_lists_are_not() {
        let chain = |n: usize| format!("SELECT {}", vec!["1"; n].join(" + "));
        assert!(check(&chain(100)).is_ok());
        assert!(matches!(check(&chain(5000)), Err(SqlLimit::TooDeep)));
        let list = (0..20_000).map(|i| i.to_string()).collect::<Vec<_>>();
        let wide = format!("SELECT * FROM syscalls WHERE pid IN ({})", list.join(", "));
        assert!(check(&wide).is_ok());
        // Set operations and CTE chains, which nest no expression.
        let union = |n: usize| format!("SELECT 1 AS x {}", " UNION ALL SELECT 1".repeat(n));
        assert!(check(&union(100)).is_ok());
        assert!(matches!(check(&union(10_000)), Err(SqlLimit::TooManyParts)));
        let ctes = (1..3000)
            .map(|i| format!("c{i} AS (SELECT * FROM c{})", i - 1))
            .collect::<Vec<_>>();
        let chain = format!(
            "WITH c0 AS (SELECT 1 AS x), {} SELECT * FROM c2999",
            ctes.join(", ")
        );
        assert!(matches!(check(&chain), Err(SqlLimit::TooManyParts)));
        // Every canned query passes, as it runs: its parameters filled in (unfilled, it
        // would not parse, and pass unchecked).
        for q in crate::queries::all() {
            let sql = q.render(&[]).unwrap();
            assert!(
                Parser::parse_sql(&GenericDialect {}, &sql).is_ok(),
                "{}",
                q.name
            );
            assert!(check(&sql).is_ok(), "{}", q.name);
        }
        let long = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
        assert!(matches!(check(&long), Err(SqlLimit::TooLong(_))));
    }
}
