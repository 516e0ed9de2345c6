//! The `[service]` table of footage.toml: what `footage serve` runs in the background, and how
//! long it drains on SIGTERM. `serve` flags override each key.
//!
//! ```toml
//! [service]
//! retention_every = "15m"     # retention apply with the real clock; "off" for never
//! scrub_rate = "50MB/s"       # background scrub bandwidth; "off" for none
//! checkpoint_every = "10m"    # a catalog checkpoint when something was committed since
//! publish_head_every = "5m"   # audit chain head to the cloud tier (when it moved)
//! disk_check_every = "1m"     # disk pressure: evict uploaded footage early past the watermark
//! restore_rate = "100MB/s"    # background restores (the restore queue, prefetch); "off" for none
//! restore_every = "10s"       # how often the restore queue is looked at
//! drain_timeout = "30s"       # SIGTERM: how long requests in flight may take to finish
//! bulk_nice = 10              # ingest threads run this many nice steps below searches (0-19)
//! fleet_publish_every = "1h"  # publish the catalogue to the force's fleet table; "off" for never
//! fleet_station = "westminster"  # this store's station name in that table (needed by the above)
//! fleet_allow_plaintext_metadata = false  # an encrypted store publishes only with true
//! ```
//!
//! Invariants: every key is optional (a missing key, or a missing table, takes the default
//! of [`Settings::default`]); an unknown key or a malformed value is refused when the store is
//! opened (footage.toml is validated then), never discovered hours later by a job; an
//! interval is at least one second.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[service]` table as written in footage.toml (text values, checked by [`Self::settings`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_every: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrub_rate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_every: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_head_every: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_check_every: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_nice: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_rate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_every: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_publish_every: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_station: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_allow_plaintext_metadata: Option<bool>,
}

/// Checked settings of the service. `None` = the job is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Default: off (a store's retention is turned on by its operator, who has read
    /// policy.toml).
    pub retention_every: Option<Duration>,
    /// Bytes per second. Default: off.
    pub scrub_rate: Option<u64>,
    /// Default: every 10 minutes (a checkpoint bounds the log replayed at the next open).
    pub checkpoint_every: Option<Duration>,
    /// Default: every 5 minutes ([`PUBLISH_HEAD_EVERY`]).
    pub publish_head_every: Option<Duration>,
    /// Default: every minute (reads free space per data dir; acts only past the watermark).
    pub disk_check_every: Option<Duration>,
    /// Default: 30 s.
    pub drain_timeout: Duration,
    /// Nice steps of bulk work (uploads, the dock folder, control-channel ingest) below the
    /// service's searches and video reads ([`crate::priority`]). Default
    /// [`BULK_NICE`]; 0 = the same priority.
    pub bulk_nice: i32,
    /// Bytes per second of the background restores (the restore queue: `footage restore
    /// --queue` and prefetch by case). Default: 100 MB/s. `None`: the queue waits.
    pub restore_rate: Option<u64>,
    /// Default: every 10 s (each run restores what it can in at most that long).
    pub restore_every: Duration,
    /// `fleet publish` this often ([`Settings::fleet_publish`]). Default: off.
    pub fleet_publish_every: Option<Duration>,
    /// The station name the store publishes as.
    pub fleet_station: Option<String>,
    /// An encrypted store's fleet publish sends its metadata in plaintext. Default: false.
    pub fleet_allow_plaintext: bool,
}

/// Default of `restore_rate`.
/// How often a server publishes the audit chain head by default: a rollback of the local log
/// can hide at most this much of the trail from `audit --verify --cloud`.
pub const PUBLISH_HEAD_EVERY: Duration = Duration::from_secs(5 * 60);

/// Default steps by which bulk-work threads lower their priority (`[service] bulk_nice` in
/// footage.toml, src/priority.rs). 0 leaves them at the service's own priority.
pub const BULK_NICE: i32 = 10;

