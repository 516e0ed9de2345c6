//! Issue 10, items 8, 9 and 17: files, permissions, keys and fail points.
//!
//! - item 8: user-named outputs (`export`, `get --out`) are created without following a
//!   planted link and without replacing what is there (`get --out --force` replaces a file
//!   or a link, never writing through it);
//! - item 9: everything the store creates is 0640 (0600 for secrets) and every directory 0750
//!   whatever the umask, owned by the group named at `init --group`; a key file that its
//!   group or others may read or write is refused;
//! - item 17: key material is wiped on drop, and fail points work in the test build (the
//!   release build ignores `FOOTAGE_FAILPOINT`: scripts/check-failpoints-off.sh).

mod common;

use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use footage::StoreOptions;

const BIN: &str = env!("CARGO_BIN_EXE_footage");

/// Runs the CLI; spawns and in-process opens take turns (common::FORK_GATE), so a child
/// forked here never holds the lock of a store another test is opening.
fn footage(store: &Path, args: &[&str]) -> Output {
    common::output(
        Command::new(BIN)
            .arg("--store")
            .arg(store)
            .args(args)
            .env_remove("FOOTAGE_KEY")
            .env_remove("FOOTAGE_KEY_FILE")
            .env_remove("FOOTAGE_FAILPOINT"),
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A store (made through the CLI, as an operator would) holding one segment of random bytes.
fn store_with_segment(dir: &Path) -> (PathBuf, u64, Vec<u8>) {
    let root = dir.join("store");
    let o = footage(&root, &["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let store = common::open_gated(&root, &footage::StoreOptions::default()).unwrap();
    let data = common::random_bytes(8, 200_000);
    let id = store
        .ingest_bytes(common::meta("MET-1", "AX-1", common::T0), &data)
        .unwrap()
        .id;
    store.close().unwrap();
    (root, id, data)
}

#[test]
fn item08_export_does_not_follow_planted_links() {
    let dir = tempfile::tempdir().unwrap();
    let (root, id, data) = store_with_segment(dir.path());
    let out = dir.path().join("handover");
    std::fs::create_dir(&out).unwrap();
    // An attacker who can write to the export directory plants links at the names the
    // temporary files used to have, pointing at a file of the victim's.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    for name in [
        format!(".{id}.bin.footage-partial"),
        format!(".{id}.custody.json.footage-partial"),
    ] {
        std::os::unix::fs::symlink(&victim, out.join(name)).unwrap();
    }
    let store = common::open_gated(&root, &footage::StoreOptions::default()).unwrap();
    let done = store.export(id, &out);
    assert!(
        std::fs::read(&victim).unwrap() == b"precious",
        "victim overwritten"
    );
    let done = done.unwrap();
    for p in [&done.file, &done.custody] {
        let m = std::fs::symlink_metadata(p).unwrap();
        assert!(
            m.file_type().is_file(),
            "{} is not a regular file",
            p.display()
        );
        assert_eq!(m.mode() & 0o777, 0o640, "{}", p.display());
    }
    assert!(std::fs::read(&done.file).unwrap() == data);
    // A (dangling) link at the final name is something that is there: export refuses.
    let out2 = dir.path().join("handover2");
    std::fs::create_dir(&out2).unwrap();
    let planted = out2.join(format!("{id}.bin"));
    std::os::unix::fs::symlink(dir.path().join("attacker-owned"), &planted).unwrap();
    let e = store.export(id, &out2).unwrap_err().to_string();
    assert!(e.contains("already exists"), "{e}");
    assert!(std::fs::symlink_metadata(&planted)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!dir.path().join("attacker-owned").exists());
    // Nothing but the planted link is left behind.
    assert_eq!(std::fs::read_dir(&out2).unwrap().count(), 1);
}

#[test]
fn item08_get_out_does_not_follow_planted_links() {
    let dir = tempfile::tempdir().unwrap();
    let (root, id, data) = store_with_segment(dir.path());
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let out = dir.path().join("clip.bin");
    // `get --out clip.bin` used `clip.footage-partial` as its temporary file.
    std::os::unix::fs::symlink(&victim, dir.path().join("clip.footage-partial")).unwrap();
    let o = footage(
        &root,
        &["get", &id.to_string(), "--out", out.to_str().unwrap()],
    );
    assert!(
        std::fs::read(&victim).unwrap() == b"precious",
        "victim overwritten"
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m = std::fs::symlink_metadata(&out).unwrap();
    assert!(m.file_type().is_file());
    assert!(std::fs::read(&out).unwrap() == data);
    let o = footage(
        &root,
        &[
            "get",
            &id.to_string(),
            "--verify",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "replaced an existing file");
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
}

#[test]
fn item08_get_out_replaces_only_with_force_and_never_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let (root, id, data) = store_with_segment(dir.path());
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let link = dir.path().join("out.bin");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let id = id.to_string();
    let o = footage(&root, &["get", &id, "--out", link.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "wrote over an existing link");
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert!(std::fs::read(&victim).unwrap() == b"precious");
    let o = footage(
        &root,
        &["get", &id, "--force", "--out", link.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read(&victim).unwrap() == b"precious",
        "written through"
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_file());
    assert!(std::fs::read(&link).unwrap() == data);
    // No temporary file is left in the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("partial")),
        "left behind: {names:?}"
    );
}

/// A group other than the process's own (so inheritance from the creator cannot pass for
/// the configured group), with its name and id.
fn other_group() -> (String, u32) {
    // SAFETY: getegid cannot fail.
    let egid = unsafe { libc::getegid() };
    let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
    for line in text.lines() {
        let mut f = line.split(':');
        let (Some(name), _, Some(gid)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Ok(gid) = gid.parse::<u32>() else {
            continue;
        };
        // As an unprivileged user only a group we are in can be given away to.
        // SAFETY: plain syscalls on a valid C string.
        let member = unsafe { libc::geteuid() } == 0 || {
            let mut groups = [0 as libc::gid_t; 256];
            let n = unsafe { libc::getgroups(256, groups.as_mut_ptr()) };
            groups[..n.max(0) as usize].contains(&gid)
        };
        if gid != egid && member && CString::new(name).is_ok() {
            return (name.to_string(), gid);
        }
    }
    panic!("no group to test with in /etc/group");
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn item09_store_files_are_0640_dirs_0750_in_the_configured_group_whatever_the_umask() {
    // The loosest umask: only explicit modes keep the files private.
    // SAFETY: umask cannot fail; the other tests here do not depend on it.
    unsafe { libc::umask(0) };
    let dir = tempfile::tempdir().unwrap();
    let (group, gid) = other_group();
    let root = dir.path().join("store");
    let o = footage(&root, &["init", "--group", &group]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = std::fs::read_to_string(root.join(footage::CONFIG_FILE)).unwrap();
    assert!(cfg.contains(&format!("group = \"{group}\"")), "{cfg}");
    // Everything a store makes: volumes, tracks, checkpoints, audit log, scrub state,
    // tokens, policy, config, LOCK.
    let store = common::open_gated(&root, &footage::StoreOptions::default()).unwrap();
    for i in 0..3 {
        store
            .ingest_bytes(
                common::meta("MET-1", "AX-1", common::T0 + i * 60_000_000),
                &common::random_bytes(i as u64, 300_000),
            )
            .unwrap();
    }
    store.checkpoint().unwrap();
    store
        .scrub_pass(&footage::ScrubOptions::default(), &mut |_| {})
        .unwrap();
    store.close().unwrap();
    footage::server::tokens::add(&root, "sgt.jones", true).unwrap();
    let o = footage(&root, &["stats"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut all = Vec::new();
    walk(&root, &mut all);
    let names = |p: &Path| p.strip_prefix(&root).unwrap().display().to_string();
    assert!(all.iter().any(|p| names(p).contains("vol-")), "{all:?}");
    assert!(
        all.iter().any(|p| names(p).starts_with("audit/")),
        "{all:?}"
    );
    assert!(
        all.iter().any(|p| names(p).starts_with("scrub/")),
        "{all:?}"
    );
    for p in &all {
        let m = std::fs::symlink_metadata(p).unwrap();
        let mode = m.mode() & 0o7777;
        if m.is_dir() {
            assert_eq!(mode, 0o2750, "{}: {mode:o}", names(p));
        } else {
            assert!(
                mode == 0o640 || mode == 0o600,
                "{}: mode {mode:o}",
                names(p)
            );
        }
        assert_eq!(m.gid(), gid, "{}: group", names(p));
    }
}

#[test]
fn item09_an_unknown_group_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let o = footage(&root, &["init", "--group", "no-such-group-x9"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no-such-group-x9") && stderr(&o).contains("groupadd"),
        "{}",
        stderr(&o)
    );
    assert!(!root.join(footage::CONFIG_FILE).exists());
}

#[test]
fn item09_a_key_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("store.key");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    for mode in [0o644, 0o640, 0o620, 0o604] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = footage::Key::from_file(&key).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{mode:04o}")) && e.contains("chmod 600"),
            "mode {mode:o}: {e}"
        );
        let root = dir.path().join(format!("store-{mode:o}"));
        let o = footage(
            &root,
            &["--key-file", key.to_str().unwrap(), "init", "--encrypt"],
        );
        assert_eq!(o.status.code(), Some(1), "mode {mode:o}: {}", stderr(&o));
        assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    }
    for mode in [0o600, 0o400] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        footage::Key::from_file(&key).unwrap();
    }
    // The library refuses it too, when a store is opened with it.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let k = footage::Key::from_file(&key).unwrap();
    let root = dir.path().join("lib");
    let opts = StoreOptions {
        key: Some(k),
        ..StoreOptions::default()
    };
    common::open_gated(&root, &opts).unwrap().close().unwrap();
}

#[test]
fn item17_failpoints_abort_the_test_build() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::output(
        Command::new(BIN)
            .arg("--store")
            .arg(dir.path().join("store"))
            .arg("init")
            .env("FOOTAGE_FAILPOINT", "write_atomic.before_rename"),
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(libc::SIGABRT), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("failpoint write_atomic.before_rename reached"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn item17_key_material_is_wiped_on_drop() {
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wiped_on_drop::<footage::Key>();
    wiped_on_drop::<footage::crypt::SegmentCipher>();
    // Key text handed out (for a new key file) is wiped on drop too.
    let text: zeroize::Zeroizing<String> = footage::Key::generate().hex();
    assert_eq!(text.len(), 64);
    // This build has fail points; a build without the feature has none (see
    // scripts/check-failpoints-off.sh).
    const { assert!(footage::fail::COMPILED) };
}
