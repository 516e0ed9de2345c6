//! The manifest's JSON fields that are read by hand: label lists (refused past
//! `MAX_LABELS` while read), times and other scalars, and the `gps` array, read point by point
//! straight into fixes (refused past `MAX_GPS_FIXES`).
//!
//! Invariant: no JSON tree is built for a `gps` array; an error raised inside the parser is
//! marked (`GPS_ERROR_MARK`) so it is reported as it is.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Number, Value};

use crate::meta::{GpsFix, MAX_GPS_FIXES, MAX_LABELS};

use crate::input::gps::{parse_csv, parse_gpx};
use crate::input::InputError;

use super::{invalid, number_to_us};

/// A list of case ids, tags or categories, refused past [`MAX_LABELS`] entries while read.
pub(super) struct Labels(pub(super) Vec<String>);

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Labels, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    if v.len() == MAX_LABELS {
                        return Err(de::Error::custom(format!(
                            "more than {MAX_LABELS} values in a list; the limit is {MAX_LABELS}"
                        )));
                    }
                    v.push(s);
                }
                Ok(Labels(v))
            }
        }
        d.deserialize_seq(V)
    }
}

/// Marks a `gps` error raised inside the JSON parser, so it is reported as it is (without
/// the JSON-syntax hint).
pub(super) const GPS_ERROR_MARK: &str = "\u{1}gps: ";

fn gps_error<E: de::Error>(e: InputError) -> E {
    E::custom(format!("{GPS_ERROR_MARK}{e}"))
}

/// A manifest's `gps` array, read point by point into fixes.
pub(super) struct GpsPoints(pub(super) Vec<GpsFix>);

impl<'de> Deserialize<'de> for GpsPoints {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GpsPoints, D::Error> {
        d.deserialize_any(PointsVisitor)
    }
}

struct PointsVisitor;

impl<'de> Visitor<'de> for PointsVisitor {
    type Value = GpsPoints;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of GPS points [unix_seconds, lat, lon], or GPX or CSV text")
    }

    /// GPX or CSV text in place of the array (a `<` first: GPX).
    fn visit_str<E: de::Error>(self, v: &str) -> Result<GpsPoints, E> {
        let body = v.strip_prefix('\u{feff}').unwrap_or(v).trim_start();
        let fixes = if body.is_empty() {
            Vec::new()
        } else if body.starts_with('<') {
            parse_gpx(v.as_bytes(), "gps").map_err(gps_error)?
        } else {
            parse_csv(v.as_bytes(), "gps").map_err(gps_error)?
        };
        Ok(GpsPoints(fixes))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GpsPoints, A::Error> {
        let mut fixes = Vec::new();
        loop {
            let index = fixes.len();
            let Some(item) = seq.next_element::<PointItem>()? else {
                break;
            };
            if index == MAX_GPS_FIXES {
                return Err(gps_error(invalid(format!(
                    "gps has more than {MAX_GPS_FIXES} points; the limit is {MAX_GPS_FIXES} \
                     (24 h at 4 Hz): split the clip or thin its track"
                ))));
            }
            fixes.push(gps_point(index, item).map_err(gps_error)?);
        }
        Ok(GpsPoints(fixes))
    }
}

/// One element of a `gps` array: three numbers, or what it was instead (for the message).
enum PointItem {
    Point([Number; 3]),
    Other(String),
}

/// One JSON value where a number or a string is expected (a time, an item of a point): kept
/// if it is one, else only a short rendering of it (an array or object is skipped, not built).
pub(super) enum Scalar {
    Null,
    Num(Number),
    Text(String),
    Other(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("null"),
            Scalar::Num(n) => write!(f, "{n}"),
            Scalar::Text(s) => f.write_str(&quoted(s)),
            Scalar::Other(s) => f.write_str(s),
        }
    }
}

/// Renders a JSON string as JSON.
fn quoted(v: &str) -> String {
    Value::String(v.to_string()).to_string()
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Number::from_f64(v).map_or_else(|| Scalar::Other(v.to_string()), Scalar::Num))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("[...]".into()))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("{...}".into()))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct PointVisitor;

impl<'de> Visitor<'de> for PointVisitor {
    type Value = PointItem;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GPS point [unix_seconds, lat, lon]")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PointItem, A::Error> {
        // At most four items are kept (three and one too many), whatever the array holds.
        let mut items: Vec<Scalar> = Vec::with_capacity(4);
        let mut more = false;
        while let Some(v) = seq.next_element::<Scalar>()? {
            if items.len() == 4 {
                more = true;
            } else {
                items.push(v);
            }
        }
        if let [Scalar::Num(t), Scalar::Num(lat), Scalar::Num(lon)] = items.as_slice() {
            return Ok(PointItem::Point([t.clone(), lat.clone(), lon.clone()]));
        }
        let mut text: Vec<String> = items.iter().map(ToString::to_string).collect();
        if more {
            text.push("...".into());
        }
        Ok(PointItem::Other(format!("[{}]", text.join(","))))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PointItem, E> {
        Ok(PointItem::Other(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PointItem, E> {
        Ok(PointItem::Other(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<PointItem, E> {
        Ok(PointItem::Other(
            ScalarVisitor.visit_f64::<E>(v)?.to_string(),
        ))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<PointItem, E> {
        Ok(PointItem::Other(quoted(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<PointItem, E> {
        Ok(PointItem::Other(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<PointItem, E> {
        Ok(PointItem::Other("null".into()))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<PointItem, A::Error> {
        Ok(PointItem::Other(ScalarVisitor.visit_map(map)?.to_string()))
    }
}

impl<'de> Deserialize<'de> for PointItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PointItem, D::Error> {
        d.deserialize_any(PointVisitor)
    }
}

fn gps_point(index: usize, item: PointItem) -> Result<GpsFix, InputError> {
    let shape = |value: &str| {
        invalid(format!(
            "gps[{index}] is {value}; each GPS point must be [unix_seconds, lat, lon], \
             three numbers"
        ))
    };
    let [t, lat, lon] = match item {
        PointItem::Point(p) => p,
        PointItem::Other(text) => return Err(shape(&text)),
    };
    let time_us = number_to_us(&t).map_err(|e| e.context(&format!("gps[{index}] time")))?;
    let (Some(lat_d), Some(lon_d)) = (lat.as_f64(), lon.as_f64()) else {
        return Err(shape(&format!("[{t},{lat},{lon}]")));
    };
    GpsFix::from_degrees(time_us, lat_d, lon_d).map_err(|e| invalid(format!("gps[{index}]: {e}")))
}
