//! Sizes (`64MiB`) and durations (`1500ms`) as written in manifests.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes, written `1024`, `64KB`, `64KiB`, `1.5MiB`, `2GB`…
///
/// Decimal units (`KB`, `MB`, `GB`) are powers of 1000, binary units (`KiB`,
/// `MiB`, `GiB`) powers of 1024; `B` or no unit means bytes. Displayed in the
/// largest binary unit that divides it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

/// A duration, written `1500ms`, `5s`, `2m`, `1h` or `250us`; a bare integer
/// means milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DurationSpec(pub Duration);

/// Why a size or a duration does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The text is not a number followed by a known unit.
    #[error("`{text}` is not a {what}: write a number and a unit such as {example}")]
    Malformed {
        /// The text that was given.
        text: String,
        /// `size` or `duration`.
        what: &'static str,
        /// An example of the right form.
        example: &'static str,
    },
    /// The unit is not one of the known ones.
    #[error("`{unit}` is not a {what} unit: use one of {known}")]
    Unit {
        /// The unit that was given.
        unit: String,
        /// `size` or `duration`.
        what: &'static str,
        /// The known units.
        known: &'static str,
    },
    /// The value does not fit.
    #[error("`{0}` is too large")]
    Overflow(String),
}

const SIZE_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];
const SIZE_KNOWN: &str = "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB";

const DURATION_UNITS: &[(&str, u128)] = &[
    ("", 1_000_000),
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];
const DURATION_KNOWN: &str = "ns, us, ms, s, m, h";

/// Splits `12.5MiB` into (`12.5`, `MiB`) after trimming; `None` when it does
/// not start with a digit.
fn split_number(text: &str) -> Option<(&str, &str)> {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == '_'))
        .map_or(text.len(), |(i, _)| i);
    let (number, unit) = text.split_at(end);
    if number.is_empty() || !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some((number, unit.trim_start()))
}

/// Multiplies a decimal number given as text by `scale`, exactly when the
/// result is whole; `None` on overflow or on a fractional result.
fn scale_decimal(number: &str, scale: u128) -> Option<Result<u128, ()>> {
    let number = number.replace('_', "");
    let (whole, frac) = number.split_once('.').unwrap_or((&number, ""));
    if frac.contains('.') || (whole.is_empty() && frac.is_empty()) {
        return None;
    }
    if frac.len() > 18 {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac_digits = frac.len() as u32;
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let denominator = 10u128.pow(frac_digits);
    let Some(whole_scaled) = whole.checked_mul(scale) else {
        return Some(Err(()));
    };
    let Some(frac_scaled) = frac_value.checked_mul(scale) else {
        return Some(Err(()));
    };
    if frac_scaled % denominator != 0 {
        return None;
    }
    Some(
        whole_scaled
            .checked_add(frac_scaled / denominator)
            .ok_or(()),
    )
}

impl FromStr for ByteSize {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || UnitError::Malformed {
            text: text.to_owned(),
            what: "size",
            example: "`64MiB` or `512KB`",
        };
        let (number, unit) = split_number(text).ok_or_else(malformed)?;
        let scale = SIZE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| UnitError::Unit {
                unit: unit.to_owned(),
                what: "size",
                known: SIZE_KNOWN,
            })?;
        match scale_decimal(number, u128::from(scale)) {
            None => Err(malformed()),
            Some(Err(())) => Err(UnitError::Overflow(text.to_owned())),
            Some(Ok(bytes)) => u64::try_from(bytes)
                .map(ByteSize)
                .map_err(|_| UnitError::Overflow(text.to_owned())),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, scale) in [
            ("TiB", 1u64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl ByteSize {
    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// `n` mebibytes.
    pub const fn mib(n: u64) -> Self {
        Self(n << 20)
    }
}

impl FromStr for DurationSpec {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || UnitError::Malformed {
            text: text.to_owned(),
            what: "duration",
            example: "`1500ms` or `5s`",
        };
        let (number, unit) = split_number(text).ok_or_else(malformed)?;
        let scale = DURATION_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| UnitError::Unit {
                unit: unit.to_owned(),
                what: "duration",
                known: DURATION_KNOWN,
            })?;
        match scale_decimal(number, scale) {
            None => Err(malformed()),
            Some(Err(())) => Err(UnitError::Overflow(text.to_owned())),
            Some(Ok(nanos)) => {
                let secs = u64::try_from(nanos / 1_000_000_000)
                    .map_err(|_| UnitError::Overflow(text.to_owned()))?;
                Ok(DurationSpec(Duration::new(
                    secs,
                    (nanos % 1_000_000_000) as u32,
                )))
            }
        }
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        for (unit, scale) in [
            ("h", 3_600_000_000_000u128),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
        ] {
            if nanos >= scale && nanos.is_multiple_of(scale) {
                return write!(f, "{}{unit}", nanos / scale);
            }
        }
        write!(f, "{nanos}ns")
    }
}

impl DurationSpec {
    /// `n` milliseconds.
    pub const fn millis(n: u64) -> Self {
        Self(Duration::from_millis(n))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for DurationSpec {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl From<DurationSpec> for Duration {
    fn from(d: DurationSpec) -> Self {
        d.0
    }
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    Int(u64),
                    Text(String),
                }
                match Raw::deserialize(deserializer)? {
                    Raw::Int(n) => n.to_string().parse().map_err(serde::de::Error::custom),
                    Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
                }
            }
        }
    };
}
string_serde!(ByteSize);
string_serde!(DurationSpec);

