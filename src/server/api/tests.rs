//! Unit tests of `server/api.rs` (the module is `super`).

use super::*;

#[test]
fn find_params() {
    let a = find_args("officer=A&officer=B&near=51.5,-0.12&radius=100&limit=5&cursor=1.2&tag=")
        .unwrap();
    assert_eq!(a.officer, vec!["A", "B"]);
    assert_eq!(a.near, Some((51.5, -0.12)));
    assert_eq!(a.limit, Some(5));
    assert_eq!(a.after.as_deref(), Some("1.2"));
    assert!(a.tag.is_none());
    for bad in [
        "near=51.5,-0.12",
        "radius=5",
        "from=yesterday",
        "limit=0",
        "limit=100000",
        "bogus=1",
        "to=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "officer=a%20b",
        "near=1,2&radius=3&bbox=1,2,3,4",
    ] {
        assert!(find_args(bad).is_err(), "{bad}");
    }
}
