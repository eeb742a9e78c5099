//! Frame rates as exact rationals.
//!
//! Video timing must be exact: 29.97 fps is 30000/1001, and 4.004 s of it is
//! exactly 120 frames. Floats drift over a long title, so reel keeps rates as
//! reduced fractions and converts to seconds only for display.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A frame rate `num/den` frames per second, always reduced, both parts > 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FrameRate {
    num: u32,
    den: u32,
}

/// A frame rate that is not a positive fraction.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid frame rate {0:?}: expected a positive fraction such as 30000/1001 or 25")]
pub struct ParseFrameRateError(String);

impl FrameRate {
    /// Builds `num/den`, reduced; `None` when either part is zero.
    pub fn new(num: u32, den: u32) -> Option<FrameRate> {
        if num == 0 || den == 0 {
            return None;
        }
        let divisor = gcd(num, den);
        Some(FrameRate {
            num: num / divisor,
            den: den / divisor,
        })
    }

    /// The numerator (frames).
    pub fn num(self) -> u32 {
        self.num
    }

    /// The denominator (seconds).
    pub fn den(self) -> u32 {
        self.den
    }

    /// Frames per second as a float, for display and comparisons only.
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// The time of frame `index` in seconds, as a float.
    pub fn frame_time_seconds(self, index: u64) -> f64 {
        index as f64 * f64::from(self.den) / f64::from(self.num)
    }
}

impl fmt::Display for FrameRate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(formatter, "{}", self.num)
        } else {
            write!(formatter, "{}/{}", self.num, self.den)
        }
    }
}

impl FromStr for FrameRate {
    type Err = ParseFrameRateError;

    fn from_str(text: &str) -> Result<FrameRate, ParseFrameRateError> {
        let error = || ParseFrameRateError(text.to_string());
        let (num, den) = match text.split_once('/') {
            Some((num, den)) => (num.trim(), den.trim()),
            None => (text.trim(), "1"),
        };
        let num: u32 = num.parse().map_err(|_| error())?;
        let den: u32 = den.parse().map_err(|_| error())?;
        FrameRate::new(num, den).ok_or_else(error)
    }
}

impl TryFrom<String> for FrameRate {
    type Error = ParseFrameRateError;

    fn try_from(text: String) -> Result<FrameRate, ParseFrameRateError> {
        text.parse()
    }
}

impl From<FrameRate> for String {
    fn from(rate: FrameRate) -> String {
        rate.to_string()
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let rest = a % b;
        a = b;
        b = rest;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reduces() {
        assert_eq!(
            "60000/2002".parse::<FrameRate>().unwrap().to_string(),
            "30000/1001"
        );
        assert_eq!(
            "25".parse::<FrameRate>().unwrap(),
            FrameRate::new(25, 1).unwrap()
        );
        assert!("0/0".parse::<FrameRate>().is_err());
        assert!("30/0".parse::<FrameRate>().is_err());
        assert!("abc".parse::<FrameRate>().is_err());
    }

    #[test]
    fn frame_times_are_exact_enough() {
        let ntsc = FrameRate::new(30000, 1001).unwrap();
        assert!((ntsc.frame_time_seconds(120) - 4.004).abs() < 1e-9);
    }
}
