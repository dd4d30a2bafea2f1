//! GROUP BY keys that hold one value in every row are taken out of the grouping and put
//! back as literals above it.
//!
//! Every table has a `capture` column (and a column per `key=value` of the capture's
//! path), and every canned query groups by it. Within one capture it is a literal, but
//! DataFusion 55 groups by it all the same: it hashes and compares the string for every
//! row, and since a literal is trivially sorted it picks the partially sorted aggregation,
//! which compares the key row by row as well. On 20M calls that took a
//! `GROUP BY capture, syscall` from 0.21 s to 0.39 s (BENCHMARKS.md). DataFusion's own
//! `eliminate_group_by_constant` drops only keys written as literals in the query, not a
//! column that a projection below made a literal.
use std::sync::Arc;

use datafusion::{
    common::{Column, tree_node::Transformed},
    error::Result,
    functions_aggregate::expr_fn::count,
    logical_expr::{Aggregate, Expr, LogicalPlan, LogicalPlanBuilder, Projection, lit},
    optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule},
    prelude::col,
};

/// The optimizer rule; see the module's comment.
///
/// Over several captures `capture` is a literal in each branch of the union, not in the
/// union. When each branch holds a different value of a key, no group spans two branches,
/// and aggregating each branch on its own gives the same groups: there the key is a
/// literal again, and is dropped as above.
#[derive(Debug, Default)]
pub struct ConstantKeys;

/// The hidden count that keeps a GROUP BY of constants only from answering an empty input
/// with a row.
const ROWS: &str = "__tracepost_rows_in_group";

impl OptimizerRule for ConstantKeys {
    fn name(&self) -> &str {
        "tracepost_constant_group_keys"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = plan else {
            return Ok(Transformed::no(plan));
        };
        // A grouping set gives each key its own NULL rows: a literal would lose them.
        if agg
            .group_expr
            .iter()
            .any(|e| matches!(e, Expr::GroupingSet(_)))
        {
            return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
        }
        if let Some(plan) = per_branch(&agg)? {
            return Ok(Transformed::yes(plan));
        }
        without_constants(agg)
    }
}

/// `agg` with its constant keys dropped from the grouping and put back above it.
fn without_constants(agg: Aggregate) -> Result<Transformed<LogicalPlan>> {
    let known = constants(&agg.input);
    let fixed: Vec<Option<Expr>> = agg
        .group_expr
        .iter()
        .map(|e| key_index(e, &agg.input).and_then(|i| known[i].clone()))
        .collect();
    if fixed.iter().all(Option::is_none) {
        return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
    }
    let kept: Vec<Expr> = agg
        .group_expr
        .iter()
        .zip(&fixed)
        .filter(|(_, f)| f.is_none())
        .map(|(e, _)| e.clone())
        .collect();
    // With no key left the aggregate would answer an empty input with one row; a GROUP BY
    // answers it with none. The count keeps that difference.
    let only_constants = kept.is_empty();
    let mut aggr = agg.aggr_expr.clone();
    if only_constants {
        aggr.push(count(lit(1i64)).alias(ROWS));
    }
    let inner = LogicalPlan::Aggregate(Aggregate::try_new(agg.input.clone(), kept, aggr)?);
    let inner = match only_constants {
        true => LogicalPlanBuilder::from(inner)
            .filter(col(ROWS).gt(lit(0i64)))?
            .build()?,
        false => inner,
    };
    // The output as it was: the keys, then the aggregates, under their own names.
    let exprs = agg
        .schema
        .iter()
        .enumerate()
        .map(
            |(i, (qualifier, field))| match fixed.get(i).cloned().flatten() {
                Some(value) => value.alias_qualified(qualifier.cloned(), field.name()),
                None => Expr::Column(Column::new(qualifier.cloned(), field.name())),
            },
        )
        .collect();
    let projection = Projection::try_new(exprs, Arc::new(inner))?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}

