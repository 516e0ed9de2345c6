//! Opening the audit log: find the newest file and the chain head, cut a torn tail, and
//! compare the chain with `HEAD` (truncation).
//!
//! Invariants:
//! - only the newest file is scanned, and only from the position `HEAD` names when it lies in
//!   that file (the full check is `verify`'s job), so opening costs little however long the
//!   log is;
//! - only the newest file's tail is ever cut, only after the cut bytes were saved: after its
//!   last valid entry, or from the first of holes of never-written (zero) bytes with valid
//!   entries after them (a power cut lost writes no fsync covered and kept later ones: with
//!   batched entries many writes can be unsynced at once); any other damage before valid
//!   entries is reported, never cut;
//! - a file whose header is damaged is never written again: a new file is started;
//! - an audit file of a newer format version refuses the open.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::files;
use super::format::{FileHeader, HeadFile, FILE_HEADER_LEN};
use super::log::{Chain, OpenFindings, STORE_ACTOR};
use super::scan::{scan, Item};
use crate::error::{Error, IoContext, Result};
use crate::format::DecodeError;

pub struct Opened {
    pub file: File,
    pub seq: u32,
    pub path: PathBuf,
    pub end: u64,
    pub chain: Chain,
    pub last_was_head: bool,
    /// Entries `HEAD` covers (0 if it is missing or unusable).
    pub head_count: u64,
    pub findings: OpenFindings,
}

/// The newest file, scanned and ready for appending; `None` if its header is unusable.
struct Last {
    file: File,
    end: u64,
    chain: Chain,
    last_was_head: bool,
}

pub fn open_files(dir: &Path, store_id: [u8; 16]) -> Result<Opened> {
    if !dir.is_dir() {
        // The new directory's entry survives a power cut like the files in it.
        crate::fsio::create_dir_all(dir).at(dir)?;
    }
    files::remove_temporaries(dir);
    let mut found = OpenFindings::default();
    let head = match files::read_head(dir) {
        Ok(Some(h)) if h.store_id != store_id => {
            found
                .notes
                .push("HEAD belongs to another store; ignored".into());
            None
        }
        Ok(h) => h,
        Err(why) => {
            found.notes.push(format!("{why}; ignored"));
            None
        }
    };
    let list = files::list(dir)?;
    let mut last = None;
    let mut seq = 0;
    if let Some((s, path)) = list.last() {
        seq = *s;
        last = open_last(dir, *s, path, store_id, head.as_ref(), &mut found)?;
    }
    let (file, seq, path, end, chain, last_was_head) = match last {
        Some(l) => (
            l.file,
            seq,
            dir.join(files::file_name(seq)),
            l.end,
            l.chain,
            l.last_was_head,
        ),
        None => {
            // No file yet, or the newest is unusable: start a new one after the chain that
            // is there (a loss is reported against HEAD below).
            let chain = list
                .iter()
                .rev()
                .skip(1)
                .find_map(|(_, p)| chain_of(p, store_id))
                .unwrap_or(Chain::EMPTY);
            let header = FileHeader {
                seq: seq + 1,
                store_id,
                first_index: chain.count,
                created_us: crate::util::now_us(),
                prev_hash: chain.hash,
            };
            let (file, path) = files::create(dir, &header)?;
            (file, seq + 1, path, FILE_HEADER_LEN as u64, chain, false)
        }
    };
    let mut head_count = 0;
    if let Some(h) = head {
        if h.count > chain.count || h.seq > seq {
            found.problems.push(format!(
                "the audit log was truncated: HEAD (written {}) records {} entries in file {}, \
                 the log now ends after {}",
                crate::input::time::format_time(h.written_us),
                h.count,
                h.seq,
                chain.count
            ));
        } else {
            head_count = h.count;
        }
    }
    Ok(Opened {
        file,
        seq,
        path,
        end,
        chain,
        last_was_head,
        head_count,
        findings: found,
    })
}

