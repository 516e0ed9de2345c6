//! Exports for evidence: `Store::export(id, dir)` writes `<dir>/<id>.mp4` (`.bin` when the
//! segment is not an MP4) and `<dir>/<id>.custody.json`, the chain-of-custody record: the
//! segment's metadata, its SHA-256 (checked during the copy), its audit entries (the export
//! itself included), the audit chain head at export time, and who exported it when.
//!
//! Invariants:
//! - nothing appears under the final names unless the copy matched the recorded SHA-256 and
//!   the `export` entry is durable in the audit log; both files are written to temporary
//!   files, fsynced, then renamed (the footage first, the custody record last) and the
//!   directory is fsynced;
//! - existing files are never overwritten.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{hex, now_us, Store, VerifiedReader};
use crate::audit::Durability;
use crate::error::{Error, IoContext, Result};
use crate::input::time::format_time;

/// What `export` wrote.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Exported {
    pub id: String,
    /// The footage file.
    pub file: PathBuf,
    /// The chain-of-custody record.
    pub custody: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    pub exported_by: String,
    pub exported_at: String,
}

/// The chain-of-custody record (`<id>.custody.json`), fields in this order.
#[derive(Serialize)]
struct Custody<'a> {
    format: &'static str,
    version: u32,
    store_id: String,
    segment: &'a super::SegmentInfo,
    file: String,
    bytes: u64,
    sha256: String,
    sha256_verified: bool,
    exported_by: &'a str,
    exported_at: String,
    exported_us: i64,
    export_entry: Link,
    audit: Vec<crate::audit::AuditEntry>,
    chain_head: Head,
}

#[derive(Serialize)]
struct Link {
    index: u64,
    hash: String,
}

#[derive(Serialize)]
struct Head {
    count: u64,
    hash: String,
}

/// Turns an error from copying out of a [`VerifiedReader`] back into the store's error.
fn copy_error(e: io::Error, dst: &Path) -> Error {
    if e.get_ref().is_some_and(|i| i.is::<Error>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(err) = inner.downcast::<Error>() {
                return *err;
            }
        }
        return Error::Invalid("read failed".into());
    }
    Error::io(dst, e)
}

/// Writes `bytes` to `path` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).at(path)?;
    f.write_all(bytes).at(path)?;
    f.sync_all().at(path)
}

impl Store {
    /// Exports segment `id` into `dir` (created if needed) with its chain-of-custody record,
    /// as this handle's actor; the `export` audit entry is durable before the files appear.
    pub fn export(&self, id: u64, dir: &Path) -> Result<Exported> {
        let info = self.info(id)?;
        let mut magic = [0u8; 8];
        let n = self
            .reader(id)?
            .read(&mut magic)
            .map_err(|e| copy_error(e, dir))?;
        let ext = if n == 8 && &magic[4..8] == b"ftyp" {
            "mp4"
        } else {
            "bin"
        };
        fs::create_dir_all(dir).at(dir)?;
        let name = format!("{id}.{ext}");
        let custody_name = format!("{id}.custody.json");
        let (file, custody) = (dir.join(&name), dir.join(&custody_name));
        for p in [&file, &custody] {
            if p.exists() {
                return Err(Error::Invalid(format!(
                    "{} already exists: export to another directory or move it away",
                    p.display()
                )));
            }
        }
        let tmp = dir.join(format!(".{name}.footage-partial"));
        let custody_tmp = dir.join(format!(".{custody_name}.footage-partial"));
        let done = self.export_to(id, &info, (&tmp, &file), (&custody_tmp, &custody));
        if done.is_err() {
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_file(&custody_tmp);
        }
        done
    }

    fn export_to(
        &self,
        id: u64,
        info: &super::SegmentInfo,
        (tmp, file): (&Path, &Path),
        (custody_tmp, custody): (&Path, &Path),
    ) -> Result<Exported> {
        let expected = self.inner.load_commit(id, false)?.sha256;
        let reader = self.reader(id)?;
        let len = reader.len();
        let mut r = VerifiedReader::new(reader, id, len, expected);
        {
            let mut f = File::create(tmp).at(tmp)?;
            io::copy(&mut r, &mut f).map_err(|e| copy_error(e, tmp))?;
            f.sync_all().at(tmp)?;
        }
        let at = now_us();
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let details = serde_json::json!({
            "file": name,
            "dir": file.parent().map(|d| d.display().to_string()),
            "bytes": len,
            "sha256": hex(&expected),
        });
        let entry = self.audit_with(
            self.actor(),
            "export",
            Some(id),
            details,
            Durability::Durable,
        )?;
        let audit = self.audit_entries(Some(id), None)?;
        let (count, head) = self.audit_head();
        let record = Custody {
            format: "footage-custody",
            version: 1,
            store_id: hex(&self.inner.store_id),
            segment: info,
            file: name.unwrap_or_default(),
            bytes: len,
            sha256: hex(&expected),
            sha256_verified: true,
            exported_by: self.actor(),
            exported_at: format_time(at),
            exported_us: at,
            export_entry: Link {
                index: entry.index,
                hash: hex(&entry.hash),
            },
            audit,
            chain_head: Head {
                count,
                hash: hex(&head),
            },
        };
        let text = serde_json::to_string_pretty(&record)
            .map_err(|e| Error::Invalid(format!("cannot encode the custody record: {e}")))?;
        write_synced(custody_tmp, format!("{text}\n").as_bytes())?;
        fs::rename(tmp, file).at(file)?;
        fs::rename(custody_tmp, custody).at(custody)?;
        if let Some(dir) = file.parent() {
            crate::log::sync_dir(dir, "export.dir")?;
        }
        Ok(Exported {
            id: id.to_string(),
            file: file.to_path_buf(),
            custody: custody.to_path_buf(),
            bytes: len,
            sha256: hex(&expected),
            exported_by: self.actor().to_string(),
            exported_at: format_time(at),
        })
    }
}
