//! The fleet table's data files: [`FleetRow`]s as Parquet (Arrow schema [`schema`], Snappy),
//! and back. The partition columns (`day`, `station`) are not in the files: Delta Lake keeps
//! them in the log and in the files' paths.
//!
//! Invariants: [`decode`] returns an error, never panics, on a hostile or foreign file: a column missing or of
//! another type, a value out of range, is an [`Error::Invalid`] naming the file; a file that
//! [`encode`] wrote decodes to the same rows (tested).

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Int32Array, ListArray, PrimitiveArray, RecordBatch, StringArray,
    StructArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::row::FleetRow;
use crate::error::{Error, Result};
use crate::meta::GpsFix;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new("element", DataType::Utf8, true)))
}

fn fix_fields() -> Fields {
    Fields::from(vec![
        Field::new("time", ts(), true),
        Field::new("lat_e7", DataType::Int32, true),
        Field::new("lon_e7", DataType::Int32, true),
    ])
}

/// The columns of a data file, in order (docs/FORMAT.md, "The fleet table").
pub fn schema() -> Arc<Schema> {
    let f = |n: &str, t: DataType| Field::new(n, t, true);
    Arc::new(Schema::new(vec![
        f("store_id", DataType::Utf8),
        f("segment_id", DataType::Int64),
        f("officer", DataType::Utf8),
        f("device", DataType::Utf8),
        f("start", ts()),
        f("end", ts()),
        f("bytes", DataType::Int64),
        f("sha256", DataType::Utf8),
        f("categories", string_list()),
        f("cases", string_list()),
        f("tags", string_list()),
        f("holds", string_list()),
        f("tier", DataType::Utf8),
        f("cloud_key", DataType::Utf8),
        f("deleted", DataType::Boolean),
        f("gps_fixes", DataType::Int64),
        f("min_lat", DataType::Float64),
        f("max_lat", DataType::Float64),
        f("min_lon", DataType::Float64),
        f("max_lon", DataType::Float64),
        f(
            "h3_cells",
            DataType::List(Arc::new(Field::new("element", DataType::Int64, true))),
        ),
        f(
            "track",
            DataType::List(Arc::new(Field::new(
                "element",
                DataType::Struct(fix_fields()),
                true,
            ))),
        ),
    ]))
}

fn invalid(what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("fleet data file: {what}"))
}