/// Scans the newest file (from `HEAD` when it points into it), cutting a torn tail.
fn open_last(
    dir: &Path,
    seq: u32,
    path: &Path,
    store_id: [u8; 16],
    head: Option<&HeadFile>,
    found: &mut OpenFindings,
) -> Result<Option<Last>> {
    let file = files::open_rw(path)?;
    let len = file.metadata().at(path)?.len();
    let mut head_bytes = vec![0u8; FILE_HEADER_LEN.min(len as usize)];
    file.read_exact_at(&mut head_bytes, 0).at(path)?;
    let header = match FileHeader::decode(&head_bytes) {
        Ok(h) if h.store_id == store_id => h,
        Ok(_) => {
            found.problems.push(format!(
                "{} belongs to another store; a new file is started",
                path.display()
            ));
            return Ok(None);
        }
        Err(DecodeError::UnsupportedVersion {
            found, supported, ..
        }) => {
            return Err(Error::UnsupportedVersion {
                what: "audit file",
                path: path.to_path_buf(),
                found,
                supported,
            })
        }
        Err(e) => {
            found.problems.push(format!(
                "{}: header damaged ({e}); a new file is started",
                path.display()
            ));
            return Ok(None);
        }
    };
    let mut from = FILE_HEADER_LEN as u64;
    let mut chain = Chain {
        count: header.first_index,
        hash: header.prev_hash,
    };
    let mut check = None;
    if let Some(h) = head.filter(|h| h.seq == seq) {
        if (FILE_HEADER_LEN as u64..=len).contains(&h.end) {
            from = h.end;
            chain = Chain {
                count: h.count,
                hash: h.hash,
            };
        } else {
            found.problems.push(format!(
                "{} is shorter ({len} bytes) than HEAD recorded ({} bytes)",
                path.display(),
                h.end
            ));
            check = Some(h);
        }
    }
    // Only the entries after `from` are read.
    let mut data = vec![0u8; (len - from) as usize];
    file.read_exact_at(&mut data, from).at(path)?;
    let mut last_was_head = false;
    let mut problems = Vec::new();
    let mut hole: Option<Hole> = None;
    let (mut end, tail) = scan(&data, 0, |item| match item {
        Item::Entry { entry, .. } => {
            if let Some(h) = check.filter(|h| h.count == entry.index + 1 && h.hash != entry.hash) {
                problems.push(format!(
                    "entry {} does not match the hash HEAD recorded for it",
                    h.count - 1
                ));
            }
            if let Some(h) = &mut hole {
                h.entries += 1;
            }
            chain = Chain {
                count: entry.index + 1,
                hash: entry.hash,
            };
            last_was_head = entry.action == "head" && entry.actor == STORE_ACTOR;
        }
        Item::Damage {
            from: a,
            to: b,
            what,
        } => {
            let unwritten = has_unwritten_run(data.get(a..b).unwrap_or_default());
            hole.get_or_insert(Hole {
                at: a,
                chain,
                last_was_head,
                entries: 0,
                unwritten: true,
            })
            .unwritten &= unwritten;
            problems.push(format!(
                "{} offsets {}..{} are damaged: {what}",
                path.display(),
                from + a as u64,
                from + b as u64
            ))
        }
    });
    // Holes of never-written bytes: a power cut lost writes that no fsync had covered and
    // kept some written after them, so nothing from the first hole on was durable. A torn
    // tail: cut from the hole (and saved), not damage.
    let mut cut = tail.map(|t| (t.from, t.what));
    if let Some(h) = hole.filter(|h| h.unwritten) {
        problems.clear();
        found.notes.push(format!(
            "{} entries after unsynced bytes that a power cut lost, from offset {}, were never \
             made durable: cut with them",
            h.entries,
            from + h.at as u64
        ));
        (end, chain, last_was_head) = (h.at, h.chain, h.last_was_head);
        cut = Some((h.at, "a power cut lost bytes before later entries".into()));
    }
    found.problems.extend(problems);
    let end = from + end as u64;
    if let Some((t_from, what)) = cut {
        let bytes = data.get(t_from..).unwrap_or_default();
        let at = from + t_from as u64;
        let saved = files::save_torn(dir, seq, at, bytes)?;
        crate::fsio::set_len(&file, end).at(path)?;
        crate::fsio::sync_all(&file, "audit.cut_tail").at(path)?;
        found.torn_bytes += bytes.len() as u64;
        found.notes.push(format!(
            "cut a torn tail of {} bytes from {} at offset {at} ({what}); saved in {}",
            bytes.len(),
            path.display(),
            saved.display()
        ));
    }
    Ok(Some(Last {
        file,
        end,
        chain,
        last_was_head,
    }))
}

/// Damage in the newest file, and what follows it.
struct Hole {
    /// Where the damage starts (relative to the bytes scanned).
    at: usize,
    /// The chain before it.
    chain: Chain,
    last_was_head: bool,
    /// Valid entries after it.
    entries: u64,
    /// Whether every damaged region holds a run of never-written bytes.
    unwritten: bool,
}

/// Bytes a power cut can leave where an appended write was lost: a file's blocks that were
/// never written read as zeros. No entry holds this many zero bytes in a row (its hashes and
/// text do not), so bit rot or an edit leaves none; a lost or torn write (whole 512-byte
/// sectors missing) always does.
const UNWRITTEN_RUN: usize = 64;

fn has_unwritten_run(b: &[u8]) -> bool {
    let mut run = 0;
    for &x in b {
        run = if x == 0 { run + 1 } else { 0 };
        if run >= UNWRITTEN_RUN {
            return true;
        }
    }
    false
}

/// The chain head at the end of a whole file, if its header is usable.
fn chain_of(path: &Path, store_id: [u8; 16]) -> Option<Chain> {
    let data = fs::read(path).ok()?;
    let header = FileHeader::decode(&data).ok()?;
    if header.store_id != store_id {
        return None;
    }
    let mut chain = Chain {
        count: header.first_index,
        hash: header.prev_hash,
    };
    scan(&data, FILE_HEADER_LEN, |item| {
        if let Item::Entry { entry, .. } = item {
            chain = Chain {
                count: entry.index + 1,
                hash: entry.hash,
            };
        }
    });
    Some(chain)
}

/// The chain head of a log another process writes: the last valid entry of the newest file
/// with a usable header (a partial entry being written is not counted). Reads the newest
/// file; an empty or missing log is [`Chain::EMPTY`].
pub fn live_chain(dir: &Path, store_id: [u8; 16]) -> Chain {
    let list = files::list(dir).unwrap_or_default();
    list.iter()
        .rev()
        .find_map(|(_, p)| chain_of(p, store_id))
        .unwrap_or(Chain::EMPTY)
}
