//! `policy.toml`: retention per category, the cloud tier's URL and the disk watermark.
//!
//! Invariants:
//! - a policy is validated whole before use; an error names the key (`category.evidential.
//!   delete_after`) and what is wrong with it;
//! - `category.default` always exists: footage with no category (or an unknown one) uses it;
//! - a segment with several categories gets, for each of evict_after and delete_after, the
//!   longest of them ("never" beats any duration), and is uploaded if any of them uploads.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Name of the policy file in the store's root directory.
pub const POLICY_FILE: &str = "policy.toml";

/// The file written on first use.
pub const DEFAULT_POLICY: &str = r#"# footage retention policy (see README.md). Durations: "12h", "31d", or "never".
[cloud]
url = "file:///var/lib/footage-cloud"   # also az://container/prefix, s3://bucket/prefix, gs://...

[category.default]       # footage with no category (non-evidential)
upload = false           # never copied to the cloud
evict_after = "31d"      # local bytes may be dropped this long after the segment's end (once a verified cloud copy exists)
delete_after = "31d"     # removed everywhere this long after the end, unless held

[category.evidential]
upload = true
evict_after = "30d"
delete_after = "2555d"   # about 7 years; "never" is allowed

[disk]
high_watermark = 0.90    # above this local usage, evict uploaded segments early, oldest first
compact_below_live = 0.5 # after reclaiming, rewrite sealed volumes less than this full of live data (0 = never)
"#;

const HOUR_US: i64 = 3_600_000_000;

/// A duration in µs, or None for "never".
pub type After = Option<i64>;

/// Retention rules of one category (`[category.<name>]` in policy.toml).
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryPolicy {
    /// Whether footage of this category is copied to the cloud tier.
    pub upload: bool,
    /// How long after a segment's end its local bytes may be dropped (once a verified cloud copy
    /// exists), µs; None: never.
    pub evict_after: After,
    /// How long after a segment's end it is deleted everywhere unless held, µs; None: never.
    pub delete_after: After,
}

/// A store's retention policy (`policy.toml`), validated whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// URL of the cloud tier (`file://`, `az://`, `s3://` or `gs://`).
    pub cloud_url: String,
    /// Rules per category, by name; `default` is always present.
    pub categories: BTreeMap<String, CategoryPolicy>,
    /// Fraction of a data dir's disk (0 to 1) above which uploaded segments are evicted early,
    /// oldest first.
    pub high_watermark: f64,
    /// Sealed volumes whose live fraction is below this are compacted by `retention apply`
    /// (0 = never).
    pub compact_below_live: f64,
}

