//! Eviction to the cloud tier against plain object_store puts of the same bytes, in the same
//! run: `footage upload` (multipart parts, read back and SHA-256-verified, meta.json) + evict
//! (hole punching) vs one `put_multipart` of the segment. Targets: `file://` always, Azurite
//! when FOOTAGE_AZURITE_URL is set (scripts/azurite.sh prints how).
//!
//! `cargo bench --bench tier` (FOOTAGE_BENCH_TIER_MB sets the segment size, default 32).

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

fn bench_target(c: &mut Criterion, name: &str, url: &str, mb: usize) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = footage::testing::open_or_create_with(&root, &StoreOptions::default()).unwrap();
    let policy = std::fs::read_to_string(root.join("policy.toml"))
        .unwrap()
        .replace("file:///var/lib/footage-cloud", &format!("{url}/footage"));
    std::fs::write(root.join("policy.toml"), policy).unwrap();
    let base = baseline_store(&format!("{url}/baseline"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let len = mb << 20;
    let mut seed = 0u64;
    let mut group = c.benchmark_group(format!("tier/{name}/{mb}MiB"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(criterion::Throughput::Bytes(len as u64));
    group.bench_function("footage upload+verify+evict", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                seed += 1;
                let data = segment_bytes(seed, len);
                let meta = SegmentMeta {
                    officer: "MET-1".into(),
                    device: format!("AX-{seed}"),
                    start_us: 1_700_000_000_000_000,
                    end_us: 1_700_000_060_000_000,
                    categories: vec!["evidential".into()],
                    ..SegmentMeta::default()
                };
                let id = store.ingest_bytes(meta, &data).unwrap().id;
                let t = Instant::now();
                store.upload(id, "bench", &mut |_| {}).unwrap();
                store.evict(id, "bench").unwrap();
                total += t.elapsed();
            }
            total
        })
    });
    group.bench_function("object_store put_multipart (baseline)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                seed += 1;
                let data = segment_bytes(seed, len);
                let path = ObjPath::from(format!("seg-{seed}"));
                let t = Instant::now();
                rt.block_on(async {
                    let up = base.put_multipart(&path).await.unwrap();
                    let mut w = WriteMultipart::new_with_chunk_size(up, 8 << 20);
                    for piece in data.chunks(8 << 20) {
                        w.wait_for_capacity(4).await.unwrap();
                        w.write(piece);
                    }
                    w.finish().await.unwrap();
                });
                total += t.elapsed();
            }
            total
        })
    });
    group.finish();
}

fn tier(c: &mut Criterion) {
    let mb: usize = std::env::var("FOOTAGE_BENCH_TIER_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let cloud = tempfile::tempdir().unwrap();
    bench_target(c, "file", &format!("file://{}", cloud.path().display()), mb);
    if let Ok(url) = std::env::var("FOOTAGE_AZURITE_URL") {
        bench_target(c, "azurite", &url, mb);
    }
}

criterion_group!(benches, tier);
criterion_main!(benches);
