//! The control channel of `footage serve` (src/control/, docs/DESIGN.md §23): store-changing
//! commands from another process while the service holds the store, carried out by the service
//! with the same output, exit codes and audit actors as without it; hostile clients and other
//! users refused; the socket's mode, its removal, a stale one replaced, a long store path.

mod common;

use std::io::{BufRead, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const START: &str = "2025-11-20T14:03:00Z";
const END: &str = "2025-11-20T14:13:00Z";
/// What every command of these tests says about its user (`$USER`); FOOTAGE_ACTOR is removed.
const USER: &str = "pc.tester";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> &Out {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self
    }
}

fn footage(store: &Path, args: &[&str]) -> Out {
    let o = common::output(
        Command::new(env!("CARGO_BIN_EXE_footage"))
            .arg("--store")
            .arg(store)
            .args(args)
            .env_remove("FOOTAGE_ACTOR")
            .env_remove("FOOTAGE_STORE")
            .env("USER", USER),
    );
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

fn init(store: &Path) {
    footage(store, &["init"]).ok();
}

/// A `footage serve` child; killed when dropped.
struct Serve {
    child: Option<Child>,
    store: PathBuf,
}

impl Serve {
    fn start(store: &Path) -> Serve {
        let mut child = common::spawn(
            Command::new(env!("CARGO_BIN_EXE_footage"))
                .arg("--store")
                .arg(store)
                .args(["serve", "--addr", "127.0.0.1:0", "--quiet"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            let _ = child.kill();
            let status = child.wait();
            panic!("footage serve did not start ({status:?}): {e}: {line:?}")
        });
        assert!(v["control"].as_str().unwrap().ends_with("control.sock"));
        Serve {
            child: Some(child),
            store: store.to_path_buf(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn socket(&self) -> PathBuf {
        self.store.join("control.sock")
    }

    /// SIGTERM (a clean close) and wait.
    fn stop(mut self) {
        let mut c = self.child.take().unwrap();
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        assert!(c.wait().unwrap().success());
    }

    /// SIGKILL: nothing is cleaned up.
    fn kill9(mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        let _ = c.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A command's stdout without the fields that differ between two runs by the clock alone
/// (`ingested`, `now`).
fn normalised(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| {
            let mut v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}"));
            if let Some(o) = v.as_object_mut() {
                o.remove("ingested");
                o.remove("now");
            }
            v
        })
        .collect()
}

/// `text` with every time of the form 2026-12-02T09:00:18.486090Z (the real clock, which
/// error messages quote) replaced by `<time>`.
fn without_clock(text: &str) -> String {
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let fits = b.len() - i >= shape.len()
            && shape.iter().zip(&b[i..]).all(|(s, c)| match s {
                b'd' => c.is_ascii_digit(),
                s => s == c,
            });
        if fits {
            let mut j = i + shape.len();
            while j < b.len() && (b[j] == b'.' || b[j].is_ascii_digit()) {
                j += 1;
            }
            if j < b.len() && b[j] == b'Z' {
                j += 1;
            }
            out.push_str("<time>");
            i = j;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The audit entries of people (not the store's own), as (actor, action, segment).
fn people_audit(store: &Path) -> Vec<(String, String, Value)> {
    let out = footage(store, &["audit"]);
    out.ok();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| {
            let a = e["actor"].as_str().unwrap();
            !a.starts_with('(') && a != "system"
        })
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["segment"].clone(),
            )
        })
        .collect()
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.to_str().unwrap().to_string()
}

/// Inputs for ingest: two clips and a manifest of two more (one of them missing).
fn inputs(dir: &Path) -> (String, String, String) {
    let a = write_file(dir, "a.bin", &common::random_bytes(1, 300_000));
    let b = write_file(dir, "b.bin", &common::random_bytes(2, 2_500_000));
    write_file(dir, "c.bin", &common::random_bytes(3, 70_000));
    let line = |f: &str| {
        format!(
            r#"{{"file": "{f}", "officer": "MET-2", "device": "AX-2", "start": "{START}", "end": "{END}", "tags": ["dock"]}}"#
        )
    };
    let manifest = format!("{}\n{}\n", line("c.bin"), line("a.bin"));
    let m = write_file(dir, "m.jsonl", manifest.as_bytes());
    let bad = format!("{}\n{}\n", line("c.bin"), line("gone.bin"));
    let bad = write_file(dir, "bad.jsonl", bad.as_bytes());
    (a, b, format!("{m}\n{bad}"))
}

/// The status of the service of `store`, through the library's client.
fn status(store: &Path) -> Value {
    footage::control::ControlClient::connect(store)
        .unwrap()
        .status()
        .unwrap()
}

#[test]
fn commands_beside_the_service_print_exit_and_audit_as_they_do_alone() {
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("alone");
    let served = dir.path().join("served");
    init(&alone);
    init(&served);
    let (a, b, manifests) = inputs(dir.path());
    let (m, bad) = manifests.split_once('\n').unwrap();
    let ingest = |f: &str, dev: &str| -> Vec<String> {
        [
            "ingest",
            f,
            "--officer",
            "MET-1",
            "--device",
            dev,
            "--start",
            START,
            "--end",
            END,
            "--category",
            "traffic",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let script: Vec<Vec<String>> = vec![
        ingest(&a, "AX-1"),
        ingest(&b, "AX-1"),
        s(&["ingest", "--manifest", m]),
        ingest("/no/such/clip.mp4", "AX-1"),
        // Duplicates last: a long-running service spends a segment id on each (a new
        // process does not), so ids after them would differ.
        ingest(&a, "AX-1"),
        s(&["ingest", "--manifest", bad]), // a duplicate, and a missing clip: exit 1
        s(&[
            "--actor",
            "sgt.jones",
            "hold",
            "1",
            "--case",
            "OP-TRIDENT-7",
        ]),
        s(&["tag", "2", "stop-and-search"]),
        s(&["categorize", "2", "evidential"]),
        s(&["case", "3", "OP-2"]),
        s(&["tag", "2", "stop-and-search", "--remove"]),
        s(&[
            "--actor",
            "insp.morse",
            "release",
            "1",
            "--case",
            "OP-TRIDENT-7",
        ]),
        s(&["hold", "99", "--case", "OP-1"]), // unknown segment: exit 1
        s(&["hold", "abc", "--case", "OP-1"]), // bad argument: exit 2
        s(&["--actor", "system", "tag", "1", "x"]), // a reserved actor: exit 2
        s(&["retention", "apply"]),
        s(&["retention", "apply", "--now", "2099-01-01T00:00:00Z"]), // clock ahead: exit 2
        s(&[
            "retention",
            "apply",
            "--dry-run",
            "--now",
            "2099-01-01T00:00:00Z",
        ]),
        s(&["compact", "--min-dead", "0.9"]),
        s(&["verify", "--repair"]),
    ];
    let expected: Vec<Out> = script
        .iter()
        .map(|args| footage(&alone, &args.iter().map(String::as_str).collect::<Vec<_>>()))
        .collect();

    let serve = Serve::start(&served);
    for (args, want) in script.iter().zip(&expected) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let got = footage(&served, &args);
        assert_eq!(got.code, want.code, "{args:?}: {}", got.stderr);
        assert_eq!(
            without_clock(&got.stderr),
            without_clock(&want.stderr),
            "{args:?}"
        );
        assert_eq!(
            normalised(&got.stdout),
            normalised(&want.stdout),
            "{args:?}"
        );
    }
    // They went through the service (which held the store all along): it counted them.
    let st = status(&served);
    assert_eq!(st["pid"], serve.pid());
    let accepted = st["control"]["accepted"].as_u64().unwrap();
    assert!(accepted >= 18, "{st}");
    serve.stop();
    assert!(!served.join("control.sock").exists());

    // The same people did the same things, with this process's OS identity beside them.
    let uid = unsafe { libc::getuid() };
    let done = people_audit(&served);
    assert_eq!(done, people_audit(&alone));
    let hold = done.iter().find(|e| e.1 == "hold").unwrap();
    assert!(
        hold.0.starts_with(&format!("sgt.jones (os:uid={uid}")),
        "{hold:?}"
    );
    assert!(done
        .iter()
        .any(|e| e.1 == "ingest" && e.0.starts_with(&format!("{USER} (os:uid={uid}"))));
    assert!(done
        .iter()
        .any(|e| e.1 == "release" && e.0.starts_with("insp.morse (")));
}

/// Writes a raw frame.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind];
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// Sends raw bytes on a new connection; returns what the service answered before closing.
fn raw_exchange(socket: &Path, bytes: &[u8]) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The service may answer and close before it read everything (a refusal, a bad header):
    // then the write fails and its answer is still there to read.
    let _ = s.write_all(bytes);
    // The end of our side: the service answers, finds no next request, and closes.
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_hostile_client_is_refused_and_the_service_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    init(&store);
    let clip = write_file(dir.path(), "a.bin", &common::random_bytes(4, 10_000));
    let serve = Serve::start(&store);
    let sock = serve.socket();

    let garbage = raw_exchange(&sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(garbage.contains("unknown frame kind"), "{garbage}");
    let mut huge = vec![b'J'];
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    let huge = raw_exchange(&sock, &huge);
    assert!(huge.contains("above the limit"), "{huge}");
    let other_version = raw_exchange(&sock, &frame(b'J', br#"{"v":99,"op":"status"}"#));
    assert!(
        other_version.contains("protocol version 99"),
        "{other_version}"
    );
    let not_json = raw_exchange(&sock, &frame(b'J', b"{nope"));
    assert!(not_json.contains("not JSON"), "{not_json}");
    let forbidden = raw_exchange(
        &sock,
        &frame(
            b'J',
            br#"{"v":1,"op":"run","argv":["footage","init"],"pretty":false}"#,
        ),
    );
    assert!(forbidden.contains("not carried out"), "{forbidden}");
    assert!(forbidden.contains(r#"{"exit":1}"#), "{forbidden}");
    // A segment stating 10 bytes and sending 20: refused; nothing stored.
    let meta = br#"{"v":1,"op":"segment","meta":{"officer":"MET-1","device":"AX-1","start_us":0,"end_us":1,"gps":[],"cases":[],"tags":[],"categories":[]},"length":10}"#;
    let mut over = frame(b'J', meta);
    over.extend(frame(b'D', &[7; 20]));
    let over = raw_exchange(&sock, &over);
    assert!(over.contains("more bytes than the 10"), "{over}");
    // A relayed audit entry of a changing action is refused.
    let relay = raw_exchange(
        &sock,
        &frame(
            b'J',
            br#"{"v":1,"op":"audit","actor":"x","action":"hold","segment":1,"details":"{}"}"#,
        ),
    );
    assert!(relay.contains("only read-like actions"), "{relay}");

    // Half-open connections fill the slots: one more is told the service is busy.
    wait_for_slots(&store, 1);
    let mut idle = Vec::new();
    for _ in 0..16 {
        let mut s = UnixStream::connect(&sock).unwrap();
        // Half a header, then silence. Under load the service may already have turned this
        // one away (busy) and closed it: the write then fails, which is no failure here.
        let _ = s.write_all(&[b'J', 1, 0]);
        idle.push(s);
    }
    // The service admits them in turn; once it has, a 17th connection is turned away.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let busy = loop {
        let answer = raw_exchange(&sock, &frame(b'J', br#"{"v":1,"op":"status"}"#));
        if answer.contains("busy") || std::time::Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(busy.contains("busy"), "{busy}");
    drop(idle);
    wait_for_slots(&store, 1);

    // The service still works, and counted what it refused.
    let ok = footage(
        &store,
        &[
            "ingest",
            &clip,
            "--officer",
            "MET-1",
            "--device",
            "AX-1",
            "--start",
            START,
            "--end",
            END,
        ],
    );
    ok.ok();
    let id: Value = serde_json::from_str(&ok.stdout).unwrap();
    let id = id["id"].as_str().unwrap().to_string();
    footage(&store, &["hold", &id, "--case", "OP-1"]).ok();
    let st = status(&store);
    assert!(
        st["control"]["protocol_errors"].as_u64().unwrap() >= 5,
        "{st}"
    );
    assert!(st["control"]["busy"].as_u64().unwrap() >= 1, "{st}");
    serve.stop();
    let info = footage(&store, &["info", &id]);
    assert!(info.ok().stdout.contains("OP-1"));
    let stats: Value = serde_json::from_str(&footage(&store, &["stats"]).stdout).unwrap();
    assert_eq!(stats["segments"], 1, "the refused segment stored nothing");
}

/// Waits until the service serves `n` connections, the one asking included (it takes a slot
/// when it accepts a connection, and frees it when it sees the connection close).
fn wait_for_slots(store: &Path, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let st = footage::control::ControlClient::connect(store).and_then(|c| c.status());
        if st.is_ok_and(|st| st["control"]["active"] == n) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {n} connections"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a process running as `nobody` gets when it connects to `socket`: `Err(errno)` from
/// connect, or the bytes the service sent before closing.
fn connect_as_nobody(socket: &Path) -> Result<Vec<u8>, i32> {
    use std::os::unix::ffi::OsStrExt;
    const NOBODY: libc::uid_t = 65534;
    // Everything the child needs is prepared here: after fork only async-signal-safe calls.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = socket.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len(), "a short test path");
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // The child: drop to nobody, connect, report.
        unsafe {
            libc::close(fds[0]);
            let fail = |code: u8| {
                let b = [0u8, code];
                libc::write(fds[1], b.as_ptr().cast(), 2);
                libc::_exit(0);
            };
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY) != 0
                || libc::setuid(NOBODY) != 0
            {
                fail(255);
            }
            let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if s < 0 {
                fail(254);
            }
            if libc::connect(s, std::ptr::addr_of!(addr).cast(), len) != 0 {
                fail(*libc::__errno_location() as u8);
            }
            let mut buf = [0u8; 2048];
            let mut got = 1usize;
            buf[0] = 1;
            loop {
                let n = libc::read(s, buf.as_mut_ptr().add(got).cast(), buf.len() - got);
                if n <= 0 {
                    break;
                }
                got += n as usize;
            }
            libc::write(fds[1], buf.as_ptr().cast(), got);
            libc::_exit(0);
        }
    }
    unsafe { libc::close(fds[1]) };
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    let mut out = Vec::new();
    f.read_to_end(&mut out).unwrap();
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    match out.split_first() {
        Some((1, rest)) => Ok(rest.to_vec()),
        Some((0, [code])) if *code < 254 => Err(i32::from(*code)),
        other => panic!("the child could not become nobody: {other:?}"),
    }
}

#[test]
fn the_channel_refuses_other_users() {
    if unsafe { libc::geteuid() } != 0 {
        common::skip(
            "the_channel_refuses_other_users",
            "needs root to run a client as another user (nobody); the socket's group cannot \
             be set to one this user is not in",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    init(&store);
    let serve = Serve::start(&store);
    let sock = serve.socket();
    // Gate 1: the socket's mode (and the store directory's) keeps nobody out.
    assert_eq!(connect_as_nobody(&sock), Err(libc::EACCES));
    // Gate 2: with the modes opened wide by mistake, the peer credentials still refuse.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let answer = connect_as_nobody(&sock).expect("the kernel lets nobody connect now");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("refuses uid 65534"), "{text}");
    let st = status(&store);
    assert_eq!(st["control"]["refused"], 1, "{st}");
    // Root (this process) is still served.
    footage(&store, &["compact"]).ok();
    serve.stop();
}

#[test]
fn a_member_of_the_store_group_changes_the_store_through_the_service_as_themselves() {
    if unsafe { libc::geteuid() } != 0 {
        common::skip(
            "a_member_of_the_store_group_changes_the_store_through_the_service_as_themselves",
            "needs root to run the CLI as another user (nobody) in the store's group",
        );
        return;
    }
    const NOBODY: u32 = 65534;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = dir.path().join("store");
    init(&store);
    let clip = write_file(dir.path(), "a.bin", &common::random_bytes(9, 5000));
    std::fs::set_permissions(&clip, std::fs::Permissions::from_mode(0o644)).unwrap();
    let group = std::fs::metadata(&store).unwrap().gid();
    let serve = Serve::start(&store);
    // nobody, with the store's group: may read the store's files, may write none of them.
    let as_member = |args: &[&str]| -> Out {
        use std::os::unix::process::CommandExt;
        let o = common::output(
            Command::new(env!("CARGO_BIN_EXE_footage"))
                .arg("--store")
                .arg(&store)
                .args(args)
                .env_remove("FOOTAGE_ACTOR")
                .env("USER", "pc.member")
                .current_dir(dir.path())
                .uid(NOBODY)
                .gid(group),
        );
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
        }
    };
    let ingest = as_member(&[
        "ingest",
        &clip,
        "--officer",
        "MET-1",
        "--device",
        "AX-1",
        "--start",
        START,
        "--end",
        END,
    ]);
    ingest.ok();
    let id: Value = serde_json::from_str(&ingest.stdout).unwrap();
    let id = id["id"].as_str().unwrap().to_string();
    as_member(&["--actor", "sgt.member", "hold", &id, "--case", "OP-9"]).ok();
    serve.stop();
    // Without the service the same user cannot change the store: the original error stands.
    let alone = as_member(&["tag", &id, "x"]);
    assert_eq!(alone.code, 1, "{}", alone.stderr);
    assert!(
        alone.stderr.contains("ermission denied"),
        "{}",
        alone.stderr
    );
    let audit = people_audit(&store);
    let who = format!("(os:uid={NOBODY}");
    assert!(
        audit
            .iter()
            .any(|e| e.1 == "ingest" && e.0.starts_with(&format!("pc.member {who}"))),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|e| e.1 == "hold" && e.0.starts_with(&format!("sgt.member {who}"))),
        "{audit:?}"
    );
}

#[test]
fn the_socket_is_0660_goes_at_shutdown_and_a_stale_one_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    init(&store);
    let clip = write_file(dir.path(), "a.bin", &common::random_bytes(5, 1000));
    let serve = Serve::start(&store);
    let sock = serve.socket();
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o660);
    assert_eq!(meta.gid(), std::fs::metadata(&store).unwrap().gid());
    let first = meta.ino();
    serve.kill9();
    // The killed service left its socket; nothing answers on it.
    assert!(sock.exists());
    assert!(UnixStream::connect(&sock).is_err());

    let serve = Serve::start(&store);
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert_ne!(meta.ino(), first, "a new socket replaced the stale one");
    assert_eq!(meta.mode() & 0o7777, 0o660);
    let ingest = [
        "ingest",
        &clip,
        "--officer",
        "MET-1",
        "--device",
        "AX-1",
        "--start",
        START,
        "--end",
        END,
    ];
    footage(&store, &ingest).ok();
    footage(&store, &["hold", "1", "--case", "OP-1"]).ok();
    serve.stop();
    assert!(!sock.exists(), "the socket is removed at shutdown");
    // No service, not locked: commands run alone again.
    footage(&store, &["release", "1", "--case", "OP-1"]).ok();
}

#[test]
fn a_store_path_too_long_for_a_socket_address_is_reached_through_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = dir.path().to_path_buf();
    for _ in 0..6 {
        store.push("a-rather-long-directory-name");
    }
    assert!(store.join("control.sock").as_os_str().len() > 108);
    std::fs::create_dir_all(store.parent().unwrap()).unwrap();
    init(&store);
    let clip = write_file(dir.path(), "a.bin", &common::random_bytes(6, 1000));
    let serve = Serve::start(&store);
    let out = footage(
        &store,
        &[
            "ingest",
            &clip,
            "--officer",
            "MET-1",
            "--device",
            "AX-1",
            "--start",
            START,
            "--end",
            END,
        ],
    );
    out.ok();
    footage(&store, &["tag", "1", "long-path"]).ok();
    assert_eq!(status(&store)["pid"], serve.pid());
    serve.stop();
    assert!(footage(&store, &["info", "1"]).stdout.contains("long-path"));
}

#[test]
fn the_audit_relay_records_reads_as_the_peer_not_as_the_client_says() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    init(&store);
    let serve = Serve::start(&store);
    let client = footage::control::ControlClient::connect(&store).unwrap();
    client
        .audit(
            "reviewer.k (os:uid=4242 user=mallory)",
            "view",
            Some(7),
            r#"{"range":"0-99"}"#,
        )
        .unwrap();
    client
        .audit("reviewer.k", "query", None, "not json")
        .unwrap();
    let refused = client
        .audit("reviewer.k", "delete", Some(7), "{}")
        .unwrap_err();
    assert!(refused.to_string().contains("read-like"), "{refused}");
    assert!(client.audit("(footage)", "view", None, "{}").is_err());
    assert!(client.audit("system", "view", None, "{}").is_err());
    serve.stop();
    let uid = unsafe { libc::getuid() };
    let entries = people_audit(&store);
    let views: Vec<_> = entries
        .iter()
        .filter(|e| e.0.starts_with("reviewer.k"))
        .collect();
    assert_eq!(views.len(), 2, "{entries:?}");
    for (actor, _, _) in &views {
        assert!(
            actor.starts_with(&format!("reviewer.k (os:uid={uid}")),
            "{actor}"
        );
        assert!(
            !actor.contains("4242") && !actor.contains("mallory"),
            "{actor}"
        );
    }
    assert_eq!(views[0].1, "view");
    assert_eq!(views[0].2, Value::from("7"));
}

#[test]
fn a_segment_being_received_when_the_service_stops_is_finished_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    init(&store);
    let serve = Serve::start(&store);
    let sock = serve.socket();
    let data = common::random_bytes(8, 200_000);
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let meta = br#"{"v":1,"op":"segment","meta":{"officer":"MET-9","device":"AX-9","start_us":0,"end_us":1,"gps":[],"cases":[],"tags":[],"categories":[]},"length":200000,"actor":"dock-7","user":null}"#;
    s.write_all(&frame(b'J', meta)).unwrap();
    s.write_all(&frame(b'D', &data[..100_000])).unwrap();
    wait_for_slots(&store, 2); // ours is accepted (one not yet accepted is dropped at stop)

    unsafe { libc::kill(serve.pid() as i32, libc::SIGTERM) };
    // The service is stopping once it takes no new connection.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while UnixStream::connect(&sock).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the service never stopped accepting"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // ... and still receives the rest of the segment it was in, and answers.
    s.write_all(&frame(b'D', &data[100_000..])).unwrap();
    s.write_all(&frame(b'D', b"")).unwrap();
    let mut head = [0u8; 5];
    s.read_exact(&mut head).unwrap();
    let mut body = vec![0u8; u32::from_le_bytes(head[1..].try_into().unwrap()) as usize];
    s.read_exact(&mut body).unwrap();
    let reply: Value = serde_json::from_slice(&body).unwrap();
    let id = reply["committed"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{reply}"));
    serve.stop();
    assert!(!sock.exists());
    let info: Value = serde_json::from_str(&footage(&store, &["info", id]).stdout).unwrap();
    assert_eq!(info["bytes"], 200_000);
    let audit = people_audit(&store);
    assert!(audit
        .iter()
        .any(|e| e.1 == "ingest" && e.0.starts_with("dock-7 (os:uid=")));
}

#[test]
fn audit_publish_beside_the_service_is_carried_out_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let cloud = dir.path().join("cloud");
    std::fs::create_dir(&cloud).unwrap();
    init(&store);
    std::fs::write(
        store.join("policy.toml"),
        format!(
            "[cloud]\nurl = \"file://{}\"\n\n[category.default]\nupload = true\n\
             evict_after = \"1d\"\ndelete_after = \"never\"\n",
            cloud.display()
        ),
    )
    .unwrap();
    let s = Serve::start(&store);
    // A durable entry first (the service's ingest), so the head has something to name.
    let clip = write_file(dir.path(), "clip.bin", &[7u8; 5000]);
    footage(
        &store,
        &[
            "ingest",
            &clip,
            "--officer",
            "MET-1",
            "--device",
            "AX-1",
            "--start",
            START,
            "--end",
            END,
        ],
    )
    .ok();
    let published = footage(&store, &["audit", "--publish"]);
    let head: Value = serde_json::from_str(published.ok().stdout.trim()).unwrap();
    let count = head["count"].as_u64().unwrap();
    assert!(count >= 1, "{head}");
    // The head is in the cloud: a read-only `audit --verify --cloud` beside the service finds it.
    let checked = footage(&store, &["audit", "--verify", "--cloud"]);
    let v: Value = serde_json::from_str(&checked.ok().stdout).unwrap();
    assert_eq!(
        v["cloud_head"]["head"]["count"].as_u64(),
        Some(count),
        "{v}"
    );
    assert!(v["cloud_head"]["problem"].is_null(), "{v}");
    s.stop();
}
