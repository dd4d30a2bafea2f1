//! `sum` of 64-bit integers that fails on overflow instead of wrapping.
//!
//! DataFusion 55 adds Int64 sums with wrapping arithmetic, so a sum past 2^63 came back as a
//! large negative number with exit 0. `sum(duration_ns)` over a fleet reaches that: 292
//! years of time in calls, which 2,000 threads blocked in `epoll_wait` on 60 hosts pass in
//! a day. The overflow is now an error that names the function and says how to get the
//! exact sum. Every other type, and `sum(DISTINCT ...)`, is DataFusion's own `sum`.
use std::sync::Arc;

use datafusion::{
    arrow::{
        array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array},
        buffer::NullBuffer,
        datatypes::{DataType, FieldRef, Int64Type},
    },
    common::{ScalarValue, exec_err},
    error::Result,
    functions_aggregate::sum::Sum,
    logical_expr::{
        Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator,
        ReversedUDAF, SetMonotonicity, Signature,
        function::{AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs},
        utils::AggregateOrderSensitivity,
    },
    physical_expr::NullState,
};

/// The `sum` every session registers in place of DataFusion's.
pub fn udaf() -> AggregateUDF {
    AggregateUDF::from(CheckedSum::default())
}

/// What an overflow says.
fn overflowed<T>() -> Result<T> {
    exec_err!(
        "sum: the total is past the 64-bit range (±9.2e18) and would be wrong; sum a \
         CAST(... AS DECIMAL(38, 0)) for the exact total"
    )
}

#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct CheckedSum {
    inner: Sum,
}

/// Whether this call is the one checked here: a plain sum of Int64.
fn checked(args: &AccumulatorArgs) -> bool {
    !args.is_distinct && args.return_field.data_type() == &DataType::Int64
}

impl AggregateUDFImpl for CheckedSum {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match checked(&args) {
            true => Ok(Box::new(OneSum::default())),
            false => self.inner.accumulator(args),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        match checked(&args) {
            true => Ok(Box::new(GroupSums::default())),
            false => self.inner.create_groups_accumulator(args),
        }
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match checked(&args) {
            true => Ok(Box::new(OneSum::default())),
            false => self.inner.create_sliding_accumulator(args),
        }
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        self.inner.reverse_expr()
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.set_monotonicity(data_type)
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        self.inner.simplify()
    }

    // Not `simplify_expr_op_literal`: DataFusion rewrites `sum(x + c)` to
    // `sum(x) + c * count(x)`, whose `+` and `*` wrap.
}

/// Adds `values` to `sum`; false if the total left the range.
fn add_all(sum: &mut i64, values: impl Iterator<Item = i64>) -> bool {
    let mut over = false;
    for v in values {
        let (total, o) = sum.overflowing_add(v);
        *sum = total;
        over |= o;
    }
    !over
}

/// One group's sum: ungrouped, and over a sliding window frame.
#[derive(Debug, Default)]
struct OneSum {
    sum: i64,
    /// Values in the sum; NULL when none.
    count: u64,
}

impl Accumulator for OneSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let input = values[0].as_primitive::<Int64Type>();
        self.count += (input.len() - input.null_count()) as u64;
        match add_all(&mut self.sum, input.iter().flatten()) {
            true => Ok(()),
            false => overflowed(),
        }
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let input = values[0].as_primitive::<Int64Type>();
        self.count -= (input.len() - input.null_count()) as u64;
        let mut over = false;
        for v in input.iter().flatten() {
            let (total, o) = self.sum.overflowing_sub(v);
            self.sum = total;
            over |= o;
        }
        match over {
            false => Ok(()),
            true => overflowed(),
        }
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64((self.count > 0).then_some(self.sum)))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

/// Many groups' sums, as DataFusion's `PrimitiveGroupsAccumulator` keeps them.
#[derive(Debug, Default)]
struct GroupSums {
    sums: Vec<i64>,
    nulls: NullState,
}

