//! Unit tests of the audit log on its own (no store): roll-over, heads, every flipped bit,
//! torn tails, truncation.

use super::log::{AuditLog, OpenFindings};
use super::{files, verify, Durability};

const ID: [u8; 16] = [5; 16];

/// A log with `n` entries in small files (so it rolls over), closed.
fn build(root: &std::path::Path, n: u64) {
    let log = AuditLog::open_with(root, ID, 1500, 8).unwrap();
    for i in 0..n {
        let d = if i % 3 == 0 {
            Durability::Batched
        } else {
            Durability::Durable
        };
        log.append("pc.smith", "read", Some(i), &format!("{{\"i\":{i}}}"), d)
            .unwrap();
    }
    log.close().unwrap();
}

fn check(root: &std::path::Path) -> super::AuditReport {
    let dir = root.join(files::AUDIT_DIR);
    let last = files::list(&dir).unwrap().last().map(|l| l.0).unwrap_or(0);
    verify(&dir, ID, (last, u64::MAX), &OpenFindings::default()).unwrap()
}

#[test]
fn a_log_rolls_over_records_heads_and_verifies_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 40);
    let r = check(dir.path());
    assert!(r.ok, "{r:?}");
    assert!(r.files > 3, "{r:?}");
    // 40 entries, a head after every 8th chain position, and one on close.
    let entries =
        super::entries(&dir.path().join("audit"), (u32::MAX, u64::MAX), None, None).unwrap();
    assert_eq!(entries.len() as u64, r.entries);
    let heads: Vec<_> = entries.iter().filter(|e| e.action == "head").collect();
    assert!(heads.len() >= 5, "{heads:?}");
    assert_eq!(r.recorded_head.as_ref().map(|h| h.count), Some(r.entries));
    // Reopening continues the same chain.
    let log = AuditLog::open_with(dir.path(), ID, 1500, 8).unwrap();
    assert_eq!(log.head().count, r.entries);
    log.append("pc.smith", "read", None, "{}", Durability::Durable)
        .unwrap();
    drop(log);
    let r2 = check(dir.path());
    assert!(r2.ok, "{r2:?}");
    assert_eq!(r2.entries, r.entries + 1);
}

#[test]
fn a_flipped_bit_in_any_byte_of_any_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 12);
    let audit = dir.path().join("audit");
    let mut names: Vec<_> = std::fs::read_dir(&audit)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let pristine = std::fs::read(&path).unwrap();
        // Every byte, one bit each (`format` tests flip every bit of single structures).
        for byte in 0..pristine.len() {
            let mut b = pristine.clone();
            b[byte] ^= 1 << (byte % 8);
            std::fs::write(&path, &b).unwrap();
            let r = check(dir.path());
            assert!(!r.ok, "{}: byte {byte} not detected", path.display());
            assert!(r.first_broken.is_some());
        }
        std::fs::write(&path, &pristine).unwrap();
    }
    assert!(check(dir.path()).ok);
}

#[test]
fn a_torn_tail_is_cut_and_saved_and_a_cut_below_head_is_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open_with(dir.path(), ID, 1 << 20, 1000).unwrap();
    for i in 0..5 {
        log.append("a", "tag", Some(i), "{}", Durability::Durable)
            .unwrap();
    }
    let (_, end) = log.written();
    drop(log); // HEAD now covers the 5 entries
    let file = files::list(&dir.path().join("audit")).unwrap()[0].1.clone();
    // A torn append after the acknowledged entries: cut, saved, not a problem.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, b"FTGE\x50\x00\x00\x00garbage").unwrap();
    drop(f);
    let log = AuditLog::open_with(dir.path(), ID, 1 << 20, 1000).unwrap();
    assert!(log.findings.torn_bytes > 0 && log.findings.problems.is_empty());
    // The 5 entries, then the recovery entry noting the cut, right where the tail was.
    assert_eq!(log.head().count, 6);
    let (_, end6) = log.written();
    drop(log);
    let all = super::entries(&dir.path().join("audit"), (1, end6), None, None).unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[5].action, "audit-recovery");
    assert!(all[5].details["torn_bytes"].as_u64().unwrap() > 0);
    assert!(std::fs::metadata(&file).unwrap().len() > end);
    assert!(check(dir.path()).ok);
    let end = end6;
    let saved = std::fs::read_dir(dir.path().join("audit"))
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            n.to_string_lossy().starts_with("torn-")
        })
        .count();
    assert_eq!(saved, 1);
    // Cutting into entries HEAD covers is truncation, and it stays reported.
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(end - 30).unwrap();
    drop(f);
    let log = AuditLog::open_with(dir.path(), ID, 1 << 20, 1000).unwrap();
    assert!(!log.findings.problems.is_empty());
    drop(log);
    for _ in 0..2 {
        let r = check(dir.path());
        assert!(!r.ok, "{r:?}");
        let first = r.first_broken.unwrap();
        assert!(first.what.contains("truncated"), "{first:?}");
        drop(AuditLog::open_with(dir.path(), ID, 1 << 20, 1000).unwrap());
    }
}

#[test]
fn a_hole_of_unwritten_bytes_before_later_entries_is_cut_and_other_damage_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open_with(dir.path(), ID, 1 << 20, 1000).unwrap();
    for i in 0..3 {
        log.append("a", "tag", Some(i), "{}", Durability::Durable)
            .unwrap();
    }
    let mut ends = vec![log.written().1];
    for i in 3..6 {
        log.append("pc.smith", "read", Some(i), "{}", Durability::Batched)
            .unwrap();
        ends.push(log.written().1);
    }
    // A power cut: no close, no HEAD past the open (the process is gone).
    std::mem::forget(log);
    let file = files::list(&dir.path().join("audit")).unwrap()[0].1.clone();
    let pristine = std::fs::read(&file).unwrap();
    let (a, b) = (ends[0] as usize, ends[1] as usize);
    // The write of entry 3 was lost (zeros), those of 4 and 5 reached the disk.
    let mut holed = pristine.clone();
    holed[a..b].fill(0);
    std::fs::write(&file, &holed).unwrap();
    let log = AuditLog::open_with(dir.path(), ID, 1 << 20, 1000).unwrap();
    let f = log.findings.clone();
    assert!(f.problems.is_empty(), "{f:?}");
    assert_eq!(f.torn_bytes, (pristine.len() - a) as u64, "{f:?}");
    assert!(f.notes.iter().any(|n| n.contains("2 entries")), "{f:?}");
    // Entries 0..3, then the recovery entry where entry 3 was.
    assert_eq!(log.head().count, 4);
    drop(log);
    let r = check(dir.path());
    assert!(r.ok, "{r:?}");
    // The same entry edited instead (no unwritten bytes): damage, reported and not cut.
    for p in std::fs::read_dir(dir.path().join("audit")).unwrap() {
        let p = p.unwrap().path();
        if !p.to_string_lossy().ends_with(".log") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let mut edited = pristine.clone();
    edited[a + 40] ^= 0x20;
    std::fs::write(&file, &edited).unwrap();
    let log = AuditLog::open_with(dir.path(), ID, 1 << 20, 1000).unwrap();
    assert!(!log.findings.problems.is_empty(), "{:?}", log.findings);
    assert_eq!(log.findings.torn_bytes, 0);
    drop(log);
    assert!(!check(dir.path()).ok);
}
