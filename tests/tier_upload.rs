//! The upload's proof that the cloud holds what was hashed (src/tier/upload.rs,
//! src/tier/readback.rs): a cloud that stores, keeps or returns other bytes than those sent
//! must fail the upload, and the segment must then refuse eviction; the bad part is deleted
//! so the next attempt sends it again; a part an earlier attempt left, with the right size but
//! other bytes, is caught by the read-back, in a plain and in an encrypted store.
//!
//! The cloud is a `file://` directory seen through [`Faulty`], an object store that corrupts
//! one byte of a part's first piece on its way up, or of a part read back, or fails the
//! `meta.json` put, when a test arms it; or that returns every get as a stream of pieces, as
//! an HTTP store does (the read-back then takes its other path).

mod common;
#[path = "common/damage.rs"]
mod damage;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use footage::{Key, SegmentMeta, Store, StoreOptions, TierState, VerifyOptions};
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use parking_lot::Mutex;

const T0: i64 = 1_763_647_380_000_000;
const MIB: usize = 1 << 20;
/// Bytes a sealed 1 MiB block has beyond its plaintext (nonce and tag).
const SEAL: usize = 28;

/// What [`Faulty`] does to the next matching request (each armed fault fires once).
#[derive(Default, Debug)]
struct Faults {
    /// Flip a byte of the first piece put to the part whose path ends so.
    put: Option<&'static str>,
    /// Flip a byte of the part whose path ends so, as it is read back.
    get: Option<&'static str>,
    /// Fail the next `meta.json` put.
    meta: bool,
    /// Return every get as a stream (as an HTTP store does), not as a local file.
    stream: bool,
    /// Parts started by `put_multipart`, in order (file names).
    sent: Vec<String>,
}

#[derive(Debug)]
struct Faulty {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Mutex<Faults>>,
}

impl fmt::Display for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

fn flip(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    let at = v.len() / 3;
    v[at] ^= 0x20;
    v
}

