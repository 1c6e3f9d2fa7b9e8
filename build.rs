//! Embeds the bundled snapshot (`data/snapshot.sqlite.zst`) when present.
//! A checkout without it still builds; `advise` then needs `--snapshot`.

use std::path::PathBuf;

fn main() {
    let source = PathBuf::from("data/snapshot.sqlite.zst");
    println!("cargo:rerun-if-changed=data/snapshot.sqlite.zst");
    println!("cargo:rerun-if-changed=data");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .join("bundled-snapshot.zst");
    let bytes = std::fs::read(&source).unwrap_or_default();
    std::fs::write(&out, bytes).expect("write OUT_DIR/bundled-snapshot.zst");
}