fn strings(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

fn string_lists<'a>(lists: impl Iterator<Item = &'a Vec<String>>) -> ArrayRef {
    let field = Field::new("element", DataType::Utf8, true);
    let mut b = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(field));
    for l in lists {
        for v in l {
            b.values().append_value(v);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn times(values: impl Iterator<Item = i64>) -> ArrayRef {
    let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for v in values {
        b.append_value(v);
    }
    Arc::new(b.finish())
}

fn longs(values: impl Iterator<Item = i64>) -> ArrayRef {
    let mut b = Int64Builder::new();
    for v in values {
        b.append_value(v);
    }
    Arc::new(b.finish())
}

fn degrees(values: impl Iterator<Item = Option<i32>>) -> ArrayRef {
    let mut b = Float64Builder::new();
    for v in values {
        b.append_option(v.map(|e7| f64::from(e7) / 1e7));
    }
    Arc::new(b.finish())
}

/// The resolution of the `h3_cells` column (docs/FORMAT.md §24): cells of about 0.1 km²
/// (edge about 174 m).
pub const H3_RESOLUTION: h3o::Resolution = h3o::Resolution::Nine;

/// The distinct H3 cells (resolution [`H3_RESOLUTION`]) of a track's fixes, sorted.
pub fn h3_cells(track: &[crate::meta::GpsFix]) -> Vec<i64> {
    let mut cells: Vec<i64> = track
        .iter()
        .filter_map(|f| {
            let ll = h3o::LatLng::new(f64::from(f.lat_e7) / 1e7, f64::from(f.lon_e7) / 1e7).ok()?;
            i64::try_from(u64::from(ll.to_cell(H3_RESOLUTION))).ok()
        })
        .collect();
    cells.sort_unstable();
    cells.dedup();
    cells
}

fn cell_lists(rows: &[FleetRow]) -> ArrayRef {
    let field = Field::new("element", DataType::Int64, true);
    let mut b = ListBuilder::new(Int64Builder::new()).with_field(Arc::new(field));
    for r in rows {
        b.values().append_slice(&h3_cells(&r.track));
        b.append(true);
    }
    Arc::new(b.finish())
}

fn i64_of(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| invalid(format!("{what} {v} does not fit a signed 64-bit column")))
}

/// `rows` as one Parquet file.
pub fn encode(rows: &[FleetRow]) -> Result<Bytes> {
    let boxes: Vec<_> = rows.iter().map(FleetRow::bbox).collect();
    let ids = rows
        .iter()
        .map(|r| i64_of(r.segment_id, "segment id"))
        .collect::<Result<Vec<_>>>()?;
    let sizes = rows
        .iter()
        .map(|r| i64_of(r.bytes, "length"))
        .collect::<Result<Vec<_>>>()?;
    let mut deleted = BooleanBuilder::new();
    rows.iter().for_each(|r| deleted.append_value(r.deleted));
    let mut offsets = vec![0i32];
    let mut n = 0usize;
    for r in rows {
        n += r.track.len();
        offsets.push(i32::try_from(n).map_err(|_| invalid("more than 2^31 fixes in one file"))?);
    }
    let fixes = rows.iter().flat_map(|r| r.track.iter());
    let fix_columns: Vec<ArrayRef> = vec![
        times(fixes.clone().map(|f| f.time_us)),
        Arc::new(Int32Array::from_iter_values(
            fixes.clone().map(|f| f.lat_e7),
        )),
        Arc::new(Int32Array::from_iter_values(fixes.map(|f| f.lon_e7))),
    ];
    let fix_struct = StructArray::try_new(fix_fields(), fix_columns, None).map_err(invalid)?;
    let track = ListArray::try_new(
        Arc::new(Field::new("element", DataType::Struct(fix_fields()), true)),
        arrow_buffer::OffsetBuffer::new(offsets.into()),
        Arc::new(fix_struct),
        None,
    )
    .map_err(invalid)?;
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| Some(r.store_id.clone()))),
        longs(ids.into_iter()),
        strings(rows.iter().map(|r| Some(r.officer.clone()))),
        strings(rows.iter().map(|r| Some(r.device.clone()))),
        times(rows.iter().map(|r| r.start_us)),
        times(rows.iter().map(|r| r.end_us)),
        longs(sizes.into_iter()),
        strings(rows.iter().map(|r| Some(r.sha256.clone()))),
        string_lists(rows.iter().map(|r| &r.categories)),
        string_lists(rows.iter().map(|r| &r.cases)),
        string_lists(rows.iter().map(|r| &r.tags)),
        string_lists(rows.iter().map(|r| &r.holds)),
        strings(rows.iter().map(|r| Some(r.tier.clone()))),
        strings(rows.iter().map(|r| r.cloud_key.clone())),
        Arc::new(deleted.finish()),
        longs(rows.iter().map(|r| r.track.len() as i64)),
        degrees(boxes.iter().map(|b| b.map(|b| b.0))),
        degrees(boxes.iter().map(|b| b.map(|b| b.2))),
        degrees(boxes.iter().map(|b| b.map(|b| b.1))),
        degrees(boxes.iter().map(|b| b.map(|b| b.3))),
        cell_lists(rows),
        Arc::new(track),
    ];
    let batch = RecordBatch::try_new(schema(), columns).map_err(invalid)?;
    parquet_bytes(&batch).map_err(invalid)
}

/// `batch` as one Parquet file (Snappy, "created by" footage): the data files and the log's
/// checkpoints (`checkpoint.rs`).
pub(super) fn parquet_bytes(batch: &RecordBatch) -> parquet::errors::Result<Bytes> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("footage {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    Ok(Bytes::from(out))
}

fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| invalid(format!("column {name} is missing or of another type")))
}

fn text(a: &StringArray, i: usize, name: &str) -> Result<String> {
    if a.is_null(i) {
        return Err(invalid(format!("{name} is null")));
    }
    Ok(a.value(i).to_string())
}

fn list_of(a: &ListArray, i: usize, name: &str) -> Result<Vec<String>> {
    if a.is_null(i) {
        return Ok(Vec::new());
    }
    let v = a.value(i);
    let s = v
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| invalid(format!("{name} is not a list of strings")))?;
    (0..s.len()).map(|j| text(s, j, name)).collect()
}

fn value<T: arrow_array::ArrowPrimitiveType>(
    a: &PrimitiveArray<T>,
    i: usize,
    name: &str,
) -> Result<T::Native> {
    if a.is_null(i) {
        return Err(invalid(format!("{name} is null")));
    }
    Ok(a.value(i))
}

