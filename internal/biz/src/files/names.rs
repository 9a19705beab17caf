//! The names a client can give: file ids, upload ids, file names, checksums, and `file_path`.
//!
//! `file_path` is the one input that could reach the file system, so [`StorePath::parse`] is
//! strict: a relative path of plain components made of `[A-Za-z0-9._-]`, no `.` or `..`, no
//! percent sign, backslash or NUL, bounded in length and depth. What it accepts can only name
//! something under the storage root, and the store further resolves it only to committed files.

use std::{
    hash::{BuildHasher as _, Hasher as _, RandomState},
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
    time::SystemTime,
};

use crate::{Error, Result};

/// Longest `file_name` kept, in bytes.
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// The name of an upload whose first chunk gives none.
pub const DEFAULT_FILE_NAME: &str = "upload.bin";
/// Longest accepted `file_path`, in bytes.
pub const MAX_FILE_PATH_BYTES: usize = 1024;
/// Most components of a `file_path`.
pub const MAX_FILE_PATH_DEPTH: usize = 16;
/// Longest component of a `file_path`, in bytes (the usual file system limit).
pub const MAX_PATH_COMPONENT_BYTES: usize = 255;
/// Longest `upload_id`, in characters.
pub const MAX_UPLOAD_ID_CHARS: usize = 64;

const FILE_ID_HEX_DIGITS: usize = 32;

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidFileField {
        field,
        reason: reason.into(),
    }
}

/// A stored file's id: 32 lowercase hex digits (128 random bits), assigned by the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(String);

