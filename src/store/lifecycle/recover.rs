//! Rebuilding a lost station's store from its cloud copies alone (`footage recover
//! --from-cloud`): every complete `meta.json` becomes a commit record (no local chunks) and a
//! change record marking the segment uploaded and evicted, so reads go to the cloud.
//!
//! Invariants: recovery only writes into a new store (no footage.toml yet), which takes the
//! lost store's id so that its cloud objects stay where they are; a segment is recovered only
//! if its `meta.json` is complete and valid. Cloud copies of an encrypted store are listed
//! (and so their key checked) before anything is created, and the new store is encrypted
//! with the same key, so reads through it decrypt the sealed parts.

use std::path::Path;
use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::config::StoreOptions;
use crate::error::{Error, Result};
use crate::format::change::{Op, SegmentState, FLAG_EVICTED, FLAG_UPLOADED};
use crate::format::commit::CommitRecord;
use crate::format::record::{record_end, Kind};
use crate::log::writer::Appended;
use crate::meta::{GpsFix, SegmentMeta};
use crate::policy::{Policy, DEFAULT_POLICY, POLICY_FILE};
use crate::store::Store;
use crate::tier::{CloudMeta, Tier};

/// What recovery found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoverReport {
    /// Id of the store whose cloud copies were read (32 hex digits).
    pub source_store: String,
    /// Segments rebuilt from their cloud copies.
    pub recovered: usize,
    /// Video bytes of those segments.
    pub bytes: u64,
    /// Cloud records that could not be used, with why.
    pub skipped: Vec<String>,
}

fn parse_sha(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn meta_of(m: &CloudMeta) -> std::result::Result<(SegmentMeta, [u8; 32]), String> {
    let sha = parse_sha(&m.sha256).ok_or("bad sha256")?;
    let gps = m
        .gps
        .iter()
        .map(|f| {
            Ok(GpsFix {
                time_us: f[0],
                lat_e7: i32::try_from(f[1]).map_err(|_| "bad latitude")?,
                lon_e7: i32::try_from(f[2]).map_err(|_| "bad longitude")?,
            })
        })
        .collect::<std::result::Result<Vec<_>, &str>>()?;
    let meta = SegmentMeta {
        officer: m.officer.clone(),
        device: m.device.clone(),
        start_us: m.start_us,
        end_us: m.end_us,
        gps,
        cases: m.cases.clone(),
        tags: m.tags.clone(),
        categories: m.categories.clone(),
    };
    meta.validate()?;
    Ok((meta, sha))
}

impl Store {
    /// Rebuilds the catalog of the segments uploaded from a lost store into a new store at
    /// `root`. `source` picks the lost store's id when the URL holds several.
    pub fn recover_from_cloud(
        root: &Path,
        url: &str,
        source: Option<&str>,
        opts: &StoreOptions,
        actor: &str,
    ) -> Result<(Store, RecoverReport)> {
        if root.join(crate::config::CONFIG_FILE).exists() {
            return Err(Error::Invalid(format!(
                "{} already holds a store: recover into a new directory",
                root.display()
            )));
        }
        let stores = Tier::open(url, "")?.list_stores()?;
        let source = match (source, stores.as_slice()) {
            (Some(s), _) if stores.iter().any(|x| x == s) => s.to_string(),
            (Some(s), _) => {
                return Err(Error::Invalid(format!(
                    "no store {s} under {url} (found: {})",
                    stores.join(", ")
                )))
            }
            (None, [one]) => one.clone(),
            (None, []) => return Err(Error::Invalid(format!("no footage under {url}"))),
            (None, many) => {
                return Err(Error::Invalid(format!(
                    "{url} holds several stores; name the one to recover as the source: {}",
                    many.join(", ")
                )))
            }
        };
        // Read every meta.json first: a missing or wrong key fails before anything is made.
        let source_id = crate::config::parse_store_id(&source)
            .ok_or_else(|| Error::Invalid(format!("{source} is not a store id")))?;
        let crypt = opts
            .key
            .clone()
            .map(|k| std::sync::Arc::new(crate::crypt::Crypt::new(k, source_id)));
        let metas = Tier::open(url, &source)?.with_crypt(crypt).list_metas()?;
        crate::fsio::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let policy_path = root.join(POLICY_FILE);
        if !policy_path.exists() {
            let text = DEFAULT_POLICY.replace("file:///var/lib/footage-cloud", url);
            Policy::parse(&text, &policy_path)?;
            crate::log::write_atomic(&policy_path, text.as_bytes())?;
        }
        let opts = StoreOptions {
            store_id: Some(source.clone()),
            ..opts.clone()
        };
        let store = Store::create_with(root, &opts)?;
        let mut report = RecoverReport {
            source_store: source,
            ..RecoverReport::default()
        };
        for m in metas {
            match meta_of(&m) {
                Ok((meta, sha)) => {
                    store.recover_one(&m, meta, sha, actor)?;
                    report.recovered += 1;
                    report.bytes += m.bytes;
                }
                Err(why) => report.skipped.push(format!("segment {}: {why}", m.id)),
            }
        }
        store.inner.checkpoint()?;
        Ok((store, report))
    }

    fn recover_one(
        &self,
        m: &CloudMeta,
        meta: SegmentMeta,
        sha: [u8; 32],
        actor: &str,
    ) -> Result<()> {
        let inner = &self.inner;
        inner.next_segment_id.fetch_max(m.id + 1, Ordering::SeqCst);
        let dir = inner.pick_dir()?;
        let day = crate::store::Inner::day_of(meta.start_us);
        let state = SegmentState {
            categories: meta.categories.clone(),
            tags: meta.tags.clone(),
            cases: meta.cases.clone(),
            holds: m.holds.clone(),
            flags: FLAG_UPLOADED | FLAG_EVICTED,
            pinned_until: None,
        };
        {
            let _gate = inner.gate.read();
            let rec = CommitRecord {
                segment_id: m.id,
                lsn: inner.next_lsn.fetch_add(1, Ordering::SeqCst),
                committed_us: m.committed_us,
                bytes: m.bytes,
                sha256: sha,
                chunk_capacity: 0,
                meta,
                extents: Vec::new(),
                block_crcs: false,
                one_sync: false,
                durable_to: 0,
                actor: None,
            };
            let payload = rec.encode();
            let (w, pos) = loop {
                let w = inner.writer_for(dir, day)?;
                match w.append(Kind::Commit, m.id, 0, &[&payload])? {
                    Appended::At(pos) => break (w, pos),
                    Appended::Full => inner.rotate(dir, day, &w)?,
                }
            };
            w.sync_to(record_end(pos, payload.len() as u32))?;
            inner.catalog.write().apply_commit(&rec, w.volume.id, pos);
        }
        let _serial = inner.change_lock.lock();
        inner.append_change(
            m.id,
            Op::Restate,
            "recovered from the cloud",
            state,
            Vec::new(),
            actor,
        )?;
        Ok(())
    }
}
