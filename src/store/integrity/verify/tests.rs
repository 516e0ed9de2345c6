//! Unit tests of `store/integrity/verify.rs` (moved out of it whole; the module is `super`).

use super::*;

/// Each finding field alone makes a report unclean, and an empty report is clean.
#[test]
fn item20_every_finding_field_makes_a_report_unclean() {
    assert!(VerifyReport::default().is_clean());
    type SetFinding = fn(&mut VerifyReport);
    let cases: Vec<(&str, SetFinding)> = vec![
        ("corrupt", |r| r.corrupt.push("7".into())),
        ("errors", |r| {
            r.errors.push(CorruptSegment {
                id: "7".into(),
                error: "crc".into(),
            })
        }),
        ("lost", |r| {
            r.lost.push(LostSegment {
                id: "7".into(),
                volume: 3,
                dir: None,
                reason: "missing".into(),
                cloud_copy: false,
            })
        }),
        ("repaired", |r| r.repaired.push("7".into())),
        ("cloud_problems", |r| {
            r.cloud_problems.push(CloudProblem {
                id: "7".into(),
                kind: "sha256",
                detail: "mismatch".into(),
            })
        }),
        ("volume_damage", |r| r.volume_damage.push("volume 1".into())),
        ("lost_changes", |r| {
            r.lost_changes.push("segment 7: hold lost".into())
        }),
        ("scrub.corrupt_segments", |r| r.scrub.corrupt_segments = 1),
        ("scrub.findings", |r| {
            r.scrub.findings.push(FindingInfo {
                id: "7".into(),
                found: String::new(),
                state: "corrupt",
                cloud_copy: false,
                detail: String::new(),
            })
        }),
    ];
    for (field, set) in cases {
        let mut r = VerifyReport::default();
        set(&mut r);
        assert!(!r.is_clean(), "a report with {field} set counts as clean");
        assert_eq!(r.problems().len(), 1, "{field}: {:?}", r.problems());
    }
    // What only counts work is no finding.
    let r = VerifyReport {
        checked: 3,
        bytes: 10,
        cloud_checked: 2,
        ..VerifyReport::default()
    };
    assert!(r.is_clean());
}