/// `agg` over a union run once per branch, where a key is a literal in each branch and no
/// two branches share its value; `None` where that does not hold.
fn per_branch(agg: &Aggregate) -> Result<Option<LogicalPlan>> {
    let (alias, union) = match agg.input.as_ref() {
        LogicalPlan::SubqueryAlias(a) => match a.input.as_ref() {
            LogicalPlan::Union(u) => (Some(&a.alias), u),
            _ => return Ok(None),
        },
        LogicalPlan::Union(u) => (None, u),
        _ => return Ok(None),
    };
    let branches: Vec<Vec<Option<Expr>>> = union.inputs.iter().map(|b| constants(b)).collect();
    let apart = |i: usize| {
        let values: Vec<&Expr> = branches.iter().filter_map(|b| b[i].as_ref()).collect();
        values.len() == branches.len()
            && values
                .iter()
                .all(|v| matches!(v, Expr::Literal(s, _) if !s.is_null()))
            && values
                .iter()
                .enumerate()
                .all(|(n, v)| !values[..n].contains(v))
    };
    let splits = agg
        .group_expr
        .iter()
        .any(|e| key_index(e, &agg.input).is_some_and(apart));
    if !splits {
        return Ok(None);
    }
    // A plan this rule cannot build (two columns of one name, say) is left as it was.
    let Ok(parts) = union
        .inputs
        .iter()
        .map(|branch| branch_aggregate(agg, branch, &union.schema, alias))
        .collect::<Result<Vec<_>>>()
    else {
        return Ok(None);
    };
    let mut parts = parts.into_iter();
    let first = parts.next().expect("a union has branches");
    let union = parts
        .try_fold(LogicalPlanBuilder::from(first), |u, p| u.union(p))?
        .build()?;
    // A union's columns lose their table's name: given back, so that the plan above finds
    // the columns it named.
    let exprs = agg
        .schema
        .iter()
        .zip(union.schema().iter())
        .map(|((qualifier, field), (q, f))| {
            Expr::Column(Column::new(q.cloned(), f.name()))
                .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    Ok(Some(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(union),
    )?)))
}

/// `agg` over one branch of its union. A union matches its branches' columns by position,
/// and a branch keeps its own names (`SELECT 'b' AS m, 'y' AS k ... UNION ...`): each
/// column is first given the union's name for its position, so that the keys and
/// aggregates find what the union gave them there.
fn branch_aggregate(
    agg: &Aggregate,
    branch: &Arc<LogicalPlan>,
    names: &datafusion::common::DFSchemaRef,
    alias: Option<&datafusion::common::TableReference>,
) -> Result<LogicalPlan> {
    let renamed = branch
        .schema()
        .iter()
        .zip(names.iter())
        .map(|((q, f), (union_q, union_f))| {
            Expr::Column(Column::new(q.cloned(), f.name()))
                .alias_qualified(union_q.cloned(), union_f.name())
        })
        .collect();
    let input = LogicalPlan::Projection(Projection::try_new(renamed, branch.clone())?);
    let input = match alias {
        Some(alias) => LogicalPlanBuilder::from(input)
            .alias(alias.clone())?
            .build()?,
        None => input,
    };
    let part = Aggregate::try_new(
        Arc::new(input),
        agg.group_expr.clone(),
        agg.aggr_expr.clone(),
    )?;
    Ok(without_constants(part)?.data)
}

/// Where a GROUP BY key that is a bare column lies in the aggregate's input.
fn key_index(key: &Expr, input: &LogicalPlan) -> Option<usize> {
    match key {
        Expr::Column(c) => input.schema().index_of_column(c).ok(),
        _ => None,
    }
}

