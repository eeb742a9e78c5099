//! Identifiers and units shared by every reel crate.
//!
//! Ids are newtypes over UUIDs so that a `JobId` can never be passed where a
//! `TaskId` is expected, and `Timestamp` is wall-clock time in microseconds
//! since the Unix epoch, the unit the database stores. This crate has no
//! in-house dependencies and no async runtime.
#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod rate;
mod redact;
pub use rate::{FrameRate, ParseFrameRateError};
pub use redact::redact_paths;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The error returned when a string is not a valid id.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid {kind} id {value:?}: expected a UUID such as 7f3a2c1e-8d9b-4c0a-9e1f-2b3c4d5e6f70"
)]
pub struct ParseIdError {
    kind: &'static str,
    value: String,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random id.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(value).map(Self).map_err(|_| ParseIdError {
                    kind: $kind,
                    value: value.chars().take(64).collect(),
                })
            }
        }
    };
}

uuid_id!(
    /// Identifies a job: one DAG of tasks.
    JobId,
    "job"
);
uuid_id!(
    /// Identifies one task of a job.
    TaskId,
    "task"
);
uuid_id!(
    /// Identifies one worker process (or one `reel serve` process's worker pool).
    WorkerId,
    "worker"
);
uuid_id!(
    /// Identifies a video.
    VideoId,
    "video"
);

/// Wall-clock time as microseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self(i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX))
    }

    /// A timestamp from microseconds since the epoch, as stored in the database.
    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch, as stored in the database.
    pub fn as_micros(&self) -> i64 {
        self.0
    }

    /// This timestamp moved forward by `duration`, saturating.
    pub fn plus(&self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(micros))
    }

    /// The time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(&self, earlier: Timestamp) -> Duration {
        let micros = self.0.saturating_sub(earlier.0).max(0);
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    }
}

/// A size in bytes, parsed from human text such as `512MiB`, `20GiB` or `1000`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

/// The error returned when a byte size cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid byte size {0:?}: expected a number with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)")]
pub struct ParseByteSizeError(String);

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn from_bytes(bytes: u64) -> Self {
        Self(bytes)
    }

    /// The size in bytes.
    pub const fn bytes(&self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = ParseByteSizeError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let split_at = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split_at);
        let number: u64 = number
            .parse()
            .map_err(|_| ParseByteSizeError(text.to_string()))?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" | "k" => 1 << 10,
            "mib" | "m" => 1 << 20,
            "gib" | "g" => 1 << 30,
            "tib" | "t" => 1 << 40,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            _ => return Err(ParseByteSizeError(text.to_string())),
        };
        number
            .checked_mul(multiplier)
            .map(Self)
            .ok_or_else(|| ParseByteSizeError(text.to_string()))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ];
        for (unit, size) in UNITS {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(bytes) => Ok(Self(bytes)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_size(input: &str, expected: Option<u64>) {
        assert_eq!(
            input.parse::<ByteSize>().ok().map(|size| size.bytes()),
            expected,
            "{input}"
        );
    }

    #[test]
    fn parses_byte_sizes() {
        check_size("1000", Some(1000));
        check_size("1GiB", Some(1 << 30));
        check_size("20 GiB", Some(20 << 30));
        check_size("5MB", Some(5_000_000));
        check_size("5 parsecs", None);
        check_size("", None);
        check_size("99999999999999TiB", None);
    }

    #[test]
    fn byte_size_round_trips_through_display() {
        for text in ["1GiB", "512MiB", "1000B", "3KiB"] {
            let size: ByteSize = text.parse().expect("valid size");
            assert_eq!(size.to_string(), text);
        }
    }

    #[test]
    fn rejects_malformed_ids_with_a_hint() {
        let error = "../etc/passwd".parse::<JobId>().expect_err("not a uuid");
        assert!(error.to_string().contains("invalid job id"));
    }

    #[test]
    fn timestamp_arithmetic_saturates() {
        let start = Timestamp::from_micros(1_000);
        let later = start.plus(Duration::from_millis(2));
        assert_eq!(later.as_micros(), 3_000);
        assert_eq!(later.since(start), Duration::from_millis(2));
        assert_eq!(start.since(later), Duration::ZERO);
    }
}