pub const RESTORE_RATE: u64 = 100_000_000;
/// Default of `restore_every`.
pub const RESTORE_EVERY: Duration = Duration::from_secs(10);

/// Default of `drain_timeout`.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            retention_every: None,
            scrub_rate: None,
            checkpoint_every: Some(Duration::from_secs(600)),
            publish_head_every: Some(PUBLISH_HEAD_EVERY),
            disk_check_every: Some(Duration::from_secs(60)),
            drain_timeout: DRAIN_TIMEOUT,
            bulk_nice: BULK_NICE,
            restore_rate: Some(RESTORE_RATE),
            restore_every: RESTORE_EVERY,
            fleet_publish_every: None,
            fleet_station: None,
            fleet_allow_plaintext: false,
        }
    }
}

impl ServiceConfig {
    /// The settings this table gives, over the defaults; the error names the bad key.
    pub fn settings(&self) -> Result<Settings, String> {
        let mut s = Settings::default();
        let key = |k: &str, r: Result<Option<Duration>, String>| {
            r.map_err(|e| format!("service.{k}: {e}"))
        };
        if let Some(v) = &self.retention_every {
            s.retention_every = key("retention_every", parse_interval(v))?;
        }
        if let Some(v) = &self.scrub_rate {
            s.scrub_rate = parse_rate_or_off(v).map_err(|e| format!("service.scrub_rate: {e}"))?;
        }
        if let Some(v) = &self.checkpoint_every {
            s.checkpoint_every = key("checkpoint_every", parse_interval(v))?;
        }
        if let Some(v) = &self.publish_head_every {
            s.publish_head_every = key("publish_head_every", parse_interval(v))?;
        }
        if let Some(v) = &self.disk_check_every {
            s.disk_check_every = key("disk_check_every", parse_interval(v))?;
        }
        if let Some(v) = &self.restore_rate {
            s.restore_rate =
                parse_rate_or_off(v).map_err(|e| format!("service.restore_rate: {e}"))?;
        }
        if let Some(v) = &self.restore_every {
            s.restore_every = key("restore_every", parse_interval(v))?.ok_or_else(|| {
                "service.restore_every cannot be off (use restore_rate = \"off\")".to_string()
            })?;
        }
        if let Some(v) = &self.drain_timeout {
            s.drain_timeout = key("drain_timeout", parse_interval(v))?
                .ok_or_else(|| "service.drain_timeout cannot be off".to_string())?;
        }
        if let Some(v) = &self.fleet_publish_every {
            s.fleet_publish_every = key("fleet_publish_every", parse_interval(v))?;
        }
        s.fleet_station = self.fleet_station.clone();
        s.fleet_publish()?;
        s.fleet_allow_plaintext = self.fleet_allow_plaintext_metadata.unwrap_or(false);
        if let Some(v) = self.bulk_nice {
            s.bulk_nice = i32::try_from(v)
                .ok()
                .filter(|n| (0..=19).contains(n))
                .ok_or_else(|| {
                    format!("service.bulk_nice: {v} is not a number of nice steps from 0 to 19")
                })?;
        }
        Ok(s)
    }
}

impl Settings {
    /// The fleet publish job (interval, station), if on: an interval needs a station, named
    /// as `fleet publish --station` takes it.
    pub fn fleet_publish(&self) -> Result<Option<(Duration, &str)>, String> {
        let Some(every) = self.fleet_publish_every else {
            return Ok(None);
        };
        fleet_job(every, self.fleet_station.as_deref())
    }
}

fn fleet_job(every: Duration, station: Option<&str>) -> Result<Option<(Duration, &str)>, String> {
    let station = station.ok_or_else(|| {
        "service.fleet_publish_every needs service.fleet_station (or --fleet-station): the name this store publishes as".to_string()
    })?;
    if cfg!(feature = "fleet") {
        // The name itself is checked when the job starts (`crate::fleet::check_station`).
        Ok(Some((every, station)))
    } else {
        Err(format!(
            "service.fleet_publish_every: this build has no fleet layer (cargo feature `fleet`) to publish {station:?} with"
        ))
    }
}

