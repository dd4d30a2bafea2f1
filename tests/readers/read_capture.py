"""Reads every table of a capture with one independent reader, through the plain
`DIR/TABLE/*.parquet` glob (for pandas, the `DIR/TABLE` directory) that each
reader's users type, and prints JSON: rows per table, and
the type that reader gives the `ts` and `ts_ns` columns.

    python3 read_capture.py duckdb|pandas|polars|spark CAPTURE_DIR
"""
import json
import sys

TABLES = ["syscalls", "aggregates", "processes", "capture"]


def duckdb_reader(capture):
    import duckdb

    con = duckdb.connect()
    out = {"rows": {}, "types": {}}
    for t in TABLES:
        g = f"{capture}/{t}/*.parquet"
        out["rows"][t] = con.execute(f"SELECT count(*) FROM read_parquet('{g}')").fetchone()[0]
    g = f"{capture}/syscalls/*.parquet"
    out["types"] = {
        r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{g}')").fetchall()
    }
    # Rows are sorted by ts within each file, and ts is ts_ns cut to the microsecond.
    out["unsorted"] = con.execute(f"""
        SELECT count(*) FROM (
            SELECT ts_ns < lag(ts_ns) OVER (PARTITION BY filename ORDER BY file_row_number) AS back
            FROM read_parquet('{g}', filename = true, file_row_number = true))
        WHERE back""").fetchone()[0]
    out["ts_mismatch"] = con.execute(f"""
        SELECT count(*) FROM read_parquet('{g}')
        WHERE epoch_us(ts) <> ts_ns // 1000""").fetchone()[0]
    # With `record --sched`: the split, read back, or None when the capture has none.
    if "blocked_ns" in out["types"]:
        out["blocked_sum"] = con.execute(
            f"SELECT sum(blocked_ns) FROM read_parquet('{g}')").fetchone()[0]
    out["version"] = [
        r[0]
        for r in con.execute(f"""
            SELECT DISTINCT decode(value) FROM parquet_kv_metadata('{capture}/*/*.parquet')
            WHERE decode(key) = 'tracepost.schema_version'""").fetchall()
    ]
    return out


def pandas_reader(capture):
    import pandas as pd

    out = {"rows": {}, "types": {}}
    # pandas reads a table as a directory (pyarrow skips the hidden files being written).
    for t in TABLES:
        out["rows"][t] = len(pd.read_parquet(f"{capture}/{t}"))
    df = pd.read_parquet(f"{capture}/syscalls")
    out["types"] = {c: str(df[c].dtype) for c in ["ts", "ts_ns"]}
    return out


def polars_reader(capture):
    import polars as pl

    out = {"rows": {}, "types": {}}
    for t in TABLES:
        out["rows"][t] = pl.scan_parquet(f"{capture}/{t}/*.parquet").select(pl.len()).collect().item()
    schema = pl.scan_parquet(f"{capture}/syscalls/*.parquet").collect_schema()
    out["types"] = {c: str(schema[c]) for c in ["ts", "ts_ns"]}
    return out


def spark_reader(capture):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("tracepost-reader-test")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    out = {"rows": {}, "types": {}}
    for t in TABLES:
        out["rows"][t] = spark.read.parquet(f"{capture}/{t}/*.parquet").count()
    df = spark.read.parquet(f"{capture}/syscalls/*.parquet")
    wanted = ("ts", "ts_ns", "runq_ns", "waker_comm")
    out["types"] = {f.name: f.dataType.simpleString() for f in df.schema.fields if f.name in wanted}
    # Read the values, not just the count: a type Spark cannot decode fails here.
    out["max_ts"] = str(df.agg({"ts": "max"}).collect()[0][0])
    if "runq_ns" in out["types"]:
        out["blocked_sum"] = df.agg({"blocked_ns": "sum"}).collect()[0][0]
    spark.stop()
    return out


if __name__ == "__main__":
    reader, capture = sys.argv[1], sys.argv[2]
    result = {
        "duckdb": duckdb_reader,
        "pandas": pandas_reader,
        "polars": polars_reader,
        "spark": spark_reader,
    }[reader](capture)
    print(json.dumps(result))