impl FileId {
    /// A fresh, unpredictable id. std's `RandomState` is keyed from the OS's randomness once
    /// per thread; mixing in the clock and a process-wide counter makes ids from one thread
    /// differ too.
    pub fn generate() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let half = |salt: u64| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(salt);
            hasher.write_u128(nanos);
            hasher.write_u64(count);
            hasher.finish()
        };
        Self(format!("{:016x}{:016x}", half(1), half(2)))
    }

    /// Parses the id a client sent in `field`.
    pub fn parse(field: &'static str, text: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(invalid(field, "is empty"));
        }
        if text.len() != FILE_ID_HEX_DIGITS || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                field,
                format!(
                    "is not a file id (ids are {FILE_ID_HEX_DIGITS} hex digits, as UploadFile returns them)"
                ),
            ));
        }
        Ok(Self(text.to_ascii_lowercase()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the file's bytes live relative to the storage root: `ab/cd/abcd…`. Two levels of
    /// 256 directories keep every directory small (a million files put about 15 in each leaf),
    /// and random ids spread files evenly.
    pub fn shard_path(&self) -> PathBuf {
        let mut path = PathBuf::from(&self.0[0..2]);
        path.push(&self.0[2..4]);
        path.push(&self.0);
        path
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client-chosen name of a resumable upload: 1–64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(String);

impl UploadId {
    /// Parses `upload_id`.
    pub fn parse(text: &str) -> Result<Self> {
        let valid = !text.is_empty()
            && text.len() <= MAX_UPLOAD_ID_CHARS
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(text.to_owned()))
        } else if text.is_empty() {
            Err(invalid("upload_id", "is empty"))
        } else {
            Err(invalid(
                "upload_id",
                format!(
                    "must be 1 to {MAX_UPLOAD_ID_CHARS} characters of A-Z, a-z, 0-9, '_' and '-'"
                ),
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SHA-256 digest as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checksum(String);

impl Checksum {
    /// Parses a client's `checksum` (hex digits in either case).
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                "checksum",
                format!(
                    "must be a SHA-256 as 64 hex digits, got {} characters",
                    text.chars().count()
                ),
            ));
        }
        Ok(Self(text.to_ascii_lowercase()))
    }

    /// A computed digest.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        use std::fmt::Write as _;
        let mut hex = String::with_capacity(64);
        for byte in digest {
            let _ = write!(hex, "{byte:02x}");
        }
        Self(hex)
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The display name of a stored file. Only ever stored in the database, never used as a path;
/// sanitised anyway so that a client saving a download under this name stays in its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    /// `file_name` as the first chunk gave it: the part after the last `/` or `\`, without
    /// control characters, trimmed; [`DEFAULT_FILE_NAME`] when nothing usable remains. Longer
    /// than [`MAX_FILE_NAME_BYTES`] is an error rather than a silent cut.
    pub fn sanitise(raw: &str) -> Result<Self> {
        if raw.len() > MAX_FILE_NAME_BYTES {
            return Err(invalid(
                "file_name",
                format!("is {} bytes; the limit is {MAX_FILE_NAME_BYTES}", raw.len()),
            ));
        }
        let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
        let trimmed = cleaned.trim();
        if trimmed.is_empty() || trimmed == "." || trimmed == ".." {
            return Ok(Self::default());
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// A name read back from storage, trusted as stored.
    pub fn from_stored(name: String) -> Self {
        Self(name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for FileName {
    fn default() -> Self {
        Self(DEFAULT_FILE_NAME.to_owned())
    }
}

/// A `file_path` proven to stay inside the storage root: see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePath {
    components: Vec<String>,
}

impl StorePath {
    /// Checks a client's `file_path`. The messages name the problem, never echo the path.
    pub fn parse(text: &str) -> Result<Self> {
        let reject = |reason: &str| Err(invalid("file_path", reason));
        if text.is_empty() {
            return reject("is empty");
        }
        if text.len() > MAX_FILE_PATH_BYTES {
            return Err(invalid(
                "file_path",
                format!(
                    "is {} bytes; the limit is {MAX_FILE_PATH_BYTES}",
                    text.len()
                ),
            ));
        }
        if text.contains('\0') {
            return reject("contains a NUL byte");
        }
        if text.contains('\\') {
            return reject("contains a backslash; separate components with '/'");
        }
        if text.contains('%') {
            return reject("contains '%'; percent-encoded paths are not accepted");
        }
        if text.starts_with('/') {
            return reject("must be relative to the storage root, not absolute");
        }
        let mut components = Vec::new();
        for component in text.split('/') {
            match component {
                "" => return reject("has an empty component (a doubled or trailing '/')"),
                "." => return reject("must not contain '.' components"),
                ".." => return reject("must not contain '..' components"),
                _ => {}
            }
            if component.len() > MAX_PATH_COMPONENT_BYTES {
                return Err(invalid(
                    "file_path",
                    format!("has a component over {MAX_PATH_COMPONENT_BYTES} bytes"),
                ));
            }
            if let Some(bad) = component
                .chars()
                .find(|&c| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'))
            {
                return Err(invalid(
                    "file_path",
                    format!(
                        "contains {bad:?}; components may use only letters, digits, '.', '_' and '-'"
                    ),
                ));
            }
            components.push(component.to_owned());
        }
        if components.len() > MAX_FILE_PATH_DEPTH {
            return Err(invalid(
                "file_path",
                format!("has more than {MAX_FILE_PATH_DEPTH} components"),
            ));
        }
        Ok(Self { components })
    }

    /// The path relative to the storage root.
    pub fn to_path_buf(&self) -> PathBuf {
        self.components.iter().collect()
    }

    /// The stored file this path names, if it has the store's layout: `ab/cd/<id>` (as
    /// [`FileId::shard_path`] makes it) or a bare `<id>`. Nothing else under the root (partial
    /// uploads, stray files, links) is a stored file.
    pub fn file_id(&self) -> Option<FileId> {
        let id = FileId::parse("file_path", self.components.last()?).ok()?;
        match self.components.as_slice() {
            [_] => Some(id),
            [first, second, _] if first == &id.0[0..2] && second == &id.0[2..4] => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Component, Path};

    use proptest::prelude::*;

    use super::*;

    fn reason(text: &str) -> String {
        StorePath::parse(text)
            .expect_err("must be rejected")
            .to_string()
    }

    #[test]
    fn hostile_paths_are_rejected_naming_the_problem() {
        let cases = [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("../secret", "'..'"),
            ("a/../../secret", "'..'"),
            ("./a", "'.'"),
            ("%2e%2e/secret", "percent"),
            ("..%2fsecret", "percent"),
            ("a\\..\\secret", "backslash"),
            ("C:\\secret", "backslash"),
            ("a\0b", "NUL"),
            ("a//b", "empty component"),
            ("a/", "empty component"),
            ("a b", "' '"),
            ("C:secret", "':'"),
            ("ünï", "'ü'"),
        ];
        for (path, expected) in cases {
            let message = reason(path);
            assert!(
                message.starts_with("file_path") && message.contains(expected),
                "{path:?}: {message}"
            );
        }
        assert!(reason(&"a".repeat(MAX_FILE_PATH_BYTES + 1)).contains("limit"));
        let too_deep = format!("{}a", "a/".repeat(MAX_FILE_PATH_DEPTH));
        assert!(reason(&too_deep).contains("more than"));
    }

    #[test]
    fn only_the_store_layout_names_a_stored_file() {
        let id = FileId::generate();
        let shard = id.shard_path();
        let by_layout = StorePath::parse(shard.to_str().expect("ascii")).expect("valid");
        assert_eq!(by_layout.file_id(), Some(id.clone()));
        let bare = StorePath::parse(id.as_str()).expect("valid");
        assert_eq!(bare.file_id(), Some(id.clone()));
        let wrong_shard = StorePath::parse(&format!("00/00/{id}")).expect("valid");
        if !id.as_str().starts_with("0000") {
            assert_eq!(wrong_shard.file_id(), None);
        }
        for other in ["tmp/x.part", "secret", "ab/cd", "a/b/c/d"] {
            assert_eq!(
                StorePath::parse(other).expect("valid").file_id(),
                None,
                "{other}"
            );
        }
    }

    #[test]
    fn ids_are_distinct_lowercase_hex() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| FileId::generate().0).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(FileId::parse("file_id", id).expect("parses").0, *id);
        }
        assert!(FileId::parse("file_id", "").is_err());
        assert!(FileId::parse("file_id", "../../etc/passwd").is_err());
    }

    #[test]
    fn upload_ids_follow_the_contract() {
        assert!(UploadId::parse("a").is_ok());
        assert!(UploadId::parse(&"A_-9".repeat(16)).is_ok());
        for bad in ["", "a b", "a/b", "ä", &"a".repeat(65)] {
            let err = UploadId::parse(bad).expect_err(bad).to_string();
            assert!(err.starts_with("upload_id"), "{err}");
        }
    }

    #[test]
    fn file_names_keep_their_last_component() {
        let name = |raw: &str| FileName::sanitise(raw).expect("valid").0;
        assert_eq!(name("report.pdf"), "report.pdf");
        assert_eq!(name("../../etc/passwd"), "passwd");
        assert_eq!(name("C:\\Users\\x\\a.txt"), "a.txt");
        assert_eq!(name("a\0b\n.txt"), "ab.txt");
        assert_eq!(name(""), DEFAULT_FILE_NAME);
        assert_eq!(name("dir/"), DEFAULT_FILE_NAME);
        assert_eq!(name(".."), DEFAULT_FILE_NAME);
        assert_eq!(name("  spaced  "), "spaced");
        let err = FileName::sanitise(&"x".repeat(MAX_FILE_NAME_BYTES + 1))
            .expect_err("too long")
            .to_string();
        assert!(
            err.starts_with("file_name") && err.contains("limit"),
            "{err}"
        );
    }

    #[test]
    fn checksums_are_64_hex_digits() {
        let upper = "AB".repeat(32);
        assert_eq!(
            Checksum::parse(&upper).expect("valid").as_str(),
            "ab".repeat(32)
        );
        assert!(Checksum::parse("abc").is_err());
        assert!(Checksum::parse(&"zz".repeat(32)).is_err());
        assert_eq!(Checksum::from_digest(&[0xab; 32]).as_str(), "ab".repeat(32));
    }

    /// Pieces hostile paths are made of, so the generator hits the interesting cases often.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_owned()),
            Just(".".to_owned()),
            Just("/".to_owned()),
            Just("\\".to_owned()),
            Just("%2e".to_owned()),
            Just("%2f".to_owned()),
            Just("\0".to_owned()),
            Just("~".to_owned()),
            Just("C:".to_owned()),
            "[a-z0-9_-]{1,4}",
            any::<char>().prop_map(String::from),
        ]
    }

    /// Lexically resolves `relative` under `root` the way the OS would without links.
    fn resolve(root: &Path, relative: &Path) -> Option<PathBuf> {
        let mut out = root.to_path_buf();
        for component in relative.components() {
            match component {
                Component::Normal(part) => out.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    if !out.pop() {
                        return None;
                    }
                }
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        Some(out)
    }

    proptest! {
        // proptest prints the failing input (and its seed file) when a case fails.
        #[test]
        fn an_accepted_path_never_escapes_the_root(
            parts in proptest::collection::vec(fragment(), 0..12),
            noise in ".{0,40}",
        ) {
            let root = Path::new("/srv/streamhub/files");
            for text in [parts.concat(), noise] {
                if let Ok(path) = StorePath::parse(&text) {
                    let relative = path.to_path_buf();
                    prop_assert!(relative.is_relative(), "{text:?}");
                    prop_assert!(
                        relative.components().all(|c| matches!(c, Component::Normal(_))),
                        "{text:?} has a non-plain component"
                    );
                    let resolved = resolve(root, &relative);
                    prop_assert!(
                        resolved.as_ref().is_some_and(|p| p.starts_with(root) && p != root),
                        "{text:?} resolves to {resolved:?}"
                    );
                }
            }
        }
    }
}
