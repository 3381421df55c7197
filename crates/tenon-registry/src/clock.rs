//! Timestamps as the registry keeps them: UTC, to the microsecond.

use time::OffsetDateTime;

use crate::error::RegistryError;

/// Now, truncated to the microsecond so that it reads back unchanged.
pub(crate) fn now() -> OffsetDateTime {
    truncate(OffsetDateTime::now_utc())
}

/// `at` truncated to the microsecond, in UTC.
pub(crate) fn truncate(at: OffsetDateTime) -> OffsetDateTime {
    from_micros(to_micros(at)).unwrap_or(at)
}

/// Microseconds since the Unix epoch (what the databases store).
pub(crate) fn to_micros(at: OffsetDateTime) -> i64 {
    let micros = at.unix_timestamp_nanos().div_euclid(1000);
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

/// The inverse of [`to_micros`].
pub(crate) fn from_micros(micros: i64) -> Result<OffsetDateTime, RegistryError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .map_err(|e| RegistryError::decode(format!("timestamp {micros}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let at = now();
        assert_eq!(from_micros(to_micros(at)).unwrap(), at);
        let early = time::macros::datetime!(1969-12-31 23:59:59.999_999_5 UTC);
        assert_eq!(to_micros(early), -1);
        assert_eq!(
            truncate(early),
            time::macros::datetime!(1969-12-31 23:59:59.999_999 UTC)
        );
    }
}
