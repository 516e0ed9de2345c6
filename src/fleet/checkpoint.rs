//! Delta Lake checkpoints of the fleet table: at each log compaction's version y, the same
//! reconciled actions as one Parquet file, `_delta_log/<y, 20 digits>.checkpoint.parquet`
//! (Delta's classic single-file checkpoint), and `_delta_log/_last_checkpoint` naming it.
//! Engines (Spark, DuckDB, the `deltalake` package) start from the last checkpoint and
//! replay only the commits after it, so opening the table stays cheap however many
//! publishes the force has made; footage itself starts from the compaction of the same
//! version (`compact.rs`), found through `_last_checkpoint` without listing the log.
//!
//! Invariants: a checkpoint holds exactly the lines of [`compact::reconciled`] (protocol,
//! metadata, young tombstones, every live `add` with its tags and statistics), so an engine
//! starting from it sees the table that replaying commits 0 to y gives; it is written whole
//! by one put before `_last_checkpoint` names it; a publisher that finds a newer pointer
//! leaves it (two racing within one read-then-write could still move it back, 100 commits
//! apart: object_store's local file system has no conditional overwrite); a checkpoint or
//! pointer that is missing, old or damaged only costs a reader the replay of more commits
//! (footage's reader falls back to listing the log when the log after it does not read).

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, MapBuilder, MapFieldNames, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray, StructArray,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{Field, Fields, Schema};
use bytes::Bytes;
use serde_json::{json, Value};

use super::compact;
use super::delta::{bad, Snapshot, LOG_DIR};
use super::Fleet;
use crate::error::Result;

/// The pointer to the newest checkpoint.
pub const LAST: &str = "_last_checkpoint";

fn name(y: u64) -> String {
    format!("{LOG_DIR}/{y:020}.checkpoint.parquet")
}

/// The version of a checkpoint's file name.
pub(super) fn parse(name: &str) -> Option<u64> {
    super::delta::version_digits(name.strip_suffix(".checkpoint.parquet")?)
}

/// The version `_last_checkpoint` names, if it is there and reads.
pub fn last(fleet: &Fleet) -> Option<u64> {
    let text = match fleet.read(&format!("{LOG_DIR}/{LAST}")) {
        Ok(t) => t?,
        Err(e) => {
            tracing::warn!(error = %e, "fleet table: _last_checkpoint could not be read; listing the log");
            return None;
        }
    };
    let v = serde_json::from_slice::<Value>(&text)
        .ok()
        .and_then(|v| v["version"].as_u64())
        .filter(|&v| v <= super::delta::MAX_VERSION);
    if v.is_none() {
        tracing::warn!("fleet table: _last_checkpoint does not read; listing the log");
    }
    v
}

