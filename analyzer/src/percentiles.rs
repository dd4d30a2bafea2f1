//! `latency_percentiles(x)`: the 50th, 90th and 99th percentiles of a group in one pass.
//!
//! DataFusion's `percentile_cont` is exact, but each call keeps its own copy of every value
//! of the group, passes it from the partial to the final aggregation, and selects in it.
//! A summary asks for three percentiles of the same column, so it paid for that three
//! times: on 100M calls, 11 s and 4.7 GB. One accumulator that keeps the values once and
//! selects the three ranks in the same buffer gives the same numbers for a third of the cost.
//!
//! The numbers are `CAST(percentile_cont(x, p) AS BIGINT)` exactly: linear interpolation
//! between the closest ranks of p × (n − 1), with DataFusion's quantized weight, truncated.
use std::{borrow::BorrowMut, sync::Arc};

use datafusion::{
    arrow::{
        array::{
            Array, ArrayRef, AsArray, BinaryViewBuilder, BooleanArray, ByteView, Int64Array,
            StructArray,
        },
        buffer::{Buffer, NullBuffer},
        datatypes::{DataType, Field, FieldRef, Fields, Int64Type},
    },
    common::{ScalarValue, exec_err},
    error::Result,
    logical_expr::{
        Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature,
        Volatility,
        function::{AccumulatorArgs, StateFieldsArgs},
    },
};

/// The ranks reported, and the names of the struct's fields.
const RANKS: [(f64, &str); 3] = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")];

/// Matches DataFusion's `percentile_cont`, which quantizes the interpolation weight.
const INTERPOLATION_PRECISION: f64 = 1_000_000.0;

pub fn udaf() -> AggregateUDF {
    AggregateUDF::from(LatencyPercentiles {
        signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
    })
}

fn result_fields() -> Fields {
    RANKS
        .iter()
        .map(|(_, name)| Field::new(*name, DataType::Int64, true))
        .collect()
}

fn result_type() -> DataType {
    DataType::Struct(result_fields())
}

/// A group's values as the bytes of one binary view. See [`to_state`].
fn state_type() -> DataType {
    DataType::BinaryView
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LatencyPercentiles {
    signature: Signature,
}

impl AggregateUDFImpl for LatencyPercentiles {
    fn name(&self) -> &str {
        "latency_percentiles"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(result_type())
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(OneGroup::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[values]", args.name),
            state_type(),
            true,
        ))])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Groups::default()))
    }
}

/// The three percentiles of `values`, which it reorders. None when empty.
fn percentiles(values: &mut [i64]) -> Option<[i64; 3]> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mut out = [0; 3];
    // Ranks only grow, so each selection works on the part right of the previous one.
    let mut done = 0;
    for (slot, (p, _)) in out.iter_mut().zip(RANKS) {
        let index = p * (n - 1) as f64;
        let lower = index.floor() as usize;
        let (_, &mut low, right) = values[done..].select_nth_unstable(lower - done);
        let value = if index == lower as f64 {
            low
        } else {
            // The next rank is the smallest value right of `lower`.
            let high = *right.iter().min().expect("ceil(index) < n");
            let fraction = index - lower as f64;
            let weight =
                (fraction * INTERPOLATION_PRECISION) as usize as f64 / INTERPOLATION_PRECISION;
            (low as f64 + (high as f64 - low as f64) * weight) as i64
        };
        *slot = value;
        done = lower;
    }
    Some(out)
}

/// One struct row per group: the percentiles, or NULL for a group with no values. Selecting
/// reorders each group's values in place, which loses none of them.
fn evaluate_groups<V: BorrowMut<Vec<i64>>>(groups: impl Iterator<Item = V>) -> ArrayRef {
    let mut columns: [Vec<i64>; 3] = Default::default();
    let mut valid = Vec::new();
    for mut values in groups {
        let found = percentiles(values.borrow_mut());
        valid.push(found.is_some());
        for (column, value) in columns.iter_mut().zip(found.unwrap_or_default()) {
            column.push(value);
        }
    }
    let nulls = NullBuffer::from(valid);
    let arrays = columns
        .into_iter()
        .map(|c| Arc::new(Int64Array::new(c.into(), Some(nulls.clone()))) as ArrayRef)
        .collect();
    Arc::new(StructArray::new(result_fields(), arrays, Some(nulls)))
}

/// A group of at least this many bytes of values keeps its buffer as a block of its own.
/// Smaller groups are copied into shared blocks: every slice and `take` of the array
/// carries all of its blocks, so a block per group made many small groups cost the square
/// of their number (4M groups: 8 s as a list, 182 s with a block each).
/// Small in unit tests, so that their groups take every path.
const OWN_BLOCK_BYTES: usize = if cfg!(test) { 4096 } else { 1 << 20 };

