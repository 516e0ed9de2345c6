//! Assertions on a whole `verify` report (issue 10 item 20): a test never reads one field
//! and lets the others (volume damage, lost copies, cloud problems, known corrupt segments)
//! go unchecked. Included by `common` and, with `#[path]`, by tests that use `damage.rs`.
#![allow(dead_code)]

use footage::VerifyReport;

/// Panics, listing every finding, unless `report` holds none ([`VerifyReport::is_clean`]).
#[track_caller]
pub fn assert_verify_clean(report: &VerifyReport, ctx: &str) {
    assert!(
        report.is_clean(),
        "{ctx}: verify is not clean: {:#?}",
        report.problems()
    );
}

fn ids(v: &[u64]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(u64::to_string).collect();
    v.sort();
    v
}

fn sorted(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().collect();
    v.sort();
    v
}

/// Takes the corruption of `corrupt` out of `r` (the ids, their errors and their entries in
/// the known-corrupt list), asserting each is there.
#[track_caller]
fn take_corrupt(r: &mut VerifyReport, corrupt: &[u64], ctx: &str) {
    let want = ids(corrupt);
    assert_eq!(sorted(r.corrupt.clone()), want, "{ctx}: corrupt segments");
    assert_eq!(
        sorted(r.errors.iter().map(|e| e.id.clone())),
        want,
        "{ctx}: errors: {:?}",
        r.errors
    );
    r.corrupt.clear();
    r.errors.clear();
    let before = r.scrub.findings.len();
    r.scrub
        .findings
        .retain(|f| !(f.state == "corrupt" && want.contains(&f.id)));
    let taken = before - r.scrub.findings.len();
    r.scrub.corrupt_segments = r.scrub.corrupt_segments.saturating_sub(taken);
}

/// Asserts that verify found exactly the segments `corrupt` corrupt (with an error each) and
/// nothing else.
#[track_caller]
pub fn assert_verify_only_corrupt(report: &VerifyReport, corrupt: &[u64], ctx: &str) {
    let mut r = report.clone();
    take_corrupt(&mut r, corrupt, ctx);
    assert_verify_clean(&r, &format!("{ctx} (besides corrupt {corrupt:?})"));
}

/// Asserts that verify found exactly the lost local copies `lost` (id, has a cloud copy), in
/// that order, and nothing else.
#[track_caller]
pub fn assert_verify_only_lost(report: &VerifyReport, lost: &[(String, bool)], ctx: &str) {
    let mut r = report.clone();
    let named: Vec<(String, bool)> = r
        .lost
        .iter()
        .map(|l| (l.id.clone(), l.cloud_copy))
        .collect();
    assert_eq!(named, lost, "{ctx}: lost segments");
    r.lost.clear();
    assert_verify_clean(&r, &format!("{ctx} (besides lost {lost:?})"));
}

/// Asserts that verify found exactly the cloud problems `problems` (id, kind), in that
/// order, and nothing else.
#[track_caller]
pub fn assert_verify_only_cloud(report: &VerifyReport, problems: &[(String, &str)], ctx: &str) {
    let mut r = report.clone();
    let kinds: Vec<(String, &str)> = r
        .cloud_problems
        .iter()
        .map(|p| (p.id.clone(), p.kind))
        .collect();
    assert_eq!(kinds, problems, "{ctx}: cloud problems");
    r.cloud_problems.clear();
    assert_verify_clean(&r, &format!("{ctx} (besides cloud problems {problems:?})"));
}

/// Asserts that the segments verify flagged (corrupt or lost) are exactly `flagged`, and
/// that nothing else but volume damage (which a damaged volume header or seal may add) was
/// found. For crash and damage tests where either finding is right.
#[track_caller]
pub fn assert_verify_flags_only(report: &VerifyReport, flagged: &[u64], ctx: &str) {
    let mut r = report.clone();
    let got = sorted(
        r.corrupt
            .iter()
            .cloned()
            .chain(r.lost.iter().map(|l| l.id.clone())),
    );
    assert_eq!(got, ids(flagged), "{ctx}: flagged segments: {:?}", r.errors);
    let corrupt: Vec<u64> = r.corrupt.iter().filter_map(|s| s.parse().ok()).collect();
    take_corrupt(&mut r, &corrupt, ctx);
    r.lost.clear();
    r.volume_damage.clear();
    assert_verify_clean(&r, &format!("{ctx} (besides flagged {flagged:?})"));
}

/// The fields of `footage verify`'s JSON output that hold findings: every non-empty
/// top-level list (corrupt, errors, lost, repaired, cloud_problems, volume_damage and any
/// list added later) and `scrub.findings`, by name, sorted. Empty for a clean report.
pub fn verify_json_findings(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, x)| x.as_array().is_some_and(|a| !a.is_empty()))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    if v["scrub"]["findings"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
        || v["scrub"]["corrupt_segments"].as_u64() != Some(0)
    {
        out.push("scrub.findings".into());
    }
    out.sort();
    out
}

/// The segment a `lost_changes` line of [`VerifyReport`] names ("segment N: ...").
pub fn lost_change_segment(line: &str) -> Option<u64> {
    line.strip_prefix("segment ")?
        .split(':')
        .next()?
        .parse()
        .ok()
}

/// For tests that destroy acknowledged footage on purpose (cutting or flipping volume bytes
/// under an audit log that still lists it): asserts that verify's audit cross-check names
/// every segment in `destroyed` as lost, and returns the report without those lines, so the
/// rest can be checked as usual. Lines about any other segment stay (and fail the check).
#[track_caller]
pub fn expect_lost_changes(report: &VerifyReport, destroyed: &[u64], ctx: &str) -> VerifyReport {
    let mut r = report.clone();
    for id in destroyed {
        assert!(
            r.lost_changes
                .iter()
                .any(|l| lost_change_segment(l) == Some(*id)),
            "{ctx}: verify does not name destroyed segment {id} as lost: {:?}",
            r.lost_changes
        );
    }
    r.lost_changes
        .retain(|l| !lost_change_segment(l).is_some_and(|id| destroyed.contains(&id)));
    r
}
