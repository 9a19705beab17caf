//! The names a client can give: file ids, upload ids, file names, name prefixes, checksums,
//! and `file_path`.
//!
//! A file's name is what its uploader called it, sanitised into a clean relative name
//! ([`FileName::sanitise`]); names are only ever looked up in the database, never opened as
//! paths, and several files may carry one name (the newest wins). `file_path` names a file
//! by that name or by its id ([`FilePath::parse`]); it is still held to strict rules, so
//! what no name can be (absolute, `..`, backslashes, NUL) is refused with a reason. The only
//! file-system path the store ever builds comes from a [`FileId`].

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

/// The name a stored file was uploaded under, as object stores name objects: a relative
/// path such as `reports/2026/q1.txt` whose folders are only part of the name (nothing is
/// created on disk for them; the bytes live under the file's id). Several files may share a
/// name: each upload is a new version, and the name means the newest of them.
///
/// Sanitised so that every name can be given back as `file_path` and a client saving a
/// download under its name stays inside its own directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    /// `file_name` as the first chunk gave it, made a clean relative name: `\` separates
    /// folders like `/`; control characters go; each component is trimmed; empty, `.` and `..`
    /// components and a leading drive (`C:`) are dropped; a name without a last component
    /// (empty, `dir/`, `..`) ends in [`DEFAULT_FILE_NAME`]. Longer than
    /// [`MAX_FILE_NAME_BYTES`] or deeper than [`MAX_FILE_PATH_DEPTH`] is an error rather than
    /// a silent cut.
    pub fn sanitise(raw: &str) -> Result<Self> {
        let too_long = |len: usize| {
            invalid(
                "file_name",
                format!("is {len} bytes; the limit is {MAX_FILE_NAME_BYTES}"),
            )
        };
        if raw.len() > MAX_FILE_NAME_BYTES {
            return Err(too_long(raw.len()));
        }
        let parts: Vec<&str> = raw.split(['/', '\\']).collect();
        let mut components: Vec<String> = Vec::new();
        let mut last_usable = false;
        for (index, part) in parts.iter().enumerate() {
            let cleaned: String = part.chars().filter(|c| !c.is_control()).collect();
            let trimmed = cleaned.trim();
            last_usable = !(trimmed.is_empty() || trimmed == "." || trimmed == "..");
            // Only a leading drive that has a path after it is dropped, so sanitising a
            // sanitised name changes nothing.
            let drive = components.is_empty() && index + 1 < parts.len() && is_drive(trimmed);
            if last_usable && !drive {
                components.push(trimmed.to_owned());
            }
        }
        if !last_usable {
            components.push(DEFAULT_FILE_NAME.to_owned());
        }
        if components.len() > MAX_FILE_PATH_DEPTH {
            return Err(invalid(
                "file_name",
                format!("has more than {MAX_FILE_PATH_DEPTH} components"),
            ));
        }
        let name = components.join("/");
        if name.len() > MAX_FILE_NAME_BYTES {
            return Err(too_long(name.len()));
        }
        Ok(Self(name))
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

/// `C:` and the like: a Windows drive, which says nothing about the file.
fn is_drive(component: &str) -> bool {
    let bytes = component.as_bytes();
    bytes.len() == 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// What DownloadFile's `file_path` names: a file's name (the newest file of that name), or a
/// file id, bare or in its storage place `ab/cd/<id>` (the form the store used before names
/// could be looked up; kept working).
///
/// The path is never opened as a file-system path: a name is looked up in the database, an id
/// becomes the store's own path for it. It is still checked, so that what cannot be a name
/// (absolute, `.` or `..` components, backslashes, NUL and other control characters, empty
/// components) is refused with a reason instead of being looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePath {
    text: String,
}

impl FilePath {
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
        if text.chars().any(char::is_control) {
            return reject("contains a control character; no name has one");
        }
        if text.contains('\\') {
            return reject("contains a backslash; separate components with '/'");
        }
        if text.starts_with('/') {
            return reject("must be a file's name or id, not an absolute path");
        }
        let mut depth = 0;
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
            depth += 1;
        }
        if depth > MAX_FILE_PATH_DEPTH {
            return Err(invalid(
                "file_path",
                format!("has more than {MAX_FILE_PATH_DEPTH} components"),
            ));
        }
        Ok(Self {
            text: text.to_owned(),
        })
    }

    /// The path as a name to look up.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The file id this path spells, if it spells one: a bare `<id>`, or `ab/cd/<id>` as
    /// [`FileId::shard_path`] makes it. An id that names a stored file wins over a name.
    pub fn file_id(&self) -> Option<FileId> {
        let components: Vec<&str> = self.text.split('/').collect();
        let id = FileId::parse("file_path", components.last()?).ok()?;
        match components.as_slice() {
            [_] => Some(id),
            [first, second, _] if *first == &id.0[0..2] && *second == &id.0[2..4] => Some(id),
            _ => None,
        }
    }
}