/// Writes the checkpoint of `snap`'s version and points `_last_checkpoint` at it.
pub fn write(fleet: &Fleet, snap: &Snapshot, now_ms: i64) -> Result<()> {
    let Some(y) = snap.version.filter(|&y| y > 0 && !snap.foreign) else {
        return Ok(());
    };
    let actions = compact::reconciled(snap, now_ms)
        .into_iter()
        .map(|l| serde_json::from_str::<Value>(l).map_err(|e| bad(format!("an action: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let data = encode(&actions)?;
    let size_in_bytes = data.len();
    fleet.put(&name(y), data)?;
    if last(fleet).is_some_and(|c| c >= y) {
        return Ok(());
    }
    let pointer = json!({
        "version": y,
        "size": actions.len(),
        "sizeInBytes": size_in_bytes,
        "numOfAddFiles": snap.adds.len(),
    });
    fleet.put(
        &format!("{LOG_DIR}/{LAST}"),
        Bytes::from(pointer.to_string()),
    )
}

/// One column of the checkpoint: each action's `kind` object (`None` where the action is of
/// another kind), its fields taken by name.
struct Kind<'a> {
    rows: Vec<Option<&'a Value>>,
}

impl<'a> Kind<'a> {
    fn of(actions: &'a [Value], kind: &str) -> Kind<'a> {
        Kind {
            rows: actions.iter().map(|a| a.get(kind)).collect(),
        }
    }

    fn field(&self, key: &str) -> Vec<Option<&'a Value>> {
        self.rows
            .iter()
            .map(|r| r.and_then(|v| v.get(key)).filter(|v| !v.is_null()))
            .collect()
    }

    fn string(&self, key: &str) -> ArrayRef {
        Arc::new(StringArray::from_iter(self.field(key).into_iter().map(
            |v| v.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)),
        )))
    }

    fn long(&self, key: &str) -> ArrayRef {
        Arc::new(Int64Array::from_iter(
            self.field(key)
                .into_iter()
                .map(|v| v.and_then(Value::as_i64)),
        ))
    }

    fn int(&self, key: &str) -> ArrayRef {
        Arc::new(Int32Array::from_iter(self.field(key).into_iter().map(
            |v| {
                v.and_then(Value::as_i64)
                    .and_then(|n| i32::try_from(n).ok())
            },
        )))
    }

    fn boolean(&self, key: &str) -> ArrayRef {
        Arc::new(BooleanArray::from_iter(
            self.field(key)
                .into_iter()
                .map(|v| v.and_then(Value::as_bool)),
        ))
    }

    /// A `map<string, string>` field (a JSON object; a value that is not a string is kept
    /// as its JSON text, a null as null).
    fn map(&self, key: &str) -> ArrayRef {
        map_of(self.field(key).into_iter())
    }

    fn strings(&self, key: &str) -> ArrayRef {
        let mut b = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
            "element",
            arrow_schema::DataType::Utf8,
            true,
        )));
        for v in self.field(key) {
            match v.and_then(Value::as_array) {
                Some(items) => {
                    for s in items {
                        b.values().append_option(s.as_str());
                    }
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        Arc::new(b.finish())
    }

    /// The struct column of this kind from `(name, column)` pairs: null where the action is
    /// of another kind.
    fn strukt(&self, children: Vec<(&str, ArrayRef)>) -> Result<ArrayRef> {
        let valid = NullBuffer::from(self.rows.iter().map(Option::is_some).collect::<Vec<_>>());
        struct_of(children, Some(valid))
    }
}

fn map_of<'a>(values: impl Iterator<Item = Option<&'a Value>>) -> ArrayRef {
    // Spark's names for a map's parts, which Delta readers expect.
    let names = MapFieldNames {
        entry: "key_value".into(),
        key: "key".into(),
        value: "value".into(),
    };
    let mut b = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for v in values {
        match v.and_then(Value::as_object) {
            Some(obj) => {
                for (k, v) in obj {
                    b.keys().append_value(k);
                    match v {
                        Value::Null => b.values().append_null(),
                        Value::String(s) => b.values().append_value(s),
                        other => b.values().append_value(other.to_string()),
                    }
                }
                // Cannot fail: one value was appended per key.
                let _ = b.append(true);
            }
            None => {
                let _ = b.append(false);
            }
        }
    }
    Arc::new(b.finish())
}

fn struct_of(children: Vec<(&str, ArrayRef)>, valid: Option<NullBuffer>) -> Result<ArrayRef> {
    let fields: Fields = children
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let arrays = children.into_iter().map(|(_, a)| a).collect();
    StructArray::try_new(fields, arrays, valid)
        .map(|s| Arc::new(s) as ArrayRef)
        .map_err(|e| bad(format!("checkpoint: {e}")))
}

