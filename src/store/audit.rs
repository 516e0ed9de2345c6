//! The store's side of the audit log: the public `audit*` calls, actor handles
//! (`Store::with_actor`), and the details recorded for ingest, reads, queries and changes.
//!
//! Rules (docs/DESIGN.md §15):
//! - changes (ingest, `Store::change`, export) are always recorded, durably, before they are
//!   acknowledged; their actor is the handle's actor ([`SYSTEM_ACTOR`] for a handle without
//!   one) or the `actor` argument of `Store::change`;
//! - reads, queries and verifications are recorded (batched fsync) only through a handle
//!   made with `Store::with_actor`; other callers (the HTTP server, the tier) record their
//!   own with `Store::audit`.

use std::sync::Arc;

use super::{hex, Store};
use crate::audit::{self, Action, AuditEntry, AuditHead, AuditReport, STORE_ACTOR};
use crate::error::{Error, Result};
use crate::index::geo::Area;
use crate::index::query::Query;

/// The actor of changes made through a handle without one.
pub const SYSTEM_ACTOR: &str = "system";

/// Version of the `audit/HEAD.json` object published to the cloud tier.
const CLOUD_HEAD_FORMAT: u64 = 1;

impl Store {
    /// A handle that does everything as `actor`: its ingests, reads, exports, queries and
    /// verifications are recorded in the audit log under that name.
    pub fn with_actor(&self, actor: &str) -> Result<Store> {
        check_actor(actor)?;
        Ok(Store {
            inner: Arc::clone(&self.inner),
            actor: Some(Arc::from(actor)),
        })
    }

    /// The actor this handle records its actions under.
    pub fn actor(&self) -> &str {
        self.actor.as_deref().unwrap_or(SYSTEM_ACTOR)
    }

    /// Records an action in the audit log, with the durability its kind asks for
    /// ([`Action::durability`]): an access is written before this returns and made durable in
    /// batches; any other action is durable before this returns.
    pub fn audit(
        &self,
        actor: &str,
        action: Action,
        segment: Option<u64>,
        details: serde_json::Value,
    ) -> Result<()> {
        if self.inner.ro.is_some() {
            check_actor(actor)?;
            let details = details.to_string();
            return self
                .relay_audit(actor, &action, segment, &details)
                .unwrap_or(Ok(()));
        }
        self.audit_entry(actor, action, segment, details)
            .map(|_| ())
    }

    /// Records an action like [`Store::audit`] and returns the entry written (on a read-only
    /// open, read back from the owner's log).
    pub fn audit_entry(
        &self,
        actor: &str,
        action: Action,
        segment: Option<u64>,
        details: serde_json::Value,
    ) -> Result<AuditEntry> {
        check_actor(actor)?;
        if self.inner.ro.is_some() {
            return self.relay_and_read_back(actor, &action, segment, details);
        }
        let raw = self
            .inner
            .audit
            .record(actor, &action, segment, &details.to_string())?;
        Ok(AuditEntry::from_raw(raw))
    }

    /// Entries of the audit log, oldest first: those about `segment` (all if `None`)
    /// recorded at or after `since_us`. Damaged entries are skipped (`audit_verify` reports
    /// them).
    pub fn audit_entries(
        &self,
        segment: Option<u64>,
        since_us: Option<i64>,
    ) -> Result<Vec<AuditEntry>> {
        let log = &self.inner.audit;
        audit::entries(&log.dir, log.written(), segment, since_us)
    }

    /// Checks the whole audit log: every entry's checksum and hash, every link, the file
    /// headers, the `head` entries, and the log against `HEAD` (truncation).
    pub fn audit_verify(&self) -> Result<AuditReport> {
        let log = &self.inner.audit;
        audit::verify(&log.dir, self.inner.store_id, log.written(), &log.findings)
    }

    /// Publishes the durable chain head to the cloud tier (`audit/HEAD.json`, FORMAT.md §17),
    /// outside the station's reach: a later truncation, rewrite or rollback of the local log is
    /// then detected by [`Store::audit_check_cloud`]. `retention apply` does it after every run
    /// that used the cloud, and `footage serve` on a schedule ([`Store::republish_audit_head`]).
    ///
    /// # Errors
    /// `Error::Cloud` if the head already in the cloud is not part of the local chain (the log
    /// was rolled back to an older copy, truncated or rewritten): overwriting it would erase
    /// the only evidence of that, so it is left as it is.
    pub fn publish_audit_head(&self) -> Result<AuditHead> {
        self.inner.writable("publishing the audit head")?;
        if let Some(prev) = self.cloud_audit_head()? {
            if let Some(problem) = self.cloud_head_problem(&prev)? {
                return Err(Error::Cloud(format!(
                    "not publishing the audit head: {problem}; the cloud's head is kept"
                )));
            }
        }
        self.put_audit_head()
    }

    /// For a server's schedule: publishes the chain head if the store already has one in the
    /// cloud (it uses the cloud tier: `retention apply` or `audit --publish` published a first
    /// one) and the chain moved past it. Returns the head published, or None if nothing was
    /// to be done. Refuses, like [`Store::publish_audit_head`], to overwrite a head the local
    /// chain does not contain.
    pub fn republish_audit_head(&self) -> Result<Option<AuditHead>> {
        self.inner.writable("publishing the audit head")?;
        let Some(prev) = self.cloud_audit_head()? else {
            return Ok(None);
        };
        if let Some(problem) = self.cloud_head_problem(&prev)? {
            return Err(Error::Cloud(format!(
                "not publishing the audit head: {problem}; the cloud's head is kept"
            )));
        }
        let (count, hash) = self.audit_head();
        if count == prev.count && hex(&hash) == prev.hash {
            return Ok(None);
        }
        self.put_audit_head().map(Some)
    }

