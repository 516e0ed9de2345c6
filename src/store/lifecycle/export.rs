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
//! - existing files are never overwritten, and nothing is written through a link: the
//!   temporary files have unpredictable names and are created `O_EXCL|O_NOFOLLOW` (mode
//!   0640), the final names are taken with a rename that fails if anything (a dangling link
//!   included) is there ([`crate::perms`]).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::fsio::atomic::{Place, TempFile};
use crate::input::time::format_time;
use crate::store::{hex, now_us, Store, VerifiedReader};

/// What `export` wrote.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Exported {
    /// The segment id (decimal).
    pub id: String,
    /// The footage file.
    pub file: PathBuf,
    /// The chain-of-custody record.
    pub custody: PathBuf,
    /// Bytes of the footage file.
    pub bytes: u64,
    /// SHA-256 of the footage file, lower-case hex (checked against the one recorded at ingest).
    pub sha256: String,
    /// The actor who exported it.
    pub exported_by: String,
    /// When it was exported (RFC 3339, UTC).
    pub exported_at: String,
    /// The store's clock, `"real"` or `"simulated"` (a test or demo store).
    pub clock: &'static str,
}

/// The chain-of-custody record (`<id>.custody.json`), fields in this order.
#[derive(Serialize)]
struct Custody<'a> {
    format: &'static str,
    version: u32,
    store_id: String,
    /// `"real"`, or `"simulated"`: the store's retention ran at pretend times (not evidence
    /// of when anything was deleted).
    clock: &'static str,
    segment: &'a crate::store::SegmentInfo,
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

/// The error of giving an export its final name.
fn placed(e: io::Error, path: &Path) -> Error {
    if e.kind() == io::ErrorKind::AlreadyExists {
        return Error::Invalid(format!(
            "{} appeared during the export: export to another directory or move it away",
            path.display()
        ));
    }
    Error::io(path, e)
}

impl Store {
    /// Exports segment `id` into `dir` (created if needed) with its chain-of-custody record,
    /// as this handle's actor; the `export` audit entry is durable before the files appear.
    pub fn export(&self, id: u64, dir: &Path) -> Result<Exported> {
        self.audit_reachable("export")?;
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
        crate::fsio::create_dir_all(dir).at(dir)?;
        let name = format!("{id}.{ext}");
        let custody_name = format!("{id}.custody.json");
        let (file, custody) = (dir.join(&name), dir.join(&custody_name));
        for p in [&file, &custody] {
            // A link counts as being there, even when it points nowhere.
            if fs::symlink_metadata(p).is_ok() {
                return Err(Error::Invalid(format!(
                    "{} already exists: export to another directory or move it away",
                    p.display()
                )));
            }
        }
        // Removed on drop unless placed (an error anywhere leaves nothing behind).
        let tmp = TempFile::create(dir, &name, crate::perms::FILE_MODE).at(dir)?;
        let custody_tmp = TempFile::create(dir, &custody_name, crate::perms::FILE_MODE).at(dir)?;
        self.export_to(id, &info, (tmp, &file), (custody_tmp, &custody))
    }

    fn export_to(
        &self,
        id: u64,
        info: &crate::store::SegmentInfo,
        (mut tmp, file): (TempFile, &Path),
        (mut custody_tmp, custody): (TempFile, &Path),
    ) -> Result<Exported> {
        let expected = self.inner.load_commit(id, false)?.sha256;
        let reader = self.reader(id)?;
        let len = reader.len();
        let mut r = VerifiedReader::new(reader, id, len, expected);
        io::copy(&mut r, &mut tmp).map_err(|e| copy_error(e, tmp.path()))?;
        tmp.sync("export.file").at(tmp.path())?;
        let at = now_us();
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let details = serde_json::json!({
            "file": name,
            "dir": file.parent().map(|d| d.display().to_string()),
            "bytes": len,
            "sha256": hex(&expected),
        });
        let entry = self.audit_entry(
            self.actor(),
            crate::audit::Action::Export,
            Some(id),
            details,
        )?;
        let audit = self.audit_entries(Some(id), None)?;
        let (count, head) = self.audit_head();
        let record = Custody {
            format: "footage-custody",
            version: 1,
            store_id: hex(&self.inner.store_id),
            clock: self.inner.config.clock_name(),
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
        custody_tmp
            .write_all(format!("{text}\n").as_bytes())
            .at(custody_tmp.path())?;
        custody_tmp.sync("export.custody").at(custody_tmp.path())?;
        tmp.place(file, Place::NoReplace)
            .map_err(|e| placed(e, file))?;
        custody_tmp
            .place(custody, Place::NoReplace)
            .map_err(|e| placed(e, custody))?;
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
            clock: self.inner.config.clock_name(),
        })
    }
}