/// The checkpoint Parquet file of `actions` (one row per action, Delta's checkpoint schema:
/// columns `txn`, `add`, `remove`, `metaData`, `protocol`).
fn encode(actions: &[Value]) -> Result<Bytes> {
    let txn = Kind::of(actions, "txn");
    let add = Kind::of(actions, "add");
    let remove = Kind::of(actions, "remove");
    let meta = Kind::of(actions, "metaData");
    let protocol = Kind::of(actions, "protocol");
    let format = Kind {
        rows: meta.field("format"),
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "txn",
            txn.strukt(vec![
                ("appId", txn.string("appId")),
                ("version", txn.long("version")),
                ("lastUpdated", txn.long("lastUpdated")),
            ])?,
        ),
        (
            "add",
            add.strukt(vec![
                ("path", add.string("path")),
                ("partitionValues", add.map("partitionValues")),
                ("size", add.long("size")),
                ("modificationTime", add.long("modificationTime")),
                ("dataChange", add.boolean("dataChange")),
                ("stats", add.string("stats")),
                ("tags", add.map("tags")),
            ])?,
        ),
        (
            "remove",
            remove.strukt(vec![
                ("path", remove.string("path")),
                ("deletionTimestamp", remove.long("deletionTimestamp")),
                ("dataChange", remove.boolean("dataChange")),
                (
                    "extendedFileMetadata",
                    remove.boolean("extendedFileMetadata"),
                ),
                ("partitionValues", remove.map("partitionValues")),
                ("size", remove.long("size")),
            ])?,
        ),
        (
            "metaData",
            meta.strukt(vec![
                ("id", meta.string("id")),
                ("name", meta.string("name")),
                ("description", meta.string("description")),
                (
                    "format",
                    format.strukt(vec![
                        ("provider", format.string("provider")),
                        ("options", format.map("options")),
                    ])?,
                ),
                ("schemaString", meta.string("schemaString")),
                ("partitionColumns", meta.strings("partitionColumns")),
                ("configuration", meta.map("configuration")),
                ("createdTime", meta.long("createdTime")),
            ])?,
        ),
        (
            "protocol",
            protocol.strukt(vec![
                ("minReaderVersion", protocol.int("minReaderVersion")),
                ("minWriterVersion", protocol.int("minWriterVersion")),
            ])?,
        ),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    let fail = |e: &dyn std::fmt::Display| bad(format!("checkpoint: {e}"));
    let batch = RecordBatch::try_new(schema, arrays).map_err(|e| fail(&e))?;
    super::data_file::parquet_bytes(&batch).map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// A checkpoint has one row per action, each with exactly its own kind's column set.
    #[test]
    fn a_checkpoint_has_one_row_per_action_in_its_own_column() {
        let actions = vec![
            json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}),
            json!({"metaData": {"id": "x", "format": {"provider": "parquet", "options": {}},
                "schemaString": "{}", "partitionColumns": ["day", "station"],
                "configuration": {"footage.fleet.version": "2"}, "createdTime": 5}}),
            json!({"remove": {"path": "a", "deletionTimestamp": 7, "dataChange": true}}),
            json!({"add": {"path": "b", "partitionValues": {"day": "2026-01-01", "station": "s"},
                "size": 10, "modificationTime": 9, "dataChange": true, "stats": "{}",
                "tags": {"footage.live_rows": null, "k": "v"}}}),
        ];
        let data = encode(&actions).unwrap();
        let mut r = ParquetRecordBatchReaderBuilder::try_new(data)
            .unwrap()
            .build()
            .unwrap();
        let b = r.next().unwrap().unwrap();
        assert_eq!(b.num_rows(), 4);
        let valid = |col: &str| -> Vec<bool> {
            let c = b.column_by_name(col).unwrap();
            (0..4).map(|i| c.is_valid(i)).collect()
        };
        assert_eq!(valid("protocol"), [true, false, false, false]);
        assert_eq!(valid("metaData"), [false, true, false, false]);
        assert_eq!(valid("remove"), [false, false, true, false]);
        assert_eq!(valid("add"), [false, false, false, true]);
        assert_eq!(valid("txn"), [false; 4]);
        let add = b
            .column_by_name("add")
            .unwrap()
            .as_any()
            .downcast_ref::<StructArray>()
            .unwrap();
        let size = add.column_by_name("size").unwrap();
        let size = size.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(size.value(3), 10);
    }
}
