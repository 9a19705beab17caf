//! The `file_path` rules: for any bytes, parsing never panics, and an accepted path is
//! relative and made of plain components only, so even taken as a path under the root it
//! stays strictly inside (it is only ever looked up as a name, or spells a file id).
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use streamhub_biz::files::FilePath;

fuzz_target!(|text: &str| {
    let Ok(path) = FilePath::parse(text) else {
        return;
    };
    let relative = Path::new(path.as_str());
    assert!(relative.is_relative(), "{text:?}");
    assert!(
        relative
            .components()
            .all(|component| matches!(component, Component::Normal(_))),
        "{text:?} has a non-plain component"
    );
    let root = Path::new("/srv/streamhub/files");
    let joined = root.join(relative);
    assert!(joined.starts_with(root) && joined != root, "{text:?}");
    // A stored file's id is only ever taken from such a path.
    let _ = path.file_id();
});