#[async_trait]
impl ObjectStore for Faulty {
    async fn put_opts(
        &self,
        location: &ObjPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if location.filename() == Some("meta.json") && std::mem::take(&mut self.faults.lock().meta)
        {
            return Err(object_store::Error::Generic {
                store: "Faulty",
                source: "injected meta.json failure".into(),
            });
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let up = self.inner.put_multipart_opts(location, opts).await?;
        let mut f = self.faults.lock();
        f.sent
            .push(location.filename().unwrap_or_default().to_string());
        if f.put.is_some_and(|p| location.as_ref().ends_with(p)) {
            f.put = None;
            return Ok(Box::new(CorruptFirstPiece {
                inner: up,
                done: false,
            }));
        }
        Ok(up)
    }

    async fn get_opts(
        &self,
        location: &ObjPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let r = self.inner.get_opts(location, options).await?;
        let (hit, stream) = {
            let mut f = self.faults.lock();
            let hit = f.get.is_some_and(|p| location.as_ref().ends_with(p));
            if hit {
                f.get = None;
            }
            (hit, f.stream)
        };
        if !hit && stream {
            let GetResult {
                payload,
                meta,
                range,
                attributes,
                extensions,
            } = r;
            let whole = GetResult {
                payload,
                meta: meta.clone(),
                range: range.clone(),
                attributes: attributes.clone(),
                extensions: extensions.clone(),
            };
            // In pieces that do not fall on block boundaries.
            let pieces: Vec<object_store::Result<bytes::Bytes>> = whole
                .bytes()
                .await?
                .chunks(300_007)
                .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
                .collect();
            return Ok(GetResult {
                payload: GetResultPayload::Stream(futures::stream::iter(pieces).boxed()),
                meta,
                range,
                attributes,
                extensions,
            });
        }
        if !hit {
            return Ok(r);
        }
        let GetResult {
            payload,
            meta,
            range,
            attributes,
            extensions,
        } = r;
        let whole = GetResult {
            payload,
            meta: meta.clone(),
            range: range.clone(),
            attributes: attributes.clone(),
            extensions: extensions.clone(),
        }
        .bytes()
        .await?;
        let bad = bytes::Bytes::from(flip(&whole));
        Ok(GetResult {
            payload: GetResultPayload::Stream(futures::stream::once(async { Ok(bad) }).boxed()),
            meta,
            range,
            attributes,
            extensions,
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&ObjPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjPath>,
    ) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjPath,
        to: &ObjPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A multipart upload whose first piece loses a byte on the way (the rest go as given).
#[derive(Debug)]
struct CorruptFirstPiece {
    inner: Box<dyn MultipartUpload>,
    done: bool,
}

#[async_trait]
impl MultipartUpload for CorruptFirstPiece {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        if std::mem::replace(&mut self.done, true) {
            return self.inner.put_part(data);
        }
        let whole: Vec<u8> = data.iter().flat_map(|b| b.iter().copied()).collect();
        self.inner.put_part(flip(&whole).into())
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

/// A store (encrypted when `key` is given) whose cloud tier is `<dir>/cloud` seen through a
/// [`Faulty`] store; returns the store, the cloud directory and the faults to arm.
fn store(dir: &Path, key: Option<Key>) -> (Store, PathBuf, Arc<Mutex<Faults>>) {
    let root = dir.join("store");
    let cloud = dir.join("cloud");
    let opts = StoreOptions {
        key,
        ..StoreOptions::default()
    };
    let store = footage::testing::open_or_create_with(&root, &opts).unwrap();
    let url = format!("file://{}", cloud.display());
    common::write_cloud_policy(&root, &url);
    let faults = Arc::new(Mutex::new(Faults::default()));
    let f = Arc::clone(&faults);
    footage::testing::wrap_cloud(&store, move |inner| Arc::new(Faulty { inner, faults: f }))
        .unwrap();
    (store, cloud, faults)
}

fn ingest(store: &Store, seed: u64, len: usize) -> (u64, Vec<u8>) {
    let data = common::random_bytes(seed, len);
    let meta = SegmentMeta {
        officer: "MET-4471".into(),
        device: format!("AX-{seed}"),
        start_us: T0 + seed as i64 * 60_000_000,
        end_us: T0 + seed as i64 * 60_000_000 + 59_000_000,
        categories: vec!["evidential".into()],
        ..SegmentMeta::default()
    };
    (store.ingest_bytes(meta, &data).unwrap().id, data)
}

/// The segment's objects in the cloud directory (file names).
fn objects(store: &Store, cloud: &Path, id: u64) -> Vec<String> {
    let dir = damage::cloud_dir(store, cloud, id);
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && !n.contains("#"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The upload failed: the segment stays local, eviction is refused, its bytes are intact.
fn refused(store: &Store, id: u64, data: &[u8], err: footage::Error, what: &str) {
    assert!(err.to_string().contains(what), "{err}");
    let e = store.evict(id, "tester").unwrap_err();
    assert!(e.to_string().contains("no verified cloud copy"), "{e}");
    assert_eq!(store.info(id).unwrap().tier, TierState::Local);
    assert_eq!(damage::read_all(store, id).unwrap(), data);
}

/// The next attempt uploads, evicts, and the segment reads back whole from the cloud; the
/// cloud copy passes `verify --cloud`.
fn then_uploads(store: &Store, id: u64, data: &[u8]) {
    assert!(store.upload(id, "tester", &mut |_| {}).unwrap());
    assert!(store.evict(id, "tester").unwrap() > 0);
    assert_eq!(store.info(id).unwrap().tier, TierState::Cloud);
    assert_eq!(damage::read_all(store, id).unwrap(), data);
    let opts = VerifyOptions {
        cloud: true,
        ..VerifyOptions::default()
    };
    let report = store.verify_with(Some(vec![id]), opts, |_| {}).unwrap();
    assert!(report.cloud_problems.is_empty(), "{report:?}");
    assert_eq!(report.cloud_checked, 1);
}

fn keys() -> [(&'static str, Option<Key>); 2] {
    [
        ("plain", None),
        ("encrypted", Some(Key::from_bytes([7; 32]))),
    ]
}

#[test]
fn a_byte_corrupted_on_its_way_up_fails_the_upload_and_the_segment_is_not_evicted() {
    for (name, key) in keys() {
        let dir = tempfile::tempdir().unwrap();
        let (store, cloud, faults) = store(dir.path(), key);
        let (id, data) = ingest(&store, 1, 2 * MIB + 300_000);
        faults.lock().put = Some("part-00000");
        let e = store.upload(id, "tester", &mut |_| {}).unwrap_err();
        refused(&store, id, &data, e, "read back differs");
        assert!(
            faults.lock().put.is_none(),
            "{name}: the fault did not fire"
        );
        // The bad part is gone (meta.json was never written), so it is sent again.
        assert_eq!(objects(&store, &cloud, id), Vec::<String>::new(), "{name}");
        then_uploads(&store, id, &data);
        assert_eq!(faults.lock().sent, ["part-00000", "part-00000"], "{name}");
    }
}

#[test]
fn a_part_read_back_with_another_byte_fails_the_upload() {
    for (name, key) in keys() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _cloud, faults) = store(dir.path(), key);
        let (id, data) = ingest(&store, 2, 3 * MIB);
        faults.lock().get = Some("part-00000");
        let e = store.upload(id, "tester", &mut |_| {}).unwrap_err();
        refused(&store, id, &data, e, "read back differs");
        assert!(
            faults.lock().get.is_none(),
            "{name}: the fault did not fire"
        );
        then_uploads(&store, id, &data);
    }
}

#[test]
fn a_part_left_by_an_earlier_attempt_is_read_back_and_kept_only_if_its_bytes_are_right() {
    for (name, key) in keys() {
        let sealed = key.is_some();
        let dir = tempfile::tempdir().unwrap();
        let (store, cloud, faults) = store(dir.path(), key);
        let (id, data) = ingest(&store, 3, 2 * MIB + 5);
        // An attempt that sent its part and stopped before meta.json.
        faults.lock().meta = true;
        let e = store.upload(id, "tester", &mut |_| {}).unwrap_err();
        refused(&store, id, &data, e, "meta.json");
        assert_eq!(objects(&store, &cloud, id), ["part-00000"], "{name}");
        let part = damage::cloud_dir(&store, &cloud, id).join("part-00000");
        let want = data.len() + if sealed { 3 * SEAL } else { 0 };
        assert_eq!(std::fs::metadata(&part).unwrap().len(), want as u64);
        // Its bytes changed in the bucket, the size kept: the next attempt must not resume
        // on it (in an encrypted store the block no longer opens).
        let good = std::fs::read(&part).unwrap();
        let mut bad = good.clone();
        bad[MIB + 77] ^= 1;
        std::fs::write(&part, &bad).unwrap();
        let e = store.upload(id, "tester", &mut |_| {}).unwrap_err();
        refused(&store, id, &data, e, "read back differs");
        assert_eq!(objects(&store, &cloud, id), Vec::<String>::new(), "{name}");
        assert_eq!(
            faults.lock().sent,
            ["part-00000"],
            "{name}: resumed, not sent"
        );
        // Sent again; and a part left whole by an attempt is resumed, not sent again.
        faults.lock().meta = true;
        store.upload(id, "tester", &mut |_| {}).unwrap_err();
        assert_eq!(faults.lock().sent.len(), 2, "{name}");
        then_uploads(&store, id, &data);
        assert_eq!(
            faults.lock().sent.len(),
            2,
            "{name}: the whole part was sent again"
        );
    }
}

#[test]
fn a_part_planted_with_the_right_size_and_other_bytes_is_never_taken_for_the_segment() {
    for (name, key) in keys() {
        let sealed = key.is_some();
        let dir = tempfile::tempdir().unwrap();
        let (store, cloud, faults) = store(dir.path(), key);
        let (id, data) = ingest(&store, 4, MIB + 1000);
        let seg = damage::cloud_dir(&store, &cloud, id);
        std::fs::create_dir_all(&seg).unwrap();
        let len = data.len() + if sealed { 2 * SEAL } else { 0 };
        std::fs::write(seg.join("part-00000"), common::random_bytes(99, len)).unwrap();
        let e = store.upload(id, "tester", &mut |_| {}).unwrap_err();
        refused(&store, id, &data, e, "read back differs");
        assert!(faults.lock().sent.is_empty(), "{name}");
        then_uploads(&store, id, &data);
    }
}

#[test]
fn a_bad_second_part_fails_the_upload_and_only_it_is_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cloud, faults) = store(dir.path(), None);
    let (id, data) = ingest(&store, 5, 64 * MIB + 1_500_000);
    faults.lock().put = Some("part-00001");
    let e = store.upload(id, "tester", &mut |_| {}).unwrap_err();
    refused(&store, id, &data, e, "part-00001 read back differs");
    assert_eq!(objects(&store, &cloud, id), ["part-00000"]);
    then_uploads(&store, id, &data);
    assert_eq!(
        faults.lock().sent,
        ["part-00000", "part-00001", "part-00001"],
        "part 0 was resumed (read back against the local bytes), part 1 sent again"
    );
}

#[test]
fn a_streamed_read_back_proves_a_copy_as_a_file_one_does() {
    // An HTTP store's get is a stream of pieces; the read-back cuts them into blocks.
    for (name, key) in keys() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _cloud, faults) = store(dir.path(), key);
        faults.lock().stream = true;
        let (id, data) = ingest(&store, 6, 3 * MIB + 12_345);
        then_uploads(&store, id, &data);
        let (id, data) = ingest(&store, 7, 2 * MIB);
        faults.lock().put = Some("part-00000");
        let e = store.upload(id, "tester", &mut |_| {}).unwrap_err();
        refused(&store, id, &data, e, "read back differs");
        then_uploads(&store, id, &data);
        assert_eq!(faults.lock().sent.len(), 3, "{name}");
    }
}
