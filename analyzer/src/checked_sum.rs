//! `sum` of 64-bit integers that fails when the total is out of range instead of wrapping.
//!
//! DataFusion 55 adds Int64 and UInt64 sums with wrapping arithmetic, so a sum past 2^63 came
//! back as a large negative number with exit 0. `sum(duration_ns)` over a fleet reaches
//! that: 292 years of time in calls, which 2,000 threads blocked in `epoll_wait` on 60 hosts
//! pass in a day. Here the sum is kept in 128 bits, which no count of 64-bit values a
//! capture holds can overflow, and only a total that does not fit the result's type is an
//! error: values of both signs, or a window frame that briefly holds one row more, whose
//! total is in range, give that total. Every other type is DataFusion's own `sum`.
use std::{collections::HashSet, sync::Arc};

use datafusion::{
    arrow::{
        array::{
            Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Int64Array, PrimitiveArray,
            UInt64Array,
        },
        buffer::NullBuffer,
        compute::cast,
        datatypes::{
            ArrowPrimitiveType, DataType, Decimal128Type, Field, FieldRef, Int64Type, UInt64Type,
        },
    },
    common::{ScalarValue, exec_err, utils::SingleRowListArrayBuilder},
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

/// A partial sum as it passes from one phase to the next: 128 bits, so that partial totals
/// past the range whose final total is in it are kept.
const STATE_TYPE: DataType = DataType::Decimal128(38, 0);

#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct CheckedSum {
    inner: Sum,
}

/// The two result types checked here.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Signed,
    Unsigned,
}

impl Kind {
    fn of(return_type: &DataType) -> Option<Kind> {
        match return_type {
            DataType::Int64 => Some(Kind::Signed),
            DataType::UInt64 => Some(Kind::Unsigned),
            _ => None,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Kind::Signed => DataType::Int64,
            Kind::Unsigned => DataType::UInt64,
        }
    }

    /// A total as the result's type (NULL for none), or the error that it does not fit.
    fn scalar(self, total: Option<i128>) -> Result<ScalarValue> {
        match total {
            None => ScalarValue::try_from(&self.data_type()),
            Some(total) => ScalarValue::try_from_array(&self.array(&[total], None)?, 0),
        }
    }

    /// Totals (NULL where `nulls` says) as an array of the result's type.
    fn array(self, totals: &[i128], nulls: Option<NullBuffer>) -> Result<ArrayRef> {
        Ok(match self {
            Kind::Signed => {
                let values = narrowed::<i64>(totals, nulls.as_ref())?;
                Arc::new(Int64Array::new(values.into(), nulls))
            }
            Kind::Unsigned => {
                let values = narrowed::<u64>(totals, nulls.as_ref())?;
                Arc::new(UInt64Array::new(values.into(), nulls))
            }
        })
    }
}

/// Totals as `T`, 0 where NULL; a valid total that does not fit is the error.
fn narrowed<T: TryFrom<i128> + Default>(
    totals: &[i128],
    nulls: Option<&NullBuffer>,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(totals.len());
    for (i, &total) in totals.iter().enumerate() {
        match T::try_from(total) {
            Ok(v) => out.push(v),
            Err(_) if nulls.is_some_and(|n| n.is_null(i)) => out.push(T::default()),
            Err(_) => return out_of_range(total),
        }
    }
    Ok(out)
}

/// What a total out of range says.
fn out_of_range<T>(total: i128) -> Result<T> {
    exec_err!(
        "sum: the total ({total}) is past the 64-bit range and would be wrong; sum a \
         CAST(... AS DECIMAL(38, 0)) for the exact total"
    )
}

/// Partial sums, NULL where a partial saw no value.
fn states(totals: Vec<i128>, nulls: Option<NullBuffer>) -> ArrayRef {
    Arc::new(Decimal128Array::new(totals.into(), nulls).with_data_type(STATE_TYPE))
}

/// An input's (or a DISTINCT state's) values as 128-bit numbers: Int64 and UInt64 both fit.
fn widened(array: &ArrayRef) -> Result<Decimal128Array> {
    Ok(cast(array, &STATE_TYPE)?
        .as_primitive::<Decimal128Type>()
        .clone())
}