/// The size of a shared block.
const SHARED_BLOCK_BYTES: usize = if cfg!(test) { 16384 } else { 1 << 24 };

/// The length in bytes of one group's state, which a binary view holds in a u32 (and a
/// block at most u32::MAX - 1 bytes).
fn state_len(values: &[i64]) -> Result<u32> {
    match u32::try_from(std::mem::size_of_val(values)) {
        Ok(len) if len < u32::MAX => Ok(len),
        _ => exec_err!(
            "latency_percentiles: {} values of one group in one partition are more than one \
             state holds (4 GiB); narrow the capture with --since/--until or --pid",
            values.len()
        ),
    }
}

/// Every group's values as one binary view each: the state passed from partial to final.
///
/// A large group's buffer becomes a block of the array as it is, without a copy, and the
/// hash repartition between the two phases then moves 16-byte views. As a list, the values
/// were copied once into the list and again, growing, by each `take` of the repartition: on
/// 100M events that copying was most of `summary`'s time (BENCHMARKS.md, "Strings read as
/// views, percentiles without copies"). Native byte order: every node of a cluster runs
/// this same binary.
fn to_state(groups: Vec<Vec<i64>>) -> Result<ArrayRef> {
    /// Where a group's values went: shared blocks are numbered first, then own ones.
    enum At {
        /// No value, or one: a view holds up to 12 bytes inline.
        Inline(Option<i64>),
        Shared {
            block: usize,
            offset: u32,
            len: u32,
        },
        Own {
            block: usize,
            len: u32,
        },
    }
    let (mut own, mut full): (Vec<Buffer>, Vec<Buffer>) = Default::default();
    let mut shared: Vec<i64> = Vec::new();
    let mut places = Vec::with_capacity(groups.len());
    for values in groups {
        let bytes = std::mem::size_of_val(values.as_slice());
        // Inline without an allocation each: many groups hold one call.
        if values.len() <= 1 {
            places.push(At::Inline(values.first().copied()));
            continue;
        }
        let len = state_len(&values)?;
        if bytes >= OWN_BLOCK_BYTES {
            places.push(At::Own {
                block: own.len(),
                len,
            });
            own.push(Buffer::from_vec(values));
            continue;
        }
        if std::mem::size_of_val(shared.as_slice()) + bytes > SHARED_BLOCK_BYTES {
            full.push(Buffer::from_vec(std::mem::take(&mut shared)));
        }
        let offset = std::mem::size_of_val(shared.as_slice());
        shared.extend_from_slice(&values);
        places.push(At::Shared {
            block: full.len(),
            offset: u32::try_from(offset).expect("a shared block is under 4 GiB"),
            len,
        });
    }
    if !shared.is_empty() {
        full.push(Buffer::from_vec(shared));
    }
    let shared_blocks = full.len();
    let mut builder = BinaryViewBuilder::with_capacity(places.len());
    for block in full.into_iter().chain(own) {
        builder.append_block(block);
    }
    let id = |block: usize| u32::try_from(block).expect("blocks fit u32");
    for place in places {
        match place {
            At::Inline(None) => builder.append_value([]),
            At::Inline(Some(value)) => builder.append_value(value.to_ne_bytes()),
            At::Shared { block, offset, len } => builder.try_append_view(id(block), offset, len)?,
            At::Own { block, len } => builder.try_append_view(id(shared_blocks + block), 0, len)?,
        }
    }
    Ok(Arc::new(builder.finish()))
}

/// Appends the values a state holds.
fn extend_from_state(into: &mut Vec<i64>, bytes: &[u8]) {
    into.reserve(bytes.len() / 8);
    into.extend(
        bytes
            .chunks_exact(8)
            .map(|b| i64::from_ne_bytes(b.try_into().expect("chunks of 8"))),
    );
}

#[derive(Debug, Default)]
struct Groups {
    values: Vec<Vec<i64>>,
    /// Large groups' values merged from the partial phase, left in the state arrays'
    /// blocks they came in, by group. Each group is copied once, into the buffer it is
    /// selected in, one group at a time at `evaluate`. Copied as they were merged, every
    /// value was held twice at the peak: on 100M calls 1.6 GB, and fresh pages cost this
    /// VM more just after another process freed memory (BENCHMARKS.md). A list, not a
    /// slot per group: a million small groups then cost nothing more.
    received: Vec<(usize, Buffer)>,
}

