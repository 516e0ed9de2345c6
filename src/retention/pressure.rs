//! Disk pressure on its own: evicts uploaded footage early from every data dir above the
//! policy's high watermark, oldest first, without the rest of a retention run (no uploads,
//! no deletions). `footage serve` runs it every `disk_check_every`, so a filling disk is
//! relieved between two scheduled retention runs (or with scheduled retention off).
//!
//! Invariants: only segments with a verified cloud copy (uploaded, not yet evicted) and no
//! pin in force are evicted, as `retention apply` would evict them under pressure; a disk at or below its
//! watermark is not touched; failures are listed in the summary and the others proceed.

use crate::error::Result;
use crate::format::change::{FLAG_EVICTED, FLAG_UPLOADED};
use crate::input::time::format_time;
use crate::store::Store;

use super::{Evictable, RunClock, Summary};

impl Store {
    /// Evicts uploaded segments (oldest first) from the data dirs whose usage is above
    /// policy.toml's `disk.high_watermark`, until each is below it or nothing more can go.
    /// The run is recorded under `actor` like a retention run at the real time `now`.
    pub fn relieve_disk_pressure(&self, now: i64, actor: &str) -> Result<Summary> {
        let policy = self.policy()?;
        let clock = self.config().clock_name();
        let run = RunClock {
            clock,
            now: format_time(now),
            now_us: now,
        };
        let mut s = Summary {
            clock: clock.to_string(),
            now: format_time(now),
            ..Summary::default()
        };
        let (pinned, unpinned): (Vec<_>, Vec<_>) = self
            .candidates(&policy)
            .into_iter()
            .filter(|c| c.flags & FLAG_UPLOADED != 0 && c.flags & FLAG_EVICTED == 0)
            .partition(|c| c.pinned_until.is_some_and(|t| t > now));
        // Pinned footage is never evicted, under pressure or not (store/pin.rs).
        let pinned: Vec<(Option<u16>, u64)> = pinned.iter().map(|c| (c.dir, c.id)).collect();
        let mut evictable: Vec<Evictable> = unpinned
            .into_iter()
            .map(|c| Evictable {
                end_us: c.end_us,
                id: c.id,
                dir: c.dir,
            })
            .collect();
        self.relieve_disk_pressure_of(&policy, &mut evictable, &pinned, actor, &mut s, Some(&run));
        Ok(s)
    }
}