/// Which calls are checked here, and as what.
fn checked(args: &AccumulatorArgs) -> Option<Kind> {
    Kind::of(args.return_field.data_type())
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
        match (checked(&args), args.is_distinct) {
            (Some(kind), false) => Ok(Box::new(OneSum::new(kind))),
            (Some(kind), true) => Ok(Box::new(DistinctSum::new(kind))),
            (None, _) => self.inner.accumulator(args),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        match Kind::of(args.return_type()) {
            // DISTINCT keeps DataFusion's state: the list of values seen.
            Some(_) if !args.is_distinct => Ok(vec![Arc::new(Field::new(
                format!("{}[sum]", args.name),
                STATE_TYPE,
                true,
            ))]),
            _ => self.inner.state_fields(args),
        }
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        match checked(&args) {
            Some(kind) if !args.is_distinct => Ok(Box::new(GroupSums::new(kind))),
            _ => self.inner.create_groups_accumulator(args),
        }
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match checked(&args) {
            Some(kind) if !args.is_distinct => Ok(Box::new(OneSum::new(kind))),
            _ => self.inner.create_sliding_accumulator(args),
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

/// One group's sum: ungrouped, and over a window frame.
#[derive(Debug)]
struct OneSum {
    kind: Kind,
    total: i128,
    /// Values in the total; NULL when none.
    count: u64,
}

impl OneSum {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            total: 0,
            count: 0,
        }
    }

    /// Adds (`retract` false) or takes away an input or state array's values.
    fn add(&mut self, array: &ArrayRef, retract: bool) {
        let (total, count) = match array.data_type() {
            DataType::Int64 => total_of(array.as_primitive::<Int64Type>()),
            DataType::UInt64 => total_of(array.as_primitive::<UInt64Type>()),
            _ => total_of(array.as_primitive::<Decimal128Type>()),
        };
        match retract {
            false => {
                self.total += total;
                self.count += count;
            }
            true => {
                self.total -= total;
                self.count -= count;
            }
        }
    }
}

/// The total of an array's values in 128 bits, and how many there are.
fn total_of<T>(array: &PrimitiveArray<T>) -> (i128, u64)
where
    T: ArrowPrimitiveType,
    T::Native: Into<i128>,
{
    let count = (array.len() - array.null_count()) as u64;
    let total = match array.nulls() {
        None => array.values().iter().map(|&v| v.into()).sum(),
        Some(nulls) => array
            .values()
            .iter()
            .zip(nulls.iter())
            .map(|(&v, valid)| if valid { v.into() } else { 0 })
            .sum(),
    };
    (total, count)
}

impl Accumulator for OneSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], false);
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], true);
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.add(&states[0], false);
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let total = (self.count > 0).then_some(self.total);
        Ok(vec![ScalarValue::Decimal128(total, 38, 0)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.kind.scalar((self.count > 0).then_some(self.total))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

/// `sum(DISTINCT x)`: the values seen, summed when asked.
#[derive(Debug)]
struct DistinctSum {
    kind: Kind,
    seen: HashSet<i128>,
}

impl DistinctSum {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            seen: HashSet::new(),
        }
    }
}

impl Accumulator for DistinctSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.seen.extend(widened(&values[0])?.iter().flatten());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for list in states[0].as_list::<i32>().iter().flatten() {
            self.seen.extend(widened(&list)?.iter().flatten());
        }
        Ok(())
    }

    /// As DataFusion's: the values seen, as a list of the result's type.
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<i128> = self.seen.iter().copied().collect();
        let array = self.kind.array(&values, None)?;
        Ok(vec![
            SingleRowListArrayBuilder::new(array)
                .with_nullable(true)
                .build_list_scalar(),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let total = (!self.seen.is_empty()).then(|| self.seen.iter().sum());
        self.kind.scalar(total)
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.seen.capacity() * size_of::<i128>()
    }
}

/// Many groups' sums, kept as DataFusion's `PrimitiveGroupsAccumulator` keeps them, in 128
/// bits.
#[derive(Debug)]
struct GroupSums {
    kind: Kind,
    totals: Vec<i128>,
    nulls: NullState,
}