/// What applies to one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    /// Whether the segment is copied to the cloud tier (any of its categories uploads).
    pub upload: bool,
    /// µs after its end when its local bytes may be dropped (the longest of its categories); None:
    /// never.
    pub evict_after: After,
    /// µs after its end when it is deleted (the longest of its categories); None: never.
    pub delete_after: After,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    cloud: Option<RawCloud>,
    category: Option<BTreeMap<String, RawCategory>>,
    disk: Option<RawDisk>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCloud {
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    upload: Option<bool>,
    evict_after: Option<String>,
    delete_after: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDisk {
    high_watermark: Option<f64>,
    compact_below_live: Option<f64>,
}

/// Parses "36h", "31d" or "never".
pub fn parse_after(s: &str) -> std::result::Result<After, String> {
    let t = s.trim();
    if t == "never" {
        return Ok(None);
    }
    // The unit is the last character (which may be any UTF-8 character in a bad value).
    let cut = t.char_indices().last().map_or(0, |(i, _)| i);
    let (num, unit) = t.split_at(cut);
    let per = match unit {
        "h" => HOUR_US,
        "d" => 24 * HOUR_US,
        _ => {
            return Err(format!(
                "{s:?} is not a duration: use e.g. \"12h\", \"31d\" or \"never\""
            ))
        }
    };
    let n: i64 = num
        .parse()
        .ok()
        .filter(|n| *n >= 0 && *n <= 100 * 366 * 24)
        .ok_or_else(|| {
            format!("{s:?} is not a duration: use e.g. \"12h\", \"31d\" or \"never\"")
        })?;
    Ok(Some(n * per))
}

fn longest(a: After, b: After) -> After {
    match (a, b) {
        (None, _) | (_, None) => None,
        (Some(x), Some(y)) => Some(x.max(y)),
    }
}

impl Policy {
    /// Parses and validates a policy; `path` is used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Policy> {
        let bad = |what: String| Error::Config {
            path: path.to_path_buf(),
            what,
        };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let cloud_url = raw
            .cloud
            .and_then(|c| c.url)
            .ok_or_else(|| bad("cloud.url is missing".into()))?;
        url::Url::parse(&cloud_url)
            .map_err(|e| bad(format!("cloud.url {cloud_url:?} is not a URL: {e}")))?;
        let mut categories = BTreeMap::new();
        for (name, c) in raw.category.unwrap_or_default() {
            crate::meta::validate_id("category name", &name)
                .map_err(|e| bad(format!("category.{name}: {e}")))?;
            let key = |k: &str| format!("category.{name}.{k}");
            let evict = c
                .evict_after
                .ok_or_else(|| bad(format!("{} is missing", key("evict_after"))))?;
            let delete = c
                .delete_after
                .ok_or_else(|| bad(format!("{} is missing", key("delete_after"))))?;
            let p = CategoryPolicy {
                upload: c
                    .upload
                    .ok_or_else(|| bad(format!("{} is missing", key("upload"))))?,
                evict_after: parse_after(&evict)
                    .map_err(|e| bad(format!("{}: {e}", key("evict_after"))))?,
                delete_after: parse_after(&delete)
                    .map_err(|e| bad(format!("{}: {e}", key("delete_after"))))?,
            };
            categories.insert(name, p);
        }
        if !categories.contains_key("default") {
            return Err(bad(
                "category.default is missing: every store needs one".into()
            ));
        }
        let compact_below_live = raw
            .disk
            .as_ref()
            .and_then(|d| d.compact_below_live)
            .unwrap_or(0.5);
        if !(0.0..=1.0).contains(&compact_below_live) {
            return Err(bad(format!(
                "disk.compact_below_live {compact_below_live} must be between 0 and 1"
            )));
        }
        let high_watermark = raw.disk.and_then(|d| d.high_watermark).unwrap_or(0.90);
        if !(high_watermark > 0.0 && high_watermark <= 1.0) {
            return Err(bad(format!(
                "disk.high_watermark {high_watermark} must be above 0 and at most 1"
            )));
        }
        Ok(Policy {
            cloud_url,
            categories,
            high_watermark,
            compact_below_live,
        })
    }

    /// Loads `<root>/policy.toml`, writing the default one first if there is none.
    pub fn load_or_create(root: &Path) -> Result<Policy> {
        let path = root.join(POLICY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Policy::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::log::write_atomic(&path, DEFAULT_POLICY.as_bytes())?;
                Policy::parse(DEFAULT_POLICY, &path)
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// The policy of a segment with these categories.
    pub fn effective(&self, categories: &[String]) -> Effective {
        let default = self.categories.get("default");
        let mut known = categories
            .iter()
            .filter_map(|c| self.categories.get(c))
            .peekable();
        let list: Vec<&CategoryPolicy> = if known.peek().is_none() {
            default.into_iter().collect()
        } else {
            known.collect()
        };
        let mut e = Effective {
            upload: false,
            evict_after: Some(0),
            delete_after: Some(0),
        };
        for p in list {
            e.upload |= p.upload;
            e.evict_after = longest(e.evict_after, p.evict_after);
            e.delete_after = longest(e.delete_after, p.delete_after);
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_parses_and_the_longest_retention_wins() {
        let p = Policy::parse(DEFAULT_POLICY, Path::new("policy.toml")).unwrap();
        let d = 24 * HOUR_US;
        let none = p.effective(&[]);
        assert_eq!(
            none,
            Effective {
                upload: false,
                evict_after: Some(31 * d),
                delete_after: Some(31 * d)
            }
        );
        let both = p.effective(&["evidential".into(), "default".into()]);
        assert_eq!(
            both,
            Effective {
                upload: true,
                evict_after: Some(31 * d),
                delete_after: Some(2555 * d)
            }
        );
        // Unknown categories fall back to the default.
        assert_eq!(p.effective(&["mystery".into()]), none);
        assert_eq!(parse_after("never"), Ok(None));
        assert_eq!(parse_after("36h"), Ok(Some(36 * HOUR_US)));
    }

    #[test]
    fn bad_policies_are_refused_naming_the_key() {
        let path = Path::new("policy.toml");
        for (text, key) in [
            (
                DEFAULT_POLICY.replace("\"2555d\"", "\"7 years\""),
                "category.evidential.delete_after",
            ),
            (
                DEFAULT_POLICY.replace("upload = true\n", ""),
                "category.evidential.upload",
            ),
            (DEFAULT_POLICY.replace("0.90", "1.5"), "disk.high_watermark"),
            (
                DEFAULT_POLICY.replace("= 0.5 ", "= -0.1 "),
                "disk.compact_below_live",
            ),
            (
                DEFAULT_POLICY.replace("[category.default]", "[category.other]"),
                "category.default",
            ),
            (
                DEFAULT_POLICY.replace("file:///var", "not a url"),
                "cloud.url",
            ),
            (
                DEFAULT_POLICY.replace("high_watermark", "high_water"),
                "high_water",
            ),
            ("[cloud".to_string(), "policy.toml"),
        ] {
            let e = Policy::parse(&text, path).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }
}