/// ListFiles' `name_prefix`: only files whose name starts with it are listed. Refused when no
/// name can start with it (the rules of [`FileName::sanitise`]), so a mistyped prefix is an
/// error rather than an empty list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePrefix(String);

impl NamePrefix {
    /// Checks a client's `name_prefix`; empty means no filter (`None`).
    pub fn parse(text: &str) -> Result<Option<Self>> {
        let reject = |reason: String| Err(invalid("name_prefix", reason));
        if text.is_empty() {
            return Ok(None);
        }
        if text.len() > MAX_FILE_NAME_BYTES {
            return reject(format!(
                "is {} bytes; no name is longer than {MAX_FILE_NAME_BYTES}",
                text.len()
            ));
        }
        if text.chars().any(char::is_control) {
            return reject("contains a control character; no name has one".to_owned());
        }
        if text.contains('\\') {
            return reject("contains a backslash; names separate folders with '/'".to_owned());
        }
        if text.starts_with('/') {
            return reject("starts with '/'; names are relative, like \"reports/\"".to_owned());
        }
        // Every component but the last is complete, so it must be one a name can have; the
        // last may be the start of one ("" after a trailing '/', or "." of ".profile").
        let mut components = text.split('/');
        components.next_back();
        for component in components {
            match component {
                "" => return reject("has an empty component (a doubled '/')".to_owned()),
                "." | ".." => {
                    return reject(format!("has a {component:?} component; no name has one"));
                }
                _ => {}
            }
        }
        Ok(Some(Self(text.to_owned())))
    }