fn track_of(a: &ListArray, i: usize) -> Result<Vec<GpsFix>> {
    if a.is_null(i) {
        return Ok(Vec::new());
    }
    let v = a.value(i);
    let s = v
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or_else(|| invalid("track is not a list of structs"))?;
    let part = |name: &str| {
        s.column_by_name(name)
            .ok_or_else(|| invalid(format!("track.{name} is missing")))
    };
    let (t, lat, lon) = (part("time")?, part("lat_e7")?, part("lon_e7")?);
    let t = t
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or_else(|| invalid("track.time is not a µs timestamp"))?;
    let lat = lat
        .as_any()
        .downcast_ref::<Int32Array>()
        .ok_or_else(|| invalid("track.lat_e7 is not int32"))?;
    let lon = lon
        .as_any()
        .downcast_ref::<Int32Array>()
        .ok_or_else(|| invalid("track.lon_e7 is not int32"))?;
    (0..s.len())
        .map(|j| {
            let fix = GpsFix {
                time_us: value::<TimestampMicrosecondType>(t, j, "track.time")?,
                lat_e7: value::<Int32Type>(lat, j, "track.lat_e7")?,
                lon_e7: value::<Int32Type>(lon, j, "track.lon_e7")?,
            };
            if !(-900_000_000..=900_000_000).contains(&fix.lat_e7)
                || !(-1_800_000_000..=1_800_000_000).contains(&fix.lon_e7)
            {
                return Err(invalid(format!(
                    "a fix off the globe ({}, {})",
                    fix.lat_e7, fix.lon_e7
                )));
            }
            Ok(fix)
        })
        .collect()
}

/// The rows of a data file of station `station`.
#[cfg(test)]
pub fn decode(data: Bytes, station: &str) -> Result<Vec<FleetRow>> {
    decode_with(data, station, true)
}

/// The rows of a data file of station `station`; without `with_track`, the `track` column
/// is not read (most of a file's bytes) and every row's track is empty. The `parquet` crate
/// panics on some damaged files (a division by zero in its byte-array reader, found by the
/// tests' bit flips): such a panic is caught here and becomes an error like any other damage.
pub fn decode_with(data: Bytes, station: &str, with_track: bool) -> Result<Vec<FleetRow>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_rows(data, station, with_track)
    }))
    .unwrap_or_else(|_| Err(invalid("damaged Parquet (the decoder failed)")))
}

fn decode_rows(data: Bytes, station: &str, with_track: bool) -> Result<Vec<FleetRow>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(data).map_err(invalid)?;
    // `h3_cells` is for other engines (derived from the track); `track` only when asked.
    let roots: Vec<usize> = (builder.schema().fields().iter().enumerate())
        .filter(|(_, f)| f.name() != "h3_cells" && (with_track || f.name() != "track"))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let builder = builder.with_projection(mask);
    let reader = builder.build().map_err(invalid)?;
    let mut rows = Vec::new();
    for batch in reader {
        let b = batch.map_err(invalid)?;
        let store_id = column::<StringArray>(&b, "store_id")?;
        let id = column::<PrimitiveArray<Int64Type>>(&b, "segment_id")?;
        let officer = column::<StringArray>(&b, "officer")?;
        let device = column::<StringArray>(&b, "device")?;
        let start = column::<TimestampMicrosecondArray>(&b, "start")?;
        let end = column::<TimestampMicrosecondArray>(&b, "end")?;
        let bytes = column::<PrimitiveArray<Int64Type>>(&b, "bytes")?;
        let sha = column::<StringArray>(&b, "sha256")?;
        let lists: Vec<&ListArray> = ["categories", "cases", "tags", "holds"]
            .iter()
            .map(|n| column::<ListArray>(&b, n))
            .collect::<Result<_>>()?;
        let tier = column::<StringArray>(&b, "tier")?;
        let key = column::<StringArray>(&b, "cloud_key")?;
        let deleted = column::<BooleanArray>(&b, "deleted")?;
        let track = if with_track {
            Some(column::<ListArray>(&b, "track")?)
        } else {
            None
        };
        for i in 0..b.num_rows() {
            let unsigned = |v: i64, name: &str| {
                u64::try_from(v).map_err(|_| invalid(format!("{name} {v} is negative")))
            };
            rows.push(FleetRow {
                station: station.to_string(),
                store_id: text(store_id, i, "store_id")?,
                segment_id: unsigned(value(id, i, "segment_id")?, "segment_id")?,
                officer: text(officer, i, "officer")?,
                device: text(device, i, "device")?,
                start_us: value(start, i, "start")?,
                end_us: value(end, i, "end")?,
                bytes: unsigned(value(bytes, i, "bytes")?, "bytes")?,
                sha256: text(sha, i, "sha256")?,
                categories: list_of(lists[0], i, "categories")?,
                cases: list_of(lists[1], i, "cases")?,
                tags: list_of(lists[2], i, "tags")?,
                holds: list_of(lists[3], i, "holds")?,
                tier: text(tier, i, "tier")?,
                cloud_key: (!key.is_null(i)).then(|| key.value(i).to_string()),
                deleted: !deleted.is_null(i) && deleted.value(i),
                track: match track {
                    Some(t) => track_of(t, i)?,
                    None => Vec::new(),
                },
            });
        }
    }
    Ok(rows)
}
