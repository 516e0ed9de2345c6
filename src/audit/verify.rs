//! Reading the whole audit log back: `entries` (filtered listing) and `verify` (the full
//! check: every frame, every hash, every link, file headers, `head` entries, recovery
//! reports, and the chain against `HEAD`).
//!
//! Invariants: both only read; they read the newest file only up to what was completely
//! written when they started, so a concurrent append never looks like a torn entry; every
//! problem is reported with the index of the entry where the chain breaks.

use std::fs;
use std::path::Path;

use super::files;
use super::format::{FileHeader, RawEntry, FILE_HEADER_LEN};
use super::log::{Chain, OpenFindings, STORE_ACTOR};
use super::scan::{scan, Item};
use super::{AuditEntry, AuditHead, AuditReport, BrokenLink};
use crate::error::{IoContext, Result};
use crate::input::time::format_time;
use crate::util::hex;

/// The bytes of each audit file up to the written end of the newest one.
/// With [`super::LIVE`] (a log another process writes): every file as it is now, the newest
/// cut after its last valid entry. A file that vanished or appeared meanwhile is read as found.
fn read_files(dir: &Path, written: (u32, u64)) -> Result<Vec<(u32, String, Vec<u8>)>> {
    let mut out = Vec::new();
    let list = files::list(dir)?;
    let newest = list.last().map_or(0, |l| l.0);
    for (seq, path) in list {
        if seq > written.0 {
            continue;
        }
        let data = file_bytes(&path, seq, written, newest)?;
        out.push((seq, path.display().to_string(), data));
    }
    Ok(out)
}

/// The bytes of audit file `seq` that `written` covers (`newest`: the newest file's number).
fn file_bytes(path: &Path, seq: u32, written: (u32, u64), newest: u32) -> Result<Vec<u8>> {
    let mut data = fs::read(path).at(path)?;
    if written == super::LIVE && seq == newest {
        if data.len() > FILE_HEADER_LEN {
            let (end, _) = scan(&data, FILE_HEADER_LEN, |_| {});
            data.truncate(end);
        }
    } else if seq == written.0 {
        data.truncate(usize::try_from(written.1).unwrap_or(usize::MAX));
    }
    Ok(data)
}

/// Every readable entry, in order, filtered by segment and time.
pub fn entries(
    dir: &Path,
    written: (u32, u64),
    segment: Option<u64>,
    since_us: Option<i64>,
) -> Result<Vec<AuditEntry>> {
    let mut out = Vec::new();
    for (_, _, data) in read_files(dir, written)? {
        if FileHeader::decode(&data).is_err() {
            continue;
        }
        scan(&data, FILE_HEADER_LEN, |item| {
            if let Item::Entry { entry, .. } = item {
                if segment.is_none_or(|s| entry.segment == Some(s))
                    && since_us.is_none_or(|t| entry.time_us >= t)
                {
                    out.push(AuditEntry::from_raw(entry));
                }
            }
        });
    }
    Ok(out)
}

/// The entries recorded at or after `since_us`, read from the newest file back: a file
/// whose first entry is older ends the reading, so the cost is the files that span the time
/// asked for, not the whole log (recovery's check of its replayed commits).
pub fn recent_entries(dir: &Path, written: (u32, u64), since_us: i64) -> Result<Vec<AuditEntry>> {
    let mut out = Vec::new();
    let list = files::list(dir)?;
    let newest = list.last().map_or(0, |l| l.0);
    for (seq, path) in list.into_iter().rev() {
        if seq > written.0 {
            continue;
        }
        let data = file_bytes(&path, seq, written, newest)?;
        if FileHeader::decode(&data).is_err() {
            continue;
        }
        let mut first: Option<i64> = None;
        scan(&data, FILE_HEADER_LEN, |item| {
            if let Item::Entry { entry, .. } = item {
                first.get_or_insert(entry.time_us);
                if entry.time_us >= since_us {
                    out.push(AuditEntry::from_raw(entry));
                }
            }
        });
        if first.is_some_and(|t| t < since_us) {
            break;
        }
    }
    Ok(out)
}

struct Checker {
    expected: Chain,
    last_time: Option<i64>,
    entries: u64,
    /// (count, hash) recorded in HEAD, checked when the chain passes it.
    head: Option<Chain>,
    problems: Vec<BrokenLink>,
}

impl Checker {
    fn problem(&mut self, index: u64, time_us: Option<i64>, file: &str, offset: u64, what: String) {
        self.problems.push(BrokenLink {
            index,
            time: time_us.map(format_time),
            file: file.to_string(),
            offset,
            what,
        });
    }

    fn after(&self) -> String {
        match self.last_time {
            Some(t) => format!(" (after the entry of {})", format_time(t)),
            None => String::new(),
        }
    }

    fn entry(&mut self, file: &str, offset: u64, e: &RawEntry) {
        let at = Some(e.time_us);
        if e.index != self.expected.count {
            let what = format!(
                "entry {} is where entry {} should be: entries are missing, damaged or out of \
                 order{}",
                e.index,
                self.expected.count,
                self.after()
            );
            self.problem(self.expected.count.min(e.index), at, file, offset, what);
        } else if e.prev_hash != self.expected.hash {
            let what = "does not link to the entry before it (its previous hash differs)";
            self.problem(e.index, at, file, offset, what.into());
        }
        if e.compute_hash() != e.hash {
            let what = "its contents do not match its hash: the entry was altered";
            self.problem(e.index, at, file, offset, what.into());
        }
        if e.actor == STORE_ACTOR {
            if let Some(what) = store_entry_problem(e) {
                self.problem(e.index, at, file, offset, what);
            }
        }
        if let Some(h) = self
            .head
            .filter(|h| h.count == e.index + 1 && h.hash != e.hash)
        {
            let what = format!(
                "differs from the entry HEAD recorded as entry {}",
                h.count - 1
            );
            self.problem(e.index, at, file, offset, what);
        }
        self.expected = Chain {
            count: e.index + 1,
            hash: e.hash,
        };
        self.last_time = Some(e.time_us);
        self.entries += 1;
    }
}