    /// The prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` starts with this prefix.
    pub fn matches(&self, name: &str) -> bool {
        name.starts_with(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Component, Path};

    use proptest::prelude::*;

    use super::*;

    fn reason(text: &str) -> String {
        FilePath::parse(text)
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
            ("a\\..\\secret", "backslash"),
            ("C:\\secret", "backslash"),
            ("a\0b", "NUL"),
            ("a\nb", "control character"),
            ("a//b", "empty component"),
            ("a/", "empty component"),
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
    fn names_with_any_characters_are_paths_looked_up_as_they_are() {
        // Names are compared in the database, never decoded or opened: these are harmless.
        for text in [
            "a b",
            "C:secret",
            "ünï",
            "%2e%2e/secret",
            "..%2fsecret",
            "100%.txt",
        ] {
            let path = FilePath::parse(text).expect(text);
            assert_eq!(path.as_str(), text);
            assert_eq!(path.file_id(), None, "{text}");
        }
    }

    #[test]
    fn a_path_spells_an_id_bare_or_in_its_storage_place() {
        let id = FileId::generate();
        let shard = id.shard_path();
        let by_layout = FilePath::parse(shard.to_str().expect("ascii")).expect("valid");
        assert_eq!(by_layout.file_id(), Some(id.clone()));
        let bare = FilePath::parse(id.as_str()).expect("valid");
        assert_eq!(bare.file_id(), Some(id.clone()));
        let upper = FilePath::parse(&id.as_str().to_ascii_uppercase()).expect("valid");
        assert_eq!(upper.file_id(), Some(id.clone()));
        let wrong_shard = FilePath::parse(&format!("00/00/{id}")).expect("valid");
        if !id.as_str().starts_with("0000") {
            assert_eq!(wrong_shard.file_id(), None);
        }
        for other in ["tmp/x.part", "secret", "ab/cd", "a/b/c/d", "reports/q1.txt"] {
            assert_eq!(
                FilePath::parse(other).expect("valid").file_id(),
                None,
                "{other}"
            );
        }
    }

    #[test]
    fn prefixes_are_refused_when_no_name_can_start_with_them() {
        for ok in [
            "r",
            "reports/",
            "reports/2026/q",
            "a b",
            ".",
            "reports/..x",
            "ünï",
        ] {
            let prefix = NamePrefix::parse(ok).expect(ok).expect("a filter");
            assert_eq!(prefix.as_str(), ok);
        }
        assert_eq!(NamePrefix::parse("").expect("empty is fine"), None);
        let cases = [
            ("/reports", "starts with '/'"),
            ("a\\b", "backslash"),
            ("a\nb", "control character"),
            ("a//b", "empty component"),
            ("../a", "\"..\" component"),
            ("a/./b", "\".\" component"),
        ];
        for (text, expected) in cases {
            let message = NamePrefix::parse(text).expect_err(text).to_string();
            assert!(
                message.starts_with("name_prefix: ") && message.contains(expected),
                "{text:?}: {message}"
            );
        }
        let long = NamePrefix::parse(&"a".repeat(MAX_FILE_NAME_BYTES + 1))
            .expect_err("overlong")
            .to_string();
        assert!(long.contains("no name is longer than 255"), "{long}");
        let prefix = NamePrefix::parse("reports/").expect("valid").expect("set");
        assert!(prefix.matches("reports/q1.txt"));
        assert!(!prefix.matches("reports.txt"));
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
    fn file_names_are_clean_relative_names() {
        let name = |raw: &str| FileName::sanitise(raw).expect("valid").0;
        assert_eq!(name("report.pdf"), "report.pdf");
        assert_eq!(name("reports/2026/q1.pdf"), "reports/2026/q1.pdf");
        assert_eq!(name("../../etc/passwd"), "etc/passwd");
        assert_eq!(name("/abs//dir/./x"), "abs/dir/x");
        assert_eq!(name("C:\\Users\\x\\a.txt"), "Users/x/a.txt");
        assert_eq!(name("C:"), "C:");
        assert_eq!(name("C:/D:/x"), "x");
        assert_eq!(name("x/C:/y"), "x/C:/y");
        assert_eq!(name("a\0b\n.txt"), "ab.txt");
        assert_eq!(name(""), DEFAULT_FILE_NAME);
        assert_eq!(name(".."), DEFAULT_FILE_NAME);
        assert_eq!(name("dir/"), format!("dir/{DEFAULT_FILE_NAME}"));
        assert_eq!(name("  spaced  / out "), "spaced/out");
        let err = FileName::sanitise(&"x".repeat(MAX_FILE_NAME_BYTES + 1))
            .expect_err("too long")
            .to_string();
        assert!(
            err.starts_with("file_name") && err.contains("limit"),
            "{err}"
        );
        let deep = FileName::sanitise(&"a/".repeat(MAX_FILE_PATH_DEPTH + 1))
            .expect_err("too deep")
            .to_string();
        assert!(deep.starts_with("file_name"), "{deep}");
        assert!(deep.contains("more than"), "{deep}");
        let long_dir = format!("{}/", "d".repeat(MAX_FILE_NAME_BYTES - 1));
        assert!(
            FileName::sanitise(&long_dir).is_err(),
            "with upload.bin it is too long"
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
                if let Ok(path) = FilePath::parse(&text) {
                    let relative = Path::new(path.as_str());
                    prop_assert!(relative.is_relative(), "{text:?}");
                    prop_assert!(
                        relative.components().all(|c| matches!(c, Component::Normal(_))),
                        "{text:?} has a non-plain component"
                    );
                    let resolved = resolve(root, relative);
                    prop_assert!(
                        resolved.as_ref().is_some_and(|p| p.starts_with(root) && p != root),
                        "{text:?} resolves to {resolved:?}"
                    );
                }
            }
        }

        #[test]
        fn every_sanitised_name_is_stable_and_can_be_asked_for(
            parts in proptest::collection::vec(fragment(), 0..12),
            noise in ".{0,40}",
        ) {
            for raw in [parts.concat(), noise] {
                if let Ok(name) = FileName::sanitise(&raw) {
                    let again = FileName::sanitise(name.as_str());
                    prop_assert_eq!(again.as_ref().ok(), Some(&name), "{:?}", raw);
                    let path = FilePath::parse(name.as_str());
                    prop_assert!(path.is_ok(), "{:?} gave {:?}: {:?}", raw, name, path);
                    let prefix = NamePrefix::parse(name.as_str());
                    prop_assert!(prefix.is_ok(), "{:?} gave {:?}: {:?}", raw, name, prefix);
                }
            }
        }
    }
}
