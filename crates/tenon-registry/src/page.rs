//! Page sizes, and cutting what a backend fetched into a page.

use crate::error::RegistryError;

/// `limit`, if it asks for at least one `unit`.
pub(crate) fn check_limit(
    limit: usize,
    what: &'static str,
    unit: &str,
) -> Result<usize, RegistryError> {
    if limit == 0 {
        return Err(RegistryError::invalid(
            what,
            "0",
            format!("ask for at least one {unit}"),
        ));
    }
    Ok(limit)
}

/// Cuts `items` (fetched with a limit of `limit + 1`) to `limit`, and says
/// where the next page starts if the extra item showed there is one.
pub(crate) fn cut<T, K>(items: &mut Vec<T>, limit: usize, key: impl Fn(&T) -> K) -> Option<K> {
    if items.len() <= limit {
        return None;
    }
    items.truncate(limit);
    items.last().map(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting() {
        let check = |items: &[u32], limit: usize, expected: (&[u32], Option<u32>)| {
            let mut items = items.to_vec();
            let next = cut(&mut items, limit, |n| *n);
            assert_eq!((items.as_slice(), next), expected);
        };
        check(&[], 2, (&[], None));
        check(&[1, 2], 2, (&[1, 2], None));
        check(&[1, 2, 3], 2, (&[1, 2], Some(2)));
        assert!(check_limit(0, "page size", "item").is_err());
        assert_eq!(check_limit(5, "page size", "item").unwrap(), 5);
    }
}
