//! Schema versions: the migrations embedded in this build, and the checks
//! that keep a build from touching a database it does not understand.

use crate::error::RegistryError;

/// The schema version this build migrates databases to (the number of the
/// newest file under `migrations/<backend>/`).
pub const LATEST_SCHEMA_VERSION: i64 = 6;

/// A migration recorded in a database's history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) struct Applied {
    pub(crate) version: i64,
    pub(crate) success: bool,
}

/// Checks a database's migration history against the versions this build
/// knows, before anything is changed: a version past the newest known one
/// means a newer Tenon migrated it.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn check_history(
    location: &str,
    known: &[i64],
    applied: &[Applied],
) -> Result<(), RegistryError> {
    let supported = known.iter().copied().max().unwrap_or(0);
    if let Some(found) = applied
        .iter()
        .map(|a| a.version)
        .filter(|v| *v > supported)
        .max()
    {
        return Err(RegistryError::NewerSchema {
            location: location.to_owned(),
            found,
            supported,
        });
    }
    if let Some(unknown) = applied.iter().find(|a| !known.contains(&a.version)) {
        return Err(RegistryError::SchemaMismatch {
            location: location.to_owned(),
            detail: format!(
                "it records migration {} which this build does not have; is it a Tenon registry?",
                unknown.version
            ),
        });
    }
    if let Some(failed) = applied.iter().find(|a| !a.success) {
        return Err(RegistryError::SchemaMismatch {
            location: location.to_owned(),
            detail: format!(
                "migration {} failed part-way; restore the database from a backup",
                failed.version
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(applied: &[(i64, bool)], expected: Result<(), &str>) {
        let applied: Vec<Applied> = applied
            .iter()
            .map(|&(version, success)| Applied { version, success })
            .collect();
        let got = check_history("r.db", &[1, 2], &applied).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "{applied:?}");
    }

    #[test]
    fn histories() {
        check(&[], Ok(()));
        check(&[(1, true)], Ok(()));
        check(&[(1, true), (2, true)], Ok(()));
        check(
            &[(1, true), (2, true), (3, true)],
            Err(
                "the registry at r.db has schema version 3, written by a newer Tenon; this Tenon knows \
                 schema versions up to 2. Upgrade Tenon, or point it at another registry; nothing was changed",
            ),
        );
        check(
            &[(0, true)],
            Err(
                "the registry at r.db has an unexpected schema history: it records migration 0 which \
                 this build does not have; is it a Tenon registry?",
            ),
        );
        check(
            &[(1, true), (2, false)],
            Err(
                "the registry at r.db has an unexpected schema history: migration 2 failed part-way; \
                 restore the database from a backup",
            ),
        );
    }
}