/// What is wrong with an entry the store wrote itself (a `head` that does not describe the
/// chain before it; a recovery report of damage or truncation).
fn store_entry_problem(e: &RawEntry) -> Option<String> {
    let details: serde_json::Value = serde_json::from_str(&e.details).ok()?;
    match e.action.as_str() {
        "head" => {
            let count = details.get("count").and_then(|v| v.as_u64());
            let head = details.get("head").and_then(|v| v.as_str());
            let ok = count == Some(e.index) && head == Some(hex(&e.prev_hash).as_str());
            (!ok).then(|| "head entry does not describe the chain before it".to_string())
        }
        "audit-recovery" => {
            let problems = details.get("problems")?.as_array()?;
            (!problems.is_empty()).then(|| {
                let list: Vec<&str> = problems.iter().filter_map(|p| p.as_str()).collect();
                format!(
                    "opening the store at {} found the audit log damaged: {}",
                    format_time(e.time_us),
                    list.join("; ")
                )
            })
        }
        _ => None,
    }
}

/// Checks the whole log.
pub fn verify(
    dir: &Path,
    store_id: [u8; 16],
    written: (u32, u64),
    findings: &OpenFindings,
) -> Result<AuditReport> {
    let mut notes: Vec<String> = findings.notes.clone();
    let (recorded, head_damage) = match files::read_head(dir) {
        Ok(h) => (h, None),
        Err(why) => (None, Some(why)),
    };
    let mut c = Checker {
        expected: Chain::EMPTY,
        last_time: None,
        entries: 0,
        head: recorded.map(|h| Chain {
            count: h.count,
            hash: h.hash,
        }),
        problems: Vec::new(),
    };
    let head_path = dir.join(files::HEAD_FILE).display().to_string();
    let all = read_files(dir, written)?;
    let mut want_seq = 1;
    for (seq, file, data) in &all {
        if *seq != want_seq {
            let what = format!("audit files {want_seq}..{} are missing", seq - 1);
            c.problem(c.expected.count, c.last_time, file, 0, what);
        }
        want_seq = seq + 1;
        let header = match FileHeader::decode(data) {
            Ok(h) if h.store_id == store_id => h,
            Ok(_) => {
                let what = "the file belongs to another store".to_string();
                c.problem(c.expected.count, None, file, 0, what);
                continue;
            }
            Err(e) => {
                let what = format!("file header damaged: {e}{}", c.after());
                c.problem(c.expected.count, None, file, 0, what);
                continue;
            }
        };
        if header.first_index != c.expected.count || header.prev_hash != c.expected.hash {
            let what = format!(
                "the file starts the chain at entry {}, but the files before it hold {} entries",
                header.first_index, c.expected.count
            );
            c.problem(header.first_index, None, file, 0, what);
            c.expected = Chain {
                count: header.first_index,
                hash: header.prev_hash,
            };
        }
        let mut items = Vec::new();
        let (_, tail) = scan(data, FILE_HEADER_LEN, |item| items.push(item));
        for item in items {
            match item {
                Item::Entry { offset, entry, .. } => c.entry(file, offset as u64, &entry),
                Item::Damage { from, to, what } => {
                    let what = format!("bytes {from}..{to} are damaged: {what}{}", c.after());
                    c.problem(c.expected.count, None, file, from as u64, what);
                }
            }
        }
        if let Some(t) = tail {
            let what = format!(
                "bytes {}..{} are not a valid entry: {}{}",
                t.from,
                data.len(),
                t.what,
                c.after()
            );
            c.problem(c.expected.count, None, file, t.from as u64, what);
        }
    }
    if let Some(h) = recorded {
        if h.store_id != store_id {
            let what = "HEAD belongs to another store".to_string();
            c.problem(0, None, &head_path, 0, what);
        } else if h.count > c.expected.count {
            let what = format!(
                "the log is shorter than HEAD (written {}) recorded: {} entries, the log ends \
                 after {}: its tail was truncated",
                format_time(h.written_us),
                h.count,
                c.expected.count
            );
            c.problem(c.expected.count, None, &head_path, 0, what);
        }
    } else if let Some(why) = head_damage {
        c.problem(c.expected.count, None, &head_path, 0, why);
    } else if c.entries > 0 {
        notes.push("no HEAD file yet (it is written every 256 entries and on close)".into());
    }
    if findings.torn_bytes > 0 {
        notes.push(format!(
            "opening the store cut {} bytes of torn tail (entries never acknowledged)",
            findings.torn_bytes
        ));
    }
    // In the order found, which is chain order (HEAD last).
    let problems = c.problems;
    Ok(AuditReport {
        ok: problems.is_empty(),
        entries: c.entries,
        files: all.len(),
        head: AuditHead {
            count: c.expected.count,
            hash: hex(&c.expected.hash),
            time: None,
        },
        recorded_head: recorded.map(|h| AuditHead {
            count: h.count,
            hash: hex(&h.hash),
            time: Some(format_time(h.written_us)),
        }),
        first_broken: problems.first().cloned(),
        problems,
        notes,
    })
}