impl Groups {
    /// The groups `emit_to` names, each with its received values appended as it is
    /// reached.
    fn take(&mut self, emit_to: EmitTo) -> impl Iterator<Item = Vec<i64>> + use<> {
        let values = emit_to.take_needed(&mut self.values);
        let n = values.len();
        let (mut taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.received)
            .into_iter()
            .partition(|(group, _)| *group < n);
        // The groups left are numbered from 0 again.
        self.received = kept.into_iter().map(|(g, b)| (g - n, b)).collect();
        taken.sort_by_key(|(group, _)| *group);
        let mut taken = taken.into_iter().peekable();
        values
            .into_iter()
            .enumerate()
            .map(move |(group, mut values)| {
                while let Some((_, block)) = taken.next_if(|(at, _)| *at == group) {
                    extend_from_state(&mut values, block.as_slice());
                }
                values
            })
    }
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.values.resize_with(total_num_groups, Vec::new);
        let input = values[0].as_primitive::<Int64Type>();
        let keep = |row: usize| {
            input.is_valid(row) && opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row))
        };
        if input.null_count() == 0 && opt_filter.is_none() {
            for (&group, &value) in group_indices.iter().zip(input.values()) {
                self.values[group].push(value);
            }
        } else {
            for (row, (&group, &value)) in group_indices.iter().zip(input.values()).enumerate() {
                if keep(row) {
                    self.values[group].push(value);
                }
            }
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.values.resize_with(total_num_groups, Vec::new);
        let states = values[0].as_binary_view();
        for (row, &group) in group_indices.iter().enumerate() {
            if !states.is_valid(row) {
                continue;
            }
            let view = ByteView::from(states.views()[row]);
            // Only what had a block of its own is kept; small groups are copied as before.
            if (view.length as usize) < OWN_BLOCK_BYTES {
                extend_from_state(&mut self.values[group], states.value(row));
            } else {
                let block = &states.data_buffers()[view.buffer_index as usize];
                let slice = block.slice_with_length(view.offset as usize, view.length as usize);
                self.received.push((group, slice));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(evaluate_groups(self.take(emit_to)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![to_state(self.take(emit_to).collect())?])
    }

    /// Each row as a group of its own, for when DataFusion skips the partial aggregation.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let input = values[0].as_primitive::<Int64Type>();
        let mut builder = BinaryViewBuilder::with_capacity(input.len());
        for (row, value) in input.values().iter().enumerate() {
            if input.is_valid(row) && opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row)) {
                builder.append_value(value.to_ne_bytes());
            } else {
                builder.append_null();
            }
        }
        Ok(vec![Arc::new(builder.finish())])
    }

    /// The received blocks are counted too: they are held until `evaluate`.
    fn size(&self) -> usize {
        self.values.capacity() * size_of::<Vec<i64>>()
            + self.values.iter().map(|v| v.capacity() * 8).sum::<usize>()
            + self.received.capacity() * size_of::<(usize, Buffer)>()
            + self.received.iter().map(|(_, b)| b.len()).sum::<usize>()
    }
}

/// The ungrouped form (`SELECT latency_percentiles(duration_ns) FROM syscalls`).
#[derive(Debug, Default)]
struct OneGroup {
    values: Vec<i64>,
}