    fn put_audit_head(&self) -> Result<AuditHead> {
        // The head published covers every entry appended so far, batched ones too (a new
        // segment's `ingest` entry is batched).
        self.inner.audit.sync_to(self.inner.audit.appended())?;
        let (count, hash) = self.audit_head();
        let head = AuditHead {
            count,
            hash: hex(&hash),
            time: Some(crate::input::time::format_time(crate::store::now_us())),
        };
        let json = serde_json::json!({
            "format": CLOUD_HEAD_FORMAT,
            "store_id": hex(&self.inner.store_id),
            "count": head.count,
            "hash": head.hash,
            "time": head.time,
        });
        self.inner
            .tier()?
            .put_audit_head(json.to_string().into_bytes())?;
        Ok(head)
    }

    /// The head published to the cloud, if any (checked to be this store's).
    fn cloud_audit_head(&self) -> Result<Option<AuditHead>> {
        let Some(bytes) = self.inner.tier()?.get_audit_head()? else {
            return Ok(None);
        };
        let bad = |what: &str| Error::Cloud(format!("the cloud's audit/HEAD.json {what}"));
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(&format!("is not JSON: {e}")))?;
        if v["format"].as_u64() != Some(CLOUD_HEAD_FORMAT) {
            return Err(bad("has an unknown format (written by a newer footage?)"));
        }
        if v["store_id"].as_str() != Some(hex(&self.inner.store_id).as_str()) {
            return Err(bad("belongs to another store"));
        }
        let (Some(count), Some(hash)) = (v["count"].as_u64(), v["hash"].as_str()) else {
            return Err(bad("lacks count or hash"));
        };
        Ok(Some(AuditHead {
            count,
            hash: hash.to_string(),
            time: v["time"].as_str().map(str::to_string),
        }))
    }

    /// What is wrong with the local log given the head published to the cloud: the chain must
    /// reach entry `count - 1` and that entry must have the published hash. A local chain
    /// older than the published head (a restored copy of `audit/`) fails one or the other.
    fn cloud_head_problem(&self, head: &AuditHead) -> Result<Option<String>> {
        let count = head.count;
        if count == 0 {
            return Ok(None);
        }
        let when = head.time.as_deref().unwrap_or("earlier");
        let entries = self.audit_entries(None, None)?;
        Ok(match entries.iter().find(|e| e.index == count - 1) {
            None => Some(format!(
                "the local audit log has no entry {} (it holds {} entries) although the cloud \
                 holds a head of {count} entries published {when}: the log was rolled back to \
                 an older copy, or its tail truncated or lost",
                count - 1,
                entries.last().map_or(0, |e| e.index + 1),
            )),
            Some(e) if hex(&e.hash) != head.hash => Some(format!(
                "entry {} of the local audit log has hash {} but the head of {count} entries \
                 published to the cloud {when} says {}: the log was rolled back to an older \
                 copy and written on, or rewritten",
                count - 1,
                hex(&e.hash),
                head.hash
            )),
            Some(_) => None,
        })
    }

    /// Compares the local audit log with the head published to the cloud: the log must hold
    /// that many entries and its entry `count - 1` must have that hash. Returns the head read
    /// from the cloud (None if none was published) and the problem found, if any.
    pub fn audit_check_cloud(&self) -> Result<(Option<AuditHead>, Option<String>)> {
        let Some(head) = self.cloud_audit_head()? else {
            return Ok((None, None));
        };
        let problem = self.cloud_head_problem(&head)?;
        Ok((Some(head), problem))
    }

    /// The durable chain head: entries so far and the hash of the last one.
    pub fn audit_head(&self) -> (u64, [u8; 32]) {
        let c = self.inner.audit.head();
        (c.count, c.hash)
    }

    /// Records a read or query made through an actor handle (batched fsync).
    pub(crate) fn record_access(
        &self,
        action: Action,
        segment: Option<u64>,
        details: serde_json::Value,
    ) -> Result<()> {
        match &self.actor {
            Some(actor) if self.inner.ro.is_some() => self
                .relay_audit(actor, &action, segment, &details.to_string())
                .unwrap_or(Ok(())),
            Some(actor) => self
                .inner
                .audit
                .record(actor, &action, segment, &details.to_string())
                .map(|_| ()),
            None => Ok(()),
        }
    }
}

/// An actor named by a caller: 1..=256 bytes without control characters, not the store's own.
pub(crate) fn check_actor(actor: &str) -> Result<()> {
    if actor == STORE_ACTOR {
        return Err(Error::Invalid(format!(
            "the actor name {STORE_ACTOR:?} is reserved for the store's own audit entries"
        )));
    }
    audit::validate_actor(actor)
}

/// A query as recorded in the audit log.
pub(crate) fn query_details(q: &Query) -> serde_json::Value {
    let area = q.area.as_ref().map(|a| match *a {
        Area::Near { lat, lon, radius_m } => {
            serde_json::json!({"near": [lat, lon], "radius_m": radius_m})
        }
        Area::BBox {
            min_lat,
            min_lon,
            max_lat,
            max_lon,
        } => serde_json::json!({"bbox": [min_lat, min_lon, max_lat, max_lon]}),
    });
    serde_json::json!({
        "officers": q.officers,
        "devices": q.devices,
        "from_us": q.from_us,
        "to_us": q.to_us,
        "area": area,
        "case": q.case,
        "tag": q.tag,
        "category": q.category,
        "limit": q.limit,
        "after": q.cursor,
        "hit_gap_us": q.hit_gap_us,
    })
}
