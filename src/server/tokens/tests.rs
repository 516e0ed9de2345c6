//! Unit tests of `server/tokens.rs` (moved out of it whole; the module is `super`).

use super::*;

#[test]
fn add_check_remove() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(crate::CONFIG_FILE), "").unwrap();
    let a = add(dir.path(), "sgt.jones", false).unwrap();
    let b = add(dir.path(), "viewer", true).unwrap();
    assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 4 + 64);
    assert!(add(dir.path(), "viewer", true).is_err());
    let set = TokenSet::load(dir.path()).unwrap();
    assert_eq!(set.check(&a).map(|e| e.name.as_str()), Some("sgt.jones"));
    assert_eq!(set.check(&b).map(|e| e.read_only()), Some(true));
    assert!(
        marker_path(dir.path()).is_file(),
        "the first token makes the marker"
    );
    assert!(set.check("ftg_nope").is_none());
    let text = std::fs::read_to_string(tokens_path(dir.path())).unwrap();
    assert!(!text.contains(&a[4..]), "the secret itself is never stored");
    remove(dir.path(), "sgt.jones").unwrap();
    let set = TokenSet::load(dir.path()).unwrap();
    assert!(set.check(&a).is_none());
    assert_eq!(set.len(), 1);
    assert!(remove(dir.path(), "sgt.jones").is_err());
}

#[test]
fn damaged_file_is_an_error() {
    assert!(TokenSet::parse("{").is_err());
    assert!(TokenSet::parse(r#"{"format_version":3,"tokens":[]}"#).is_err());
    // Each version with its own field, never the other's.
    for bad in [
        r#"{"format_version":1,"tokens":[{"name":"a","sha256":"SHA","role":"read","created":""}]}"#,
        r#"{"format_version":2,"tokens":[{"name":"a","sha256":"SHA","read_only":true,"created":""}]}"#,
        r#"{"format_version":2,"tokens":[{"name":"a","sha256":"SHA","role":"admin","created":""}]}"#,
        r#"{"format_version":2,"tokens":[{"name":"a","sha256":"SHA","created":""}]}"#,
    ] {
        assert!(
            TokenSet::parse(&bad.replace("SHA", &"0".repeat(64))).is_err(),
            "{bad}"
        );
    }
    assert!(TokenSet::parse(
        r#"{"format_version":1,"tokens":[{"name":"a","sha256":"zz","read_only":false,"created":""}]}"#
    )
    .is_err());
    assert!(TokenSet::parse(r#"{"format_version":1,"tokens":[]}"#)
        .unwrap()
        .is_empty());
}

#[test]
fn reserved_names() {
    for n in [
        "system",
        "SYSTEM",
        "local",
        "unknown",
        "uid:0",
        "uid:",
        "(footage)",
    ] {
        assert!(is_reserved(n), "{n}");
    }
    for n in ["sgt.jones", "systems", "uid0", "localhost"] {
        assert!(!is_reserved(n), "{n}");
    }
}

#[test]
fn no_store_no_tokens() {
    let dir = tempfile::tempdir().unwrap();
    assert!(add(dir.path(), "x", false).is_err());
}
