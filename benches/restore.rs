//! Restore throughput: `Store::restore` of an evicted segment (spans of 8 MiB fetched with
//! several requests in flight, CRC32 per 1 MiB block, SHA-256 on its own thread beside the
//! append, chunk records appended with their write-out started at once, one fdatasync, commit
//! record and `Restored` change record, audit entry) against, in the same run:
//!
//! - `object_store get`: a plain get of the same part objects into memory (the goal:
//!   restore / get >= 0.9);
//! - `get+write+fdatasync`: the same get, the bytes written to a plain preallocated file and
//!   one fdatasync: "a get that also keeps the bytes", about the least any restore must do;
//! - `sha256 alone`: the SHA-256 of the same bytes in memory, which a restore must also do
//!   before the bytes count (a restore cannot be faster than this either).
//!
//! Targets: `file://` always; Azurite when FOOTAGE_AZURITE_URL is set (scripts/azurite.sh
//! prints how), skipped with a note otherwise.
//!
//! Each iteration ingests, uploads and evicts a fresh segment (not timed), times the restore
//! (or a baseline on that segment's bytes), then deletes it (not timed) so the disk does not
//! fill. `cargo bench --bench restore` (FOOTAGE_BENCH_RESTORE_MB sets the segment size,
//! default 64). `RUST_LOG=footage::store::lifecycle::restore=debug` prints where each restore's time
//! went (fetch+write, fdatasync, commit record, `Restored` record, audit).

#[path = "common/mod.rs"]
mod common;

use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use footage::StoreOptions;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::Digest;

const GET: &str = "object_store get";
const GET_WRITE: &str = "get+write+fdatasync";
const SHA: &str = "sha256 alone";
const RESTORE: &str = "footage restore";

/// One timed function: gets a fresh evicted segment's id, bytes and part paths, returns the
/// time it spent.
type Timed<'a> = dyn FnMut(u64, &[u8], &[ObjPath]) -> Duration + 'a;

/// The object store a tier URL names, as the tier opens it (file:// or az://).
fn baseline_store(url: &str) -> Arc<dyn ObjectStore> {
    let parsed = url::Url::parse(url).unwrap();
    if parsed.scheme() == "file" {
        let dir = parsed.to_file_path().unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dir).unwrap())
    } else {
        let opts = std::env::vars().filter_map(|(k, v)| {
            let l = k.to_ascii_lowercase();
            l.starts_with("azure_").then_some((l, v))
        });
        let (s, p) = object_store::parse_url_opts(&parsed, opts).unwrap();
        Arc::new(object_store::prefix::PrefixStore::new(s, p))
    }
}

fn bench_target(c: &mut Criterion, name: &str, url: &str, mb: usize) {
    let len = mb * common::MIB;
    let dir = common::scratch("restore");
    let root = dir.path().join("store");
    let store = footage::testing::open_or_create_with(&root, &StoreOptions::default()).unwrap();
    let policy = std::fs::read_to_string(root.join("policy.toml"))
        .unwrap()
        .replace("file:///var/lib/footage-cloud", url);
    std::fs::write(root.join("policy.toml"), policy).unwrap();
    let base = baseline_store(url);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sid = store.config().store_id.to_ascii_lowercase();
    // The plain file of the get+write baseline, preallocated once (not timed), on the same
    // disk as the store.
    let plain_path = dir.path().join("plain");
    let plain = std::fs::File::create(&plain_path).unwrap();
    // SAFETY: a valid open file descriptor; fallocate only reserves blocks.
    let r = unsafe { libc::fallocate(plain.as_raw_fd(), 0, 0, len as libc::off_t) };
    assert_eq!(r, 0, "fallocate {}", plain_path.display());
    plain.sync_all().unwrap();
    let mut n = 0u64;
    // A fresh evicted segment: (id, its bytes, the object paths of its parts).
    let mut evicted = |n: &mut u64| -> (u64, Vec<u8>, Vec<ObjPath>) {
        *n += 1;
        let mut data = common::random_bytes(len, *n);
        common::stamp(&mut data, *n);
        let id = store
            .ingest_bytes(common::meta(0, *n, 4), &data)
            .unwrap()
            .id;
        store.upload(id, "bench", &mut |_| {}).unwrap();
        store.evict(id, "bench").unwrap();
        let parts = (len as u64).div_ceil(footage::tier::PART_SIZE);
        let paths = (0..parts)
            .map(|p| ObjPath::from(format!("{sid}/segments/{id:020}/part-{p:05}")))
            .collect();
        (id, data, paths)
    };
    let group_name = format!("restore/{name}/{mb}MiB");
    let mut group = c.benchmark_group(&group_name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(criterion::Throughput::Bytes(len as u64));
    let get = |paths: &[ObjPath]| -> Vec<bytes::Bytes> {
        paths
            .iter()
            .map(|path| rt.block_on(async { base.get(path).await.unwrap().bytes().await.unwrap() }))
            .collect()
    };
    let mut timed = |func: &str, run: &mut Timed| {
        let (group_name, evicted, n, store) = (&group_name, &mut evicted, &mut n, &store);
        group.bench_function(func, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (id, data, paths) = evicted(n);
                    total += run(id, &data, &paths);
                    store.delete(id, "bench").unwrap();
                }
                common::record(group_name, func, iters, len as u64, total);
                total
            })
        });
    };
    timed(GET, &mut |_, _, paths| {
        let t = Instant::now();
        let got: usize = get(paths).iter().map(|b| b.len()).sum();
        let d = t.elapsed();
        assert_eq!(got, len);
        d
    });
    timed(GET_WRITE, &mut |_, _, paths| {
        let t = Instant::now();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&plain_path)
            .unwrap();
        for part in get(paths) {
            f.write_all(&part).unwrap();
        }
        f.sync_data().unwrap();
        t.elapsed()
    });
    timed(SHA, &mut |_, data, _| {
        let t = Instant::now();
        let h = sha2::Sha256::digest(data);
        let d = t.elapsed();
        std::hint::black_box(h);
        d
    });
    timed(RESTORE, &mut |id, _, _| {
        let t = Instant::now();
        let o = store.restore(id, "bench").unwrap();
        let d = t.elapsed();
        assert_eq!(o.outcome, "restored");
        d
    });
    group.finish();
    drop(store);
    common::remove_and_settle(dir);
}

fn restore(c: &mut Criterion) {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let mb: usize = std::env::var("FOOTAGE_BENCH_RESTORE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let cloud = common::scratch("restore-cloud");
    bench_target(c, "file", &format!("file://{}", cloud.path().display()), mb);
    common::remove_and_settle(cloud);
    match std::env::var("FOOTAGE_AZURITE_URL") {
        Ok(url) => bench_target(c, "azurite", &format!("{url}/restore-bench"), mb),
        Err(_) => println!(
            "restore/azurite: skipped (FOOTAGE_AZURITE_URL unset; scripts/azurite.sh starts \
             Azurite and prints it)"
        ),
    }
    common::print_ratio_table("restore", &[GET, GET_WRITE, SHA], &[RESTORE]);
}

criterion_group!(benches, restore);
criterion_main!(benches);
