//! The rules every path in a package obeys, whether it comes from a plugin
//! directory being packed or from an archive being read.
//!
//! A package path is relative, `/`-separated, printable ASCII, and means the
//! same file on Linux, macOS and Windows: no `..`, no `.`, no empty
//! components, no drive letters or backslashes, no characters or names that
//! Windows refuses, no trailing dots or spaces (which Windows strips, making
//! two entries one file). Short enough for a plain ustar header.

use std::collections::HashMap;
use std::fmt;

use crate::error::PackageError;

/// The longest package path, in bytes (what a ustar header's name and prefix
/// fields can hold).
pub const MAX_PATH_LEN: usize = 255;

/// The longest single component of a package path, in bytes (a ustar name
/// field).
pub const MAX_COMPONENT_LEN: usize = 100;

/// Why a path may not appear in a package.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathProblem {
    /// The path is empty.
    Empty,
    /// It starts with `/`.
    Absolute,
    /// It starts with a Windows drive (`C:`) or UNC (`//server`) prefix.
    WindowsPrefix,
    /// It contains a backslash, which Windows reads as a separator.
    Backslash,
    /// A component is `..`: the path climbs out of the package.
    ParentDir,
    /// A component is `.`.
    CurrentDir,
    /// Two separators in a row, or a trailing separator on a file.
    EmptyComponent,
    /// The bytes are not UTF-8.
    NotUtf8,
    /// A character outside printable ASCII, or one Windows refuses in names.
    ForbiddenChar(char),
    /// A component is a Windows device name (`CON`, `NUL`, `COM1` …).
    ReservedName(String),
    /// A component ends with `.` or a space.
    TrailingDotOrSpace(String),
    /// Longer than [`MAX_PATH_LEN`], or a component longer than
    /// [`MAX_COMPONENT_LEN`], or not splittable into a ustar header.
    TooLong(usize),
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the path is empty"),
            Self::Absolute => f.write_str(
                "it is absolute (path traversal): package paths are relative to the package root",
            ),
            Self::WindowsPrefix => {
                f.write_str("it starts with a Windows drive or UNC prefix (path traversal)")
            }
            Self::Backslash => f.write_str(
                "it contains `\\`, a path separator on Windows (path traversal); use `/`",
            ),
            Self::ParentDir => f.write_str("it has a `..` component (path traversal)"),
            Self::CurrentDir => {
                f.write_str("it has a `.` component; package paths are written without `./`")
            }
            Self::EmptyComponent => {
                f.write_str("it has an empty component (`//` or a trailing `/`)")
            }
            Self::NotUtf8 => f.write_str("it is not valid UTF-8"),
            Self::ForbiddenChar(c) => write!(
                f,
                "it contains {c:?}; package paths use printable ASCII without `\\ : * ? \" < > |`"
            ),
            Self::ReservedName(name) => write!(f, "`{name}` is a reserved device name on Windows"),
            Self::TrailingDotOrSpace(name) => write!(
                f,
                "the component `{name}` ends with `.` or a space, which Windows strips"
            ),
            Self::TooLong(len) => write!(
                f,
                "it is too long for a ustar header ({len} bytes; at most {MAX_PATH_LEN} in all and {MAX_COMPONENT_LEN} per component)"
            ),
        }
    }
}

const WINDOWS_DEVICES: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];

/// Checks a package path given as raw bytes (from a tar header) and returns
/// it as a string.
pub(crate) fn check_bytes(raw: &[u8]) -> Result<&str, PathProblem> {
    let text = std::str::from_utf8(raw).map_err(|_| PathProblem::NotUtf8)?;
    check(text)?;
    Ok(text)
}

/// Checks a package path.
pub(crate) fn check(path: &str) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.starts_with('/') {
        return Err(if path.starts_with("//") {
            PathProblem::WindowsPrefix
        } else {
            PathProblem::Absolute
        });
    }
    let bytes = path.as_bytes();
    if path.starts_with("\\\\")
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
    {
        return Err(PathProblem::WindowsPrefix);
    }
    if path.contains('\\') {
        return Err(PathProblem::Backslash);
    }
    // Traversal is the most important thing to name, so look for it before
    // judging characters.
    for component in path.split('/') {
        match component {
            ".." => return Err(PathProblem::ParentDir),
            "." => return Err(PathProblem::CurrentDir),
            "" => return Err(PathProblem::EmptyComponent),
            _ => {}
        }
    }
    if let Some(c) = path.chars().find(|&c| !allowed_char(c)) {
        return Err(PathProblem::ForbiddenChar(c));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(PathProblem::TooLong(path.len()));
    }
    for component in path.split('/') {
        if component.len() > MAX_COMPONENT_LEN {
            return Err(PathProblem::TooLong(path.len()));
        }
        if component.ends_with(['.', ' ']) {
            return Err(PathProblem::TrailingDotOrSpace(component.to_owned()));
        }
        let stem = component.split('.').next().unwrap_or(component);
        if is_windows_device(stem) {
            return Err(PathProblem::ReservedName(component.to_owned()));
        }
    }
    Ok(())
}

