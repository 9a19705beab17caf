//! The `file_path` sanitiser: for any bytes, parsing never panics, and an accepted path is
//! relative, made of plain components only, and names something strictly inside the root.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use streamhub_biz::files::StorePath;

fuzz_target!(|text: &str| {
    let Ok(path) = StorePath::parse(text) else {
        return;
    };
    let relative = path.to_path_buf();
    assert!(relative.is_relative(), "{text:?}");
    assert!(
        relative
            .components()
            .all(|component| matches!(component, Component::Normal(_))),
        "{text:?} has a non-plain component"
    );
    let root = Path::new("/srv/streamhub/files");
    let joined = root.join(&relative);
    assert!(joined.starts_with(root) && joined != root, "{text:?}");
    // A stored file's id is only ever taken from such a path.
    let _ = path.file_id();
});
