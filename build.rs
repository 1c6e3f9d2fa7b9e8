//! Embeds the bundled snapshot (`data/snapshot.sqlite.zst`) when present —
//! a checkout without it still builds; `advise` then needs `--snapshot` —
//! and thoth-rs's own `prescriptions/` directory.

use std::path::{Path, PathBuf};

fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, base, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let rel = p
                .strip_prefix(base)
                .expect("walked below base")
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, p));
        }
    }
}

fn main() {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let source = PathBuf::from("data/snapshot.sqlite.zst");
    println!("cargo:rerun-if-changed=data/snapshot.sqlite.zst");
    println!("cargo:rerun-if-changed=data");
    let bytes = std::fs::read(&source).unwrap_or_default();
    // FNV-1a over the bundle names its cache file, so a run need not hash
    // the whole bundle to find it.
    let mut id: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &bytes {
        id ^= u64::from(*b);
        id = id.wrapping_mul(0x0000_0100_0000_01b3);
    }
    println!(
        "cargo:rustc-env=THOTH_BUNDLE_ID={id:016x}{:08x}",
        bytes.len()
    );
    std::fs::write(out_dir.join("bundled-snapshot.zst"), bytes)
        .expect("write OUT_DIR/bundled-snapshot.zst");

    println!("cargo:rerun-if-changed=prescriptions");
    let root =
        std::fs::canonicalize("prescriptions").unwrap_or_else(|_| PathBuf::from("prescriptions"));
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    let mut code = String::from("&[\n");
    for (rel, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("]\n");
    std::fs::write(out_dir.join("bundled_prescriptions.rs"), code)
        .expect("write OUT_DIR/bundled_prescriptions.rs");
}