fn allowed_char(c: char) -> bool {
    (c == ' ' || c.is_ascii_graphic())
        && !matches!(c, '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
}

fn is_windows_device(stem: &str) -> bool {
    let upper = stem.trim_end().to_ascii_uppercase();
    if WINDOWS_DEVICES.contains(&upper.as_str()) {
        return true;
    }
    match upper.as_bytes() {
        [b'C', b'O', b'M', d] | [b'L', b'P', b'T', d] => d.is_ascii_digit(),
        _ => false,
    }
}

/// The key two paths collide under on a case-insensitive file system.
pub(crate) fn fold(path: &str) -> String {
    path.to_ascii_lowercase()
}

/// The proper ancestors of `path`, nearest last: `a/b/c` gives `a`, `a/b`.
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// The paths of one package so far, refusing duplicates (also those that
/// differ only in case, which are one file on macOS and Windows) and paths
/// that need a file to be a directory or the reverse.
#[derive(Default)]
pub(crate) struct PathSet {
    /// By case-folded spelling.
    seen: HashMap<String, Seen>,
}

struct Seen {
    path: String,
    what: SeenAs,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SeenAs {
    File,
    Dir,
    ImpliedDir,
}

impl PathSet {
    /// Adds a (checked) path of a file or a directory.
    pub(crate) fn insert(&mut self, path: &str, is_dir: bool) -> Result<(), PackageError> {
        for ancestor in ancestors(path) {
            let folded = fold(ancestor);
            match self.seen.get(&folded) {
                Some(seen) if seen.what == SeenAs::File => {
                    return Err(PackageError::PathConflict {
                        entry: path.into(),
                        other: seen.path.as_str().into(),
                    });
                }
                Some(_) => {}
                None => {
                    let seen = Seen {
                        path: ancestor.to_owned(),
                        what: SeenAs::ImpliedDir,
                    };
                    self.seen.insert(folded, seen);
                }
            }
        }
        let what = if is_dir { SeenAs::Dir } else { SeenAs::File };
        match self.seen.get_mut(&fold(path)) {
            None => {
                let seen = Seen {
                    path: path.to_owned(),
                    what,
                };
                self.seen.insert(fold(path), seen);
                Ok(())
            }
            Some(seen) if seen.what == SeenAs::ImpliedDir && is_dir => {
                seen.what = SeenAs::Dir;
                Ok(())
            }
            // A file after a file, or a directory after a directory entry.
            Some(seen) if (seen.what == SeenAs::File) != is_dir => {
                Err(PackageError::DuplicateEntry {
                    entry: path.into(),
                    first: seen.path.as_str().into(),
                })
            }
            Some(seen) => Err(PackageError::PathConflict {
                entry: path.into(),
                other: seen.path.as_str().into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_case(path: &str, expected: Result<(), PathProblem>) {
        assert_eq!(check(path), expected, "{path:?}");
    }

    #[test]
    fn accepted_paths() {
        for ok in [
            "tenon.toml",
            "plugin.wasm",
            "assets/icon@2x.png",
            "assets/a b/c-d_e+f.txt",
            "target/wasm32-wasip2/release/hello.wasm",
            "LICENSE-MIT",
            "assets/console.log",
            "assets/com10",
            ".hidden",
        ] {
            check_case(ok, Ok(()));
        }
    }

    #[test]
    fn refused_paths() {
        use PathProblem::*;
        let cases: &[(&str, PathProblem)] = &[
            ("", Empty),
            ("/etc/passwd", Absolute),
            ("//server/share/x", WindowsPrefix),
            ("\\\\server\\share", WindowsPrefix),
            ("C:/Windows/x", WindowsPrefix),
            ("c:x", WindowsPrefix),
            ("assets\\..\\..\\x", Backslash),
            ("../x", ParentDir),
            ("assets/../../x", ParentDir),
            ("assets/..", ParentDir),
            ("./tenon.toml", CurrentDir),
            ("assets//x", EmptyComponent),
            ("assets/", EmptyComponent),
            ("assets/\u{0}x", ForbiddenChar('\u{0}')),
            ("assets/\nx", ForbiddenChar('\n')),
            ("assets/é", ForbiddenChar('é')),
            ("assets/a:b", ForbiddenChar(':')),
            ("assets/a|b", ForbiddenChar('|')),
            ("assets/CON", ReservedName("CON".into())),
            ("assets/nul.txt", ReservedName("nul.txt".into())),
            ("assets/com1.png", ReservedName("com1.png".into())),
            ("assets/lpt9", ReservedName("lpt9".into())),
            ("assets/x.", TrailingDotOrSpace("x.".into())),
            ("assets/x ", TrailingDotOrSpace("x ".into())),
        ];
        for (path, problem) in cases {
            check_case(path, Err(problem.clone()));
        }
        let long_component = format!("assets/{}", "a".repeat(101));
        check_case(&long_component, Err(TooLong(long_component.len())));
        let long = format!("assets/{}", "abcdefghi/".repeat(26));
        check_case(&long, Err(EmptyComponent));
        let long = long.trim_end_matches('/');
        check_case(long, Err(TooLong(long.len())));
        assert_eq!(check_bytes(b"assets/\xff"), Err(NotUtf8));
    }

    #[test]
    fn ancestors_in_order() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
    }
}
