"""Rewrites a capture into schema version 1, as recorders before version 2 wrote it: every
timestamp in nanoseconds (`syscalls.ts` from the exact `ts_ns`), no `ts_ns` column, and
`tracepost.schema_version` 1. pyarrow does the writing, so the files are not ours.

    python3 to_v1.py SRC_CAPTURE DST_CAPTURE
"""
import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

src, dst = sys.argv[1], sys.argv[2]
for table in sorted(os.listdir(src)):
    if not os.path.isdir(os.path.join(src, table)):
        continue
    os.makedirs(os.path.join(dst, table), exist_ok=True)
    for name in sorted(os.listdir(os.path.join(src, table))):
        if not name.endswith(".parquet"):
            continue
        t = pq.read_table(os.path.join(src, table, name))
        columns, fields = [], []
        for field, column in zip(t.schema, t.columns):
            if field.name == "ts_ns":
                continue
            if field.name == "ts" and table == "syscalls":
                column = pc.cast(t.column("ts_ns"), pa.timestamp("ns", tz="UTC"))
            elif pa.types.is_timestamp(field.type):
                column = pc.cast(column, pa.timestamp("ns", tz="UTC"))
            columns.append(column)
            fields.append(pa.field(field.name, column.type, field.nullable))
        metadata = {b"tracepost.schema_version": b"1", b"tracepost.table": table.encode()}
        out = pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=metadata))
        pq.write_table(out, os.path.join(dst, table, name), compression="zstd")