impl GroupSums {
    fn add(
        &mut self,
        values: &ArrayRef,
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let input = values.as_primitive::<Int64Type>();
        self.sums.resize(total_num_groups, 0);
        let sums = &mut self.sums;
        let mut over = false;
        self.nulls.accumulate(
            group_indices,
            input,
            opt_filter,
            total_num_groups,
            |group, value| {
                let (total, o) = sums[group].overflowing_add(value);
                sums[group] = total;
                over |= o;
            },
        );
        match over {
            false => Ok(()),
            true => overflowed(),
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> ArrayRef {
        let sums = emit_to.take_needed(&mut self.sums);
        let nulls = self.nulls.build(emit_to);
        Arc::new(Int64Array::new(sums.into(), nulls))
    }
}

impl GroupsAccumulator for GroupSums {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(&values[0], group_indices, opt_filter, total_num_groups)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(&values[0], group_indices, None, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(self.take(emit_to))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.take(emit_to)])
    }

    /// Each row its own group: the value is its own sum, and a filtered-out row is NULL.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let input = values[0].as_primitive::<Int64Type>();
        let kept = opt_filter
            .map(|f| NullBuffer::from_iter((0..f.len()).map(|i| f.is_valid(i) && f.value(i))));
        let nulls = NullBuffer::union(input.nulls(), kept.as_ref());
        Ok(vec![Arc::new(Int64Array::new(
            input.values().clone(),
            nulls,
        ))])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * size_of::<i64>() + self.nulls.size()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::{arrow::util::pretty::pretty_format_batches, prelude::SessionContext};

    use super::*;

    fn session(checked: bool) -> SessionContext {
        let ctx = SessionContext::new();
        if checked {
            ctx.register_udaf(udaf());
        }
        ctx
    }

    async fn run(ctx: &SessionContext, sql: &str) -> Result<String> {
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(pretty_format_batches(&batches)?.to_string())
    }

    /// Within range, every form of `sum` answers as DataFusion's: grouped, ungrouped,
    /// filtered, over a window, DISTINCT, NULLs, other types.
    #[tokio::test]
    async fn in_range_it_is_datafusions_sum() {
        let rows = "(VALUES (1, 5), (1, NULL), (2, -7), (2, 9223372036854775000), \
                    (3, NULL), (1, 5)) t(g, x)";
        let queries = [
            format!("SELECT g, sum(x) AS s FROM {rows} GROUP BY g ORDER BY g"),
            format!("SELECT sum(x) AS s FROM {rows}"),
            format!("SELECT sum(x) FILTER (WHERE x > 0) AS s FROM {rows} GROUP BY g ORDER BY 1"),
            format!("SELECT sum(DISTINCT x) AS s FROM {rows} GROUP BY g ORDER BY 1"),
            format!(
                "SELECT g, x, sum(x) OVER (ORDER BY g, x ROWS BETWEEN 1 PRECEDING AND \
                 CURRENT ROW) AS s FROM {rows} ORDER BY g, x"
            ),
            format!("SELECT sum(CAST(x AS DOUBLE)) AS s, sum(CAST(g AS INT)) AS t FROM {rows}"),
            format!("SELECT sum(x) AS s FROM {rows} WHERE g > 5"),
            format!("SELECT sum(x + 1) AS s FROM {rows} WHERE g = 1"),
        ];
        for sql in &queries {
            assert_eq!(
                run(&session(true), sql).await.unwrap(),
                run(&session(false), sql).await.unwrap(),
                "{sql}"
            );
        }
    }

    /// Past the range: DataFusion's own wraps to a negative total; this one refuses, in
    /// every form that adds.
    #[tokio::test]
    async fn past_the_range_it_refuses() {
        let big = "(VALUES (1, 9223372036854775807), (1, 1), (2, 3)) t(g, x)";
        let wrapped = run(&session(false), &format!("SELECT sum(x) AS s FROM {big}"))
            .await
            .unwrap();
        assert!(wrapped.contains("-9223372036854775805"), "{wrapped}");
        for sql in [
            format!("SELECT sum(x) AS s FROM {big}"),
            format!("SELECT g, sum(x) AS s FROM {big} GROUP BY g"),
            format!("SELECT sum(x) OVER (ORDER BY g ROWS UNBOUNDED PRECEDING) AS s FROM {big}"),
            "SELECT sum(x) AS s FROM (VALUES (-9223372036854775807), (-2)) t(x)".to_string(),
            // DataFusion would make this sum(x) + c * count(x), whose `*` wraps.
            "SELECT sum(x + 4611686018427387904) AS s FROM (VALUES (1), (2), (3)) t(x)".to_string(),
        ] {
            let err = run(&session(true), &sql).await.unwrap_err().to_string();
            assert!(
                err.contains("sum: the total is past the 64-bit range"),
                "{sql}: {err}"
            );
        }
    }
}