/// For each output column of `plan`, the literal it holds in every row, where the plan
/// says so: a projection of a literal, seen through the nodes that keep their input's
/// columns as they are.
fn constants(plan: &LogicalPlan) -> Vec<Option<Expr>> {
    match plan {
        LogicalPlan::Projection(p) => {
            let below = constants(&p.input);
            p.expr
                .iter()
                .map(|e| constant_of(e, &p.input, &below))
                .collect()
        }
        LogicalPlan::SubqueryAlias(a) => constants(&a.input),
        LogicalPlan::Filter(f) => constants(&f.input),
        LogicalPlan::Sort(s) => constants(&s.input),
        LogicalPlan::Limit(l) => constants(&l.input),
        LogicalPlan::Repartition(r) => constants(&r.input),
        _ => vec![None; plan.schema().fields().len()],
    }
}

fn constant_of(e: &Expr, input: &LogicalPlan, below: &[Option<Expr>]) -> Option<Expr> {
    match e {
        Expr::Alias(a) => constant_of(&a.expr, input, below),
        // Not a float: grouping makes -0.0 and 0.0 one group, shown as 0.0, and a literal
        // kept as it is would not.
        Expr::Literal(v, _) if !v.data_type().is_floating() => Some(e.clone()),
        Expr::Column(c) => input
            .schema()
            .index_of_column(c)
            .ok()
            .and_then(|i| below.get(i).cloned().flatten()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::{
        arrow::{
            array::{Int64Array, StringArray},
            datatypes::{DataType, Field, Schema},
            record_batch::RecordBatch,
            util::pretty::pretty_format_batches,
        },
        datasource::MemTable,
        prelude::{DataFrame, SessionContext},
        scalar::ScalarValue,
    };

    use super::*;

    /// A table `t` as `tables::context` builds one: a union of one frame per capture, each
    /// with its `capture` and `host` columns as literals.
    async fn session(rule: bool, captures: &[(&str, Option<&str>)], rows: i64) -> SessionContext {
        let ctx = SessionContext::new();
        if rule {
            ctx.add_optimizer_rule(Arc::new(ConstantKeys));
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("pid", DataType::Int64, false),
            Field::new("syscall", DataType::Utf8, true),
        ]));
        let mut frames: Vec<DataFrame> = Vec::new();
        for (n, (name, host)) in captures.iter().enumerate() {
            let pids: Int64Array = (0..rows).map(|i| (i * 7 + n as i64) % 5).collect();
            let names: StringArray = (0..rows)
                .map(|i| (i % 3 != 0).then(|| ["read", "write"][(i % 2) as usize]))
                .collect();
            let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(pids), Arc::new(names)])
                .unwrap();
            let table = MemTable::try_new(schema.clone(), vec![vec![batch]]).unwrap();
            let df = ctx
                .read_table(Arc::new(table))
                .unwrap()
                .with_column("capture", lit(*name))
                .unwrap()
                .with_column("host", lit(ScalarValue::Utf8(host.map(String::from))))
                .unwrap();
            frames.push(df);
        }
        let mut frames = frames.into_iter();
        let first = frames.next().unwrap();
        let union = frames.try_fold(first, |u, f| u.union(f)).unwrap();
        ctx.register_table("t", union.into_view()).unwrap();
        ctx
    }

    async fn answer(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    async fn plan(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx
            .sql(&format!("EXPLAIN {sql}"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    const QUERIES: &[&str] = &[
        "SELECT capture, syscall, count(*) AS n, sum(pid) AS s FROM t \
         GROUP BY capture, syscall ORDER BY 1, 2",
        "SELECT capture, count(*) AS n FROM t GROUP BY capture ORDER BY 1",
        "SELECT host, count(*) AS n FROM t GROUP BY host ORDER BY 1",
        "SELECT capture, host, pid, count(DISTINCT syscall) AS d FROM t \
         GROUP BY capture, host, pid HAVING count(*) > 1 ORDER BY 1, 2, 3",
        "SELECT capture, count(*) AS n FROM t WHERE pid > 100 GROUP BY capture",
        "SELECT count(*) AS groups FROM (SELECT capture, pid FROM t GROUP BY capture, pid)",
        "SELECT capture, pid, count(*) AS n FROM t GROUP BY ROLLUP (capture, pid) \
         ORDER BY 1 NULLS FIRST, 2 NULLS FIRST",
        "SELECT DISTINCT capture, syscall FROM t ORDER BY 1, 2 NULLS FIRST",
        // A union matches columns by position, whatever each branch calls them.
        "SELECT k, m, count(*) AS n FROM (SELECT 'a' AS k, 'x' AS m UNION ALL \
         (SELECT 'b' AS m, 'y' AS k LIMIT 1)) GROUP BY k, m ORDER BY 1, 2",
        "SELECT k, count(*) AS n FROM (SELECT 'a' AS k, pid FROM t UNION ALL \
         (SELECT DISTINCT 'b' AS z, pid FROM t)) GROUP BY k ORDER BY 1",
        "SELECT k, m, count(*) AS n FROM (SELECT capture AS k, syscall AS m FROM t UNION ALL \
         (SELECT DISTINCT 'z' AS m, host AS k FROM t)) GROUP BY k, m ORDER BY 1, 2 NULLS FIRST",
        // Grouping makes -0.0 and 0.0 one group.
        "SELECT k, count(*) AS n FROM (SELECT 0.0 AS k FROM t UNION ALL \
         SELECT -0.0 AS j FROM t) GROUP BY k ORDER BY 1",
        "SELECT k, count(*) AS n FROM (SELECT -0.0 AS k) GROUP BY k",
    ];

    /// Every answer is the one DataFusion gives without the rule: one capture, several,
    /// two that share a name, and hosts that are NULL in some captures.
    #[tokio::test]
    async fn the_answers_are_datafusions_own() {
        let layouts: &[&[(&str, Option<&str>)]] = &[
            &[("a", Some("web-1"))],
            &[("a", Some("web-1")), ("b", Some("web-2")), ("c", None)],
            &[("a", None), ("a", None), ("b", Some("web-1"))],
            &[("a", Some("web-1")), ("b", Some("web-1"))],
        ];
        for layout in layouts {
            for rows in [0, 50] {
                let with = session(true, layout, rows).await;
                let without = session(false, layout, rows).await;
                for sql in QUERIES {
                    assert_eq!(
                        answer(&with, sql).await,
                        answer(&without, sql).await,
                        "{layout:?}, {rows} rows: {sql}"
                    );
                }
            }
        }
    }

    /// Over an empty input, a GROUP BY of constants alone has no group, not a row of zero.
    #[tokio::test]
    async fn a_group_of_constants_over_nothing_is_no_row() {
        let ctx = session(true, &[("a", Some("web-1"))], 0).await;
        let sql = "SELECT capture, host, count(*) AS n FROM t GROUP BY capture, host";
        let p = plan(&ctx, sql).await;
        assert!(p.contains("groupBy=[[]]"), "the rule applied: {p}");
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    }

    /// The point of the rule: `capture` leaves the grouping, in one capture and in each
    /// branch of several, and stays where branches share its value.
    #[tokio::test]
    async fn a_literal_key_leaves_the_grouping() {
        let sql = "SELECT capture, syscall, count(*) FROM t GROUP BY capture, syscall";
        let keys = |plan: String| {
            plan.lines()
                .filter(|l| l.contains("Aggregate: groupBy="))
                .map(|l| l.contains("capture"))
                .collect::<Vec<_>>()
        };
        let one = session(true, &[("a", None)], 10).await;
        assert_eq!(keys(plan(&one, sql).await), [false]);
        let three = session(true, &[("a", None), ("b", None), ("c", None)], 10).await;
        assert_eq!(keys(plan(&three, sql).await), [false, false, false]);
        let shared = session(true, &[("a", None), ("a", None)], 10).await;
        assert_eq!(keys(plan(&shared, sql).await), [true]);
    }
}
