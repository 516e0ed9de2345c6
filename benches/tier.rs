//! Eviction to the cloud tier against plain object_store puts of the same bytes, in the same
//! run: `footage upload` (multipart parts, read back and SHA-256-verified, meta.json) + evict
//! (hole punching) vs one `put_multipart` of the segment. Targets: `file://` always, Azurite
//! when FOOTAGE_AZURITE_URL is set (scripts/azurite.sh prints how).
//!
//! `cargo bench --bench tier` (FOOTAGE_BENCH_TIER_MB sets the segment size, default 32;
//! FOOTAGE_BENCH_TIER_PAIRS=N times N alternating pairs instead of criterion's two runs, see
//! `paired`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use footage::{SegmentMeta, StoreOptions};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use rand::{Rng, SeedableRng};

fn segment_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill(&mut v[..]);
    v
}

fn baseline_store(url: &str) -> Arc<dyn ObjectStore> {
    let parsed = url::Url::parse(url).unwrap();
    if parsed.scheme() == "file" {
        let dir = parsed.to_file_path().unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .unwrap()
                .with_fsync(true),
        )
    } else {
        let opts = std::env::vars().filter_map(|(k, v)| {
            let l = k.to_ascii_lowercase();
            l.starts_with("azure_").then_some((l, v))
        });
        let (s, p) = object_store::parse_url_opts(&parsed, opts).unwrap();
        Arc::new(object_store::prefix::PrefixStore::new(s, p))
    }
}

/// One target: a store whose policy points at `url`, and a plain object store beside it.
struct Target {
    _dir: tempfile::TempDir,
    store: footage::Store,
    base: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
    len: usize,
    seed: u64,
}

impl Target {
    fn new(url: &str, mb: usize) -> Target {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = footage::testing::open_or_create_with(&root, &StoreOptions::default()).unwrap();
        let policy = std::fs::read_to_string(root.join("policy.toml"))
            .unwrap()
            .replace("file:///var/lib/footage-cloud", &format!("{url}/footage"));
        std::fs::write(root.join("policy.toml"), policy).unwrap();
        Target {
            _dir: dir,
            store,
            base: baseline_store(&format!("{url}/baseline")),
            rt: tokio::runtime::Runtime::new().unwrap(),
            len: mb << 20,
            seed: 0,
        }
    }

    /// Ingests a fresh segment (not timed), then times its upload and eviction.
    fn footage(&mut self) -> Duration {
        self.seed += 1;
        let seed = self.seed;
        let data = segment_bytes(seed, self.len);
        let meta = SegmentMeta {
            officer: "MET-1".into(),
            device: format!("AX-{seed}"),
            start_us: 1_700_000_000_000_000,
            end_us: 1_700_000_060_000_000,
            categories: vec!["evidential".into()],
            ..SegmentMeta::default()
        };
        let id = self.store.ingest_bytes(meta, &data).unwrap().id;
        let t = Instant::now();
        self.store.upload(id, "bench", &mut |_| {}).unwrap();
        self.store.evict(id, "bench").unwrap();
        t.elapsed()
    }

    /// Times one `put_multipart` (8 MiB pieces, 4 in flight) of fresh bytes.
    fn put(&mut self) -> Duration {
        self.seed += 1;
        let data = segment_bytes(self.seed, self.len);
        let path = ObjPath::from(format!("seg-{}", self.seed));
        let t = Instant::now();
        self.rt.block_on(async {
            let up = self.base.put_multipart(&path).await.unwrap();
            let mut w = WriteMultipart::new_with_chunk_size(up, 8 << 20);
            for piece in data.chunks(8 << 20) {
                w.wait_for_capacity(4).await.unwrap();
                w.write(piece);
            }
            w.finish().await.unwrap();
        });
        t.elapsed()
    }
}

fn bench_target(c: &mut Criterion, name: &str, url: &str, mb: usize) {
    let mut t = Target::new(url, mb);
    let mut group = c.benchmark_group(format!("tier/{name}/{mb}MiB"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(criterion::Throughput::Bytes(t.len as u64));
    group.bench_function("footage upload+verify+evict", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| t.footage()).sum())
    });
    group.bench_function("object_store put_multipart (baseline)", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| t.put()).sum())
    });
    group.finish();
}

/// `FOOTAGE_BENCH_TIER_PAIRS=N`: instead of criterion's runs (all of one function, then all
/// of the other, which a machine shared with other builds loads differently), N pairs of one
/// footage upload+evict and one put, alternating which goes first; prints the medians, the
/// best of each and the median of the pairs' ratios (put / footage).
fn paired(name: &str, url: &str, mb: usize, pairs: usize) {
    let mut t = Target::new(url, mb);
    t.footage();
    t.put();
    let (mut f, mut p, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        let (a, b) = if i % 2 == 0 {
            let a = t.footage();
            (a, t.put())
        } else {
            let b = t.put();
            (t.footage(), b)
        };
        f.push(a.as_secs_f64() * 1e3);
        p.push(b.as_secs_f64() * 1e3);
        r.push(b.as_secs_f64() / a.as_secs_f64());
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (fm, pm, rm) = (med(&mut f), med(&mut p), med(&mut r));
    println!(
        "tier/{name}/{mb}MiB paired x{pairs}: footage median {fm:.1} ms (best {:.1}), put median \
         {pm:.1} ms (best {:.1}); put/footage: median of pairs {rm:.3}, of medians {:.3}, of \
         bests {:.3}",
        f[0],
        p[0],
        pm / fm,
        p[0] / f[0]
    );
}

fn tier(c: &mut Criterion) {
    // `RUST_LOG=footage::tier::upload=debug,footage::store::lifecycle::tiering=debug` prints
    // where each upload's and eviction's time went.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let mb: usize = std::env::var("FOOTAGE_BENCH_TIER_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let pairs: Option<usize> = std::env::var("FOOTAGE_BENCH_TIER_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok());
    let cloud = tempfile::tempdir().unwrap();
    let mut targets = vec![("file", format!("file://{}", cloud.path().display()))];
    if let Ok(url) = std::env::var("FOOTAGE_AZURITE_URL") {
        targets.push(("azurite", url));
    }
    for (name, url) in targets {
        match pairs {
            Some(n) => paired(name, &url, mb, n.max(1)),
            None => bench_target(c, name, &url, mb),
        }
    }
}

criterion_group!(benches, tier);
criterion_main!(benches);