impl GroupSums {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            totals: Vec::new(),
            nulls: NullState::new(),
        }
    }

    fn add(
        &mut self,
        values: &ArrayRef,
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) {
        self.totals.resize(total_num_groups, 0);
        match values.data_type() {
            DataType::Int64 => self.add_typed(
                values.as_primitive::<Int64Type>(),
                group_indices,
                opt_filter,
            ),
            DataType::UInt64 => self.add_typed(
                values.as_primitive::<UInt64Type>(),
                group_indices,
                opt_filter,
            ),
            _ => self.add_typed(
                values.as_primitive::<Decimal128Type>(),
                group_indices,
                opt_filter,
            ),
        }
    }

    fn add_typed<T>(
        &mut self,
        values: &PrimitiveArray<T>,
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
    ) where
        T: ArrowPrimitiveType + Send,
        T::Native: Into<i128>,
    {
        let totals = &mut self.totals;
        let groups = totals.len();
        self.nulls
            .accumulate(group_indices, values, opt_filter, groups, |group, value| {
                totals[group] += value.into()
            });
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
        self.add(&values[0], group_indices, opt_filter, total_num_groups);
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(&values[0], group_indices, None, total_num_groups);
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let totals = emit_to.take_needed(&mut self.totals);
        let nulls = self.nulls.build(emit_to);
        self.kind.array(&totals, nulls)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let totals = emit_to.take_needed(&mut self.totals);
        let nulls = self.nulls.build(emit_to);
        Ok(vec![states(totals, nulls)])
    }

    /// Each row its own group: the value is its own sum, and a filtered-out row is NULL.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let input = widened(&values[0])?;
        let kept = opt_filter.map(|f| {
            NullBuffer::new(match f.nulls() {
                Some(valid) => f.values() & valid.inner(),
                None => f.values().clone(),
            })
        });
        let nulls = NullBuffer::union(input.nulls(), kept.as_ref());
        Ok(vec![states(input.values().to_vec(), nulls)])
    }

    fn size(&self) -> usize {
        self.totals.capacity() * size_of::<i128>() + self.nulls.size()
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
            format!("SELECT sum(DISTINCT x) AS s, count(DISTINCT g) AS n FROM {rows}"),
            format!("SELECT sum(CAST(x AS BIGINT UNSIGNED)) AS s FROM {rows} WHERE x > 0"),
            format!(
                "SELECT g, sum(CAST(x AS BIGINT UNSIGNED)) AS s FROM {rows} WHERE x > 0 \
                 GROUP BY g ORDER BY g"
            ),
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
            // Two DISTINCT aggregates keep sum's own DISTINCT accumulator.
            format!("SELECT sum(DISTINCT x) AS s, count(DISTINCT g) AS n FROM {big}"),
            "SELECT sum(CAST(x AS BIGINT UNSIGNED)) AS s FROM \
             (VALUES (18446744073709551615), (2)) t(x)"
                .to_string(),
        ] {
            let err = run(&session(true), &sql).await.unwrap_err().to_string();
            assert!(err.contains("is past the 64-bit range"), "{sql}: {err}");
        }
    }

    /// Only the total counts: values of both signs, and a window frame that briefly holds
    /// one value more, whose totals are in range, give those totals, as DataFusion's do.
    #[tokio::test]
    async fn a_total_in_range_is_given_whatever_the_order() {
        let mixed = "(VALUES (1, 9223372036854775807), (1, 1), (1, -1), (2, -5)) t(g, x)";
        // The third frame is 4, but adding 5 before taking the first value away passes
        // the range.
        let frames = "(VALUES (1, 9223372036854775807), (2, -1), (3, 5)) t(g, x)";
        for sql in [
            format!("SELECT sum(x) AS s FROM {mixed}"),
            format!("SELECT g, sum(x) AS s FROM {mixed} GROUP BY g ORDER BY g"),
            format!(
                "SELECT g, sum(x) OVER (ORDER BY g ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) \
                 AS s FROM {frames} ORDER BY g"
            ),
            "SELECT sum(x) OVER (ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS s FROM \
             (VALUES (1796000000000000000), (1796000000000000000), (1796000000000000000), \
             (1796000000000000000), (1796000000000000000), (1796000000000000000)) t(x)"
                .to_string(),
        ] {
            assert_eq!(
                run(&session(true), &sql).await.unwrap(),
                run(&session(false), &sql).await.unwrap(),
                "{sql}"
            );
        }
    }
}