#[cfg(test)]
mod tests {
    use super::*;

    fn size(input: &str, expected: Result<u64, &str>) {
        let got = input
            .parse::<ByteSize>()
            .map(|s| s.0)
            .map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "input {input:?}");
    }

    fn duration(input: &str, expected: Result<Duration, &str>) {
        let got = input
            .parse::<DurationSpec>()
            .map(|d| d.0)
            .map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "input {input:?}");
    }

    #[test]
    fn sizes() {
        size("64MiB", Ok(64 << 20));
        size("64MB", Ok(64_000_000));
        size("1.5KiB", Ok(1536));
        size("1024", Ok(1024));
        size("10 B", Ok(10));
        size(
            "0.1B",
            Err("`0.1B` is not a size: write a number and a unit such as `64MiB` or `512KB`"),
        );
        size(
            "MiB",
            Err("`MiB` is not a size: write a number and a unit such as `64MiB` or `512KB`"),
        );
        size(
            "5mb",
            Err("`mb` is not a size unit: use one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"),
        );
        size("99999999999TiB", Err("`99999999999TiB` is too large"));
        size(
            "1.2.3MiB",
            Err("`1.2.3MiB` is not a size: write a number and a unit such as `64MiB` or `512KB`"),
        );
    }

    #[test]
    fn durations() {
        duration("1500ms", Ok(Duration::from_millis(1500)));
        duration("5s", Ok(Duration::from_secs(5)));
        duration("1.5s", Ok(Duration::from_millis(1500)));
        duration("2m", Ok(Duration::from_secs(120)));
        duration("250us", Ok(Duration::from_micros(250)));
        duration("100", Ok(Duration::from_millis(100)));
        duration(
            "5 sec",
            Err("`sec` is not a duration unit: use one of ns, us, ms, s, m, h"),
        );
        duration(
            "-5s",
            Err("`-5s` is not a duration: write a number and a unit such as `1500ms` or `5s`"),
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "64MiB", "1KiB", "1000B", "1500ms", "5s", "2m", "1h", "250us", "7ns",
        ] {
            let shown = if text.ends_with('B') || text.ends_with("iB") {
                text.parse::<ByteSize>().unwrap().to_string()
            } else {
                text.parse::<DurationSpec>().unwrap().to_string()
            };
            assert_eq!(shown, text);
        }
    }
}