/// An interval: a whole number and `s`, `m` or `h` (`90s`, `15m`, `1h`), or `off` (None).
pub fn parse_interval(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    if s == "off" {
        return Ok(None);
    }
    let bad =
        || format!("{s:?} is not an interval: a whole number and s, m or h (e.g. 5m), or off");
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(format!("{s:?}: the interval must be at least 1s (or off)"));
    }
    Ok(Some(Duration::from_secs(secs)))
}

/// A bandwidth: bytes per second, optionally with KB/MB/GB (powers of 1000) or KiB/MiB/GiB
/// (powers of 1024), optionally followed by `/s`.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid rate {s:?}: use bytes per second, e.g. 50MB/s"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid rate {s:?}: units are KB, MB, GB, KiB, MiB, GiB"
            ))
        }
    };
    match n.checked_mul(mult) {
        Some(r) if r > 0 => Ok(r),
        _ => Err(format!("invalid rate {s:?}: must be above zero")),
    }
}

/// A bandwidth, or `off` / `0` (None).
pub fn parse_rate_or_off(s: &str) -> Result<Option<u64>, String> {
    match s.trim() {
        "off" | "0" => Ok(None),
        _ => parse_rate(s).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_the_table() {
        assert_eq!(
            ServiceConfig::default().settings().unwrap(),
            Settings::default()
        );
        let c = ServiceConfig {
            retention_every: Some("15m".into()),
            scrub_rate: Some("50MB/s".into()),
            checkpoint_every: Some("off".into()),
            drain_timeout: Some("5s".into()),
            bulk_nice: Some(0),
            restore_rate: Some("off".into()),
            restore_every: Some("2s".into()),
            ..ServiceConfig::default()
        };
        let s = c.settings().unwrap();
        assert_eq!(s.restore_rate, None);
        assert_eq!(s.restore_every, Duration::from_secs(2));
        assert_eq!(s.retention_every, Some(Duration::from_secs(900)));
        assert_eq!(s.scrub_rate, Some(50_000_000));
        assert_eq!(s.checkpoint_every, None);
        assert_eq!(s.drain_timeout, Duration::from_secs(5));
        assert_eq!(s.bulk_nice, 0);
        assert_eq!(Settings::default().bulk_nice, BULK_NICE);
        for bad in [
            ServiceConfig {
                bulk_nice: Some(20),
                ..Default::default()
            },
            ServiceConfig {
                bulk_nice: Some(-1),
                ..Default::default()
            },
            ServiceConfig {
                retention_every: Some("soon".into()),
                ..Default::default()
            },
            ServiceConfig {
                scrub_rate: Some("fast".into()),
                ..Default::default()
            },
            ServiceConfig {
                drain_timeout: Some("off".into()),
                ..Default::default()
            },
            ServiceConfig {
                disk_check_every: Some("0s".into()),
                ..Default::default()
            },
        ] {
            assert!(bad.settings().is_err(), "{bad:?}");
        }
        let e = ServiceConfig {
            checkpoint_every: Some("1y".into()),
            ..Default::default()
        }
        .settings()
        .unwrap_err();
        assert!(e.contains("service.checkpoint_every"), "{e}");
    }

    #[cfg(feature = "fleet")]
    #[test]
    fn fleet_publish_needs_a_good_station() {
        let c = |every: &str, station: Option<&str>| ServiceConfig {
            fleet_publish_every: Some(every.into()),
            fleet_station: station.map(str::to_string),
            ..ServiceConfig::default()
        };
        let s = c("1h", Some("westminster")).settings().unwrap();
        assert_eq!(
            s.fleet_publish(),
            Ok(Some((Duration::from_secs(3600), "westminster")))
        );
        assert_eq!(c("off", None).settings().unwrap().fleet_publish(), Ok(None));
        let e = c("1h", None).settings().unwrap_err();
        assert!(e.contains("fleet_station"), "{e}");
    }
}