impl Accumulator for OneGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let input = values[0].as_primitive::<Int64Type>();
        self.values.extend(input.iter().flatten());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for state in states[0].as_binary_view().iter().flatten() {
            extend_from_state(&mut self.values, state);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        state_len(&self.values)?;
        let bytes: Vec<u8> = self.values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        Ok(vec![ScalarValue::BinaryView(Some(bytes))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let array = evaluate_groups(std::iter::once(&mut self.values));
        ScalarValue::try_from_array(&array, 0)
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.values.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use datafusion::{
        arrow::record_batch::RecordBatch,
        datasource::MemTable,
        prelude::{SessionConfig, SessionContext},
    };

    use super::*;

    /// The oracle is DataFusion's own `percentile_cont`, on groups of every small size and
    /// on larger ones with repeats, nulls and negative values.
    #[tokio::test]
    async fn equals_percentile_cont_cast_to_bigint() {
        let mut groups = Vec::new();
        let mut values = Vec::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for group in 0..60i64 {
            let size = if group < 20 {
                group
            } else {
                (next() % 5000) as i64
            };
            for _ in 0..size {
                groups.push(group);
                let v = match next() % 10 {
                    0 => None,
                    1 => Some(-((next() % 1000) as i64)),
                    2..=4 => Some((next() % 7) as i64),
                    _ => Some((next() % 5_000_000_000) as i64),
                };
                values.push(v);
            }
        }
        let batch = RecordBatch::try_from_iter([
            ("g", Arc::new(Int64Array::from(groups)) as ArrayRef),
            ("v", Arc::new(Int64Array::from(values)) as ArrayRef),
        ])
        .unwrap();
        // Three partitions, so that the values pass from partial to final aggregation as
        // state; and again with partial aggregation skipped, each row its own state. There
        // `percentile_cont` itself panics (DataFusion 55), so the oracle for that path is
        // the first answer.
        let parts: Vec<Vec<RecordBatch>> = (0..3)
            .map(|i| {
                let n = batch.num_rows();
                vec![batch.slice(i * n / 3, (i + 1) * n / 3 - i * n / 3)]
            })
            .collect();
        let mut answers = Vec::new();
        for skip_partial in [false, true] {
            let mut config = SessionConfig::new().with_target_partitions(3);
            if skip_partial {
                let options = &mut config.options_mut().execution;
                options.skip_partial_aggregation_probe_rows_threshold = 1;
                options.skip_partial_aggregation_probe_ratio_threshold = 0.0;
            }
            let ctx = SessionContext::new_with_config(config);
            ctx.register_udaf(udaf());
            let table = MemTable::try_new(batch.schema(), parts.clone()).unwrap();
            ctx.register_table("t", Arc::new(table)).unwrap();
            if !skip_partial {
                agrees_with_percentile_cont(&ctx).await;
            }
            let sql = "SELECT g, latency_percentiles(v) AS q FROM t GROUP BY g ORDER BY g";
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            answers.push(
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                    .unwrap()
                    .to_string(),
            );
        }
        assert_eq!(answers[0], answers[1]);
        assert!(answers[0].lines().count() > 60);
    }

    async fn agrees_with_percentile_cont(ctx: &SessionContext) {
        let sql = "WITH a AS (
              SELECT g, latency_percentiles(v) AS q,
                     CAST(percentile_cont(v, 0.5) AS BIGINT) AS p50,
                     CAST(percentile_cont(v, 0.9) AS BIGINT) AS p90,
                     CAST(percentile_cont(v, 0.99) AS BIGINT) AS p99
              FROM t GROUP BY g)
            SELECT count(*) FROM a
            WHERE (get_field(q, 'p50') IS NOT DISTINCT FROM p50)
              AND (get_field(q, 'p90') IS NOT DISTINCT FROM p90)
              AND (get_field(q, 'p99') IS NOT DISTINCT FROM p99)";
        let same = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let groups_seen = ctx
            .sql("SELECT count(DISTINCT g) FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let count = |b: &[RecordBatch]| b[0].column(0).as_primitive::<Int64Type>().value(0);
        assert_eq!(count(&same), count(&groups_seen));
        assert!(count(&same) > 50);

        let whole = "SELECT get_field(latency_percentiles(v), 'p99') = CAST(percentile_cont(v, 0.99) AS BIGINT)
                     FROM t";
        let whole = ctx.sql(whole).await.unwrap().collect().await.unwrap();
        assert!(whole[0].column(0).as_boolean().value(0));
    }

    /// Large groups merged from partial states are kept as blocks until evaluated; emitted
    /// in two parts, each group still has all of its values and only its own.
    #[test]
    fn merged_blocks_follow_their_groups_through_a_partial_emit() {
        let group = |from: i64, n: i64| (from..from + n).rev().collect::<Vec<i64>>();
        // 600 values are 4,800 bytes: a block of their own in tests.
        let partial = vec![group(0, 600), group(1000, 3), group(5000, 700), vec![]];
        let mut expected: Vec<Vec<i64>> = partial.clone();
        let state = to_state(partial.clone()).unwrap();
        let mut groups = Groups::default();
        // Twice: each group gets the same values from two partial phases.
        for _ in 0..2 {
            groups
                .merge_batch(std::slice::from_ref(&state), &[0, 1, 2, 3], 4)
                .unwrap();
        }
        assert_eq!(groups.received.len(), 4, "the two large groups, twice");
        for e in &mut expected {
            let copy = e.clone();
            e.extend(copy);
        }
        let first = groups.evaluate(EmitTo::First(1)).unwrap();
        let rest = groups.evaluate(EmitTo::All).unwrap();
        let want = evaluate_groups(expected.into_iter());
        assert_eq!(first.as_ref(), want.slice(0, 1).as_ref());
        assert_eq!(rest.as_ref(), want.slice(1, 3).as_ref());
    }

    #[test]
    fn exact_ranks_and_interpolation() {
        assert_eq!(percentiles(&mut []), None);
        assert_eq!(percentiles(&mut [7]), Some([7, 7, 7]));
        // n = 101: every rank falls on a value.
        let mut v: Vec<i64> = (0..=100).rev().collect();
        assert_eq!(percentiles(&mut v), Some([50, 90, 99]));
        // n = 2: 0.5 → halfway, 0.9 → 90% of the way, 0.99 → 99%.
        assert_eq!(percentiles(&mut [0, 1000]), Some([500, 900, 990]));
    }
}
