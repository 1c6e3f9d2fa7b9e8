//! A read-only view of an image's root filesystem.
//!
//! Two implementations: [`Tree`], the merged result of applying an image's
//! layers in memory (contents kept only for the files the analysis reads),
//! and [`DirRoot`], an unpacked root filesystem on disk. Paths are relative
//! to the root, without a leading `/`.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Largest file whose contents the analysis keeps (an RPM database).
pub const MAX_KEPT_BYTES: u64 = 256 * 1024 * 1024;

/// Most bytes the analysis keeps from one image, all files together.
pub const MAX_TOTAL_KEPT: u64 = 1024 * 1024 * 1024;

/// Largest copy of `path` worth keeping: package databases and C runtime
/// libraries may be large, metadata files never are (a bigger one is
/// treated as unreadable).
pub fn kept_limit(path: &str) -> u64 {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == "rpmdb.sqlite" {
        MAX_KEPT_BYTES
    } else if name == "status" || name.starts_with("libc") || name.starts_with("libstdc++") {
        64 * 1024 * 1024
    } else {
        4 * 1024 * 1024
    }
}

/// How many symbolic links one lookup may follow.
const MAX_LINKS: usize = 40;

/// What the analysis can ask of a root filesystem.
pub trait Root {
    /// Contents of a regular file (symbolic links followed), if present
    /// and kept.
    fn read(&self, path: &str) -> Option<Vec<u8>>;
    /// Names of the entries of a directory (symbolic links followed).
    fn list(&self, dir: &str) -> Vec<String>;
    /// Does the path exist (as anything)?
    fn exists(&self, path: &str) -> bool;
    /// The path with every symbolic link in it resolved inside the image
    /// (relative to the root, no leading `/`); `None` for a loop or, on
    /// disk, a missing path. Two paths name the same file when their
    /// canonical forms are equal.
    fn canonical(&self, path: &str) -> Option<String>;
}

/// Does the analysis need this file's contents? Decided on the path alone,
/// so layers can be streamed without keeping every file.
pub fn wanted(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        name,
        "os-release"
            | "status"
            | "rpmdb.sqlite"
            | "METADATA"
            | "PKG-INFO"
            | "cudnn.h"
            | "EXTERNALLY-MANAGED"
            | "pyvenv.cfg"
    ) || name.starts_with("cudnn_version")
        || (name == "requires.txt" && path.contains(".egg-info/"))
        || (path.contains("var/lib/dpkg/info/") && name.ends_with(".list"))
        || (path.contains("cuda") && matches!(name, "version.json" | "version.txt"))
        || name.starts_with("libc.so")
        || (name.starts_with("libc-") && name.ends_with(".so"))
        || name.starts_with("libstdc++.so")
        || (name.ends_with(".egg-info") && !path.ends_with('/'))
}

/// One entry of the merged tree.
#[derive(Debug, Clone)]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file, with its contents when [`wanted`].
    File(Option<Vec<u8>>),
    /// A symbolic link and its target.
    Symlink(String),
    /// A hard link to another path of the image.
    HardLink(String),
}

/// The merged filesystem of an image's layers.
#[derive(Debug, Default)]
pub struct Tree {
    /// Path → (layer that wrote it, entry).
    nodes: BTreeMap<String, (usize, Node)>,
}

/// Normalise an archive path: no leading `./` or `/`, no trailing `/`,
/// `.` and `..` resolved.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The components a symbolic link in `dir` pointing at `target` leads to,
/// in reverse order (for a stack of components still to resolve); an
/// absolute target starts again from the image's root.
fn link_parts(dir: &str, target: &str) -> Vec<String> {
    let base = if target.starts_with('/') { "" } else { dir };
    let mut parts: Vec<String> = clean(&format!("{base}/{target}"))
        .split('/')
        .map(str::to_string)
        .collect();
    parts.reverse();
    parts
}

impl Tree {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// No entries?
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Add an entry written by `layer`, replacing what lower layers had
    /// (a directory replaced by a non-directory loses its contents).
    pub fn insert(&mut self, layer: usize, path: &str, node: Node) {
        let path = clean(path);
        if path.is_empty() {
            return;
        }
        if !matches!(node, Node::Dir) {
            self.remove_below(&path, layer);
        }
        self.nodes.insert(path, (layer, node));
    }

    /// Remove `path` and everything below it that layers before `layer`
    /// wrote (a whiteout `.wh.NAME`).
    pub fn whiteout(&mut self, layer: usize, path: &str) {
        let path = clean(path);
        if self.nodes.get(&path).is_some_and(|(l, _)| *l < layer) {
            self.nodes.remove(&path);
        }
        self.remove_below(&path, layer);
    }

    /// Remove everything below `dir` that layers before `layer` wrote (an
    /// opaque directory `.wh..wh..opq`).
    pub fn opaque(&mut self, layer: usize, dir: &str) {
        self.remove_below(&clean(dir), layer);
    }

    fn remove_below(&mut self, dir: &str, layer: usize) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, (l, _))| *l < layer)
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.nodes.remove(&k);
        }
    }

    /// Resolve symbolic links in every component of `path`.
    fn resolve(&self, path: &str) -> Option<String> {
        let mut pending: Vec<String> = clean(path).split('/').map(str::to_string).collect();
        pending.reverse();
        let mut done = String::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part.is_empty() {
                continue;
            }
            let next = if done.is_empty() {
                part.clone()
            } else {
                format!("{done}/{part}")
            };
            match self.nodes.get(&next) {
                Some((_, Node::Symlink(target))) => {
                    hops += 1;
                    if hops > MAX_LINKS {
                        return None;
                    }
                    // The link's target replaces what was resolved so far.
                    pending.extend(link_parts(&done, target));
                    done.clear();
                }
                Some(_) => done = next,
                None => {
                    // Parent directories need not have their own entries.
                    done = next;
                }
            }
        }
        Some(done)
    }
}

impl Root for Tree {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let mut path = self.resolve(path)?;
        for _ in 0..MAX_LINKS {
            match &self.nodes.get(&path)?.1 {
                Node::File(data) => return data.clone(),
                Node::HardLink(target) => path = self.resolve(target)?,
                _ => return None,
            }
        }
        None
    }

    fn list(&self, dir: &str) -> Vec<String> {
        let Some(dir) = self.resolve(dir) else {
            return Vec::new();
        };
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out: Vec<String> = Vec::new();
        for (k, _) in self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            let rest = &k[prefix.len()..];
            let name = rest.split('/').next().unwrap_or(rest);
            if out.last().is_none_or(|l| l != name) {
                out.push(name.to_string());
            }
        }
        out.dedup();
        out
    }

    fn canonical(&self, path: &str) -> Option<String> {
        self.resolve(path)
    }

    fn exists(&self, path: &str) -> bool {
        let Some(path) = self.resolve(path) else {
            return false;
        };
        let below = format!("{path}/");
        path.is_empty()
            || self.nodes.contains_key(&path)
            || self
                .nodes
                .range(below.clone()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&below))
    }
}

/// An unpacked root filesystem on disk. Absolute symbolic links are
/// resolved inside the root, never on the host.
#[derive(Debug)]
pub struct DirRoot {
    /// The root directory.
    pub root: PathBuf,
}

impl DirRoot {
    /// Resolve `path` inside the root, following symbolic links the way
    /// the image would see them.
    fn resolve(&self, path: &str) -> Option<PathBuf> {
        Some(self.root.join(self.resolve_relative(path)?))
    }

    /// [`Self::resolve`], relative to the root.
    fn resolve_relative(&self, path: &str) -> Option<String> {
        let mut pending: Vec<String> = clean(path).split('/').map(str::to_string).collect();
        pending.reverse();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part.is_empty() {
                continue;
            }
            let candidate = self.root.join(done.join("/")).join(&part);
            match std::fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_LINKS {
                        return None;
                    }
                    let target = std::fs::read_link(&candidate).ok()?;
                    let target = target.to_string_lossy().to_string();
                    pending.extend(link_parts(&done.join("/"), &target));
                    done.clear();
                }
                Ok(_) => done.push(part),
                Err(_) => return None,
            }
        }
        Some(done.join("/"))
    }
}

impl Root for DirRoot {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let p = self.resolve(path)?;
        let meta = std::fs::metadata(&p).ok()?;
        if !meta.is_file() || meta.len() > kept_limit(path) {
            return None;
        }
        std::fs::read(p).ok()
    }

    fn list(&self, dir: &str) -> Vec<String> {
        let Some(p) = self.resolve(dir) else {
            return Vec::new();
        };
        let mut out: Vec<String> = std::fs::read_dir(p)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_some()
    }

    fn canonical(&self, path: &str) -> Option<String> {
        self.resolve_relative(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Node {
        Node::File(Some(text.as_bytes().to_vec()))
    }

    #[test]
    fn later_layers_win_and_whiteouts_remove_lower_entries() {
        let mut t = Tree::default();
        t.insert(0, "./etc/os-release", file("ID=a"));
        t.insert(0, "usr/lib/x/one", file("1"));
        t.insert(0, "usr/lib/x/two", file("2"));
        t.insert(0, "opt/keep/a", file("a"));
        t.insert(1, "etc/os-release", file("ID=b"));
        t.whiteout(1, "usr/lib/x/one");
        t.opaque(1, "opt/keep");
        t.insert(1, "opt/keep/b", file("b"));
        assert_eq!(t.read("etc/os-release").unwrap(), b"ID=b");
        assert!(t.read("usr/lib/x/one").is_none());
        assert_eq!(t.list("usr/lib/x"), vec!["two"]);
        assert_eq!(t.list("opt/keep"), vec!["b"]);
        // A whiteout does not remove what its own layer writes.
        t.insert(2, "usr/lib/x/three", file("3"));
        t.whiteout(2, "usr/lib/x/three");
        assert!(t.exists("usr/lib/x/three"));
    }

    #[test]
    fn symbolic_links_resolve_inside_the_image() {
        let mut t = Tree::default();
        t.insert(0, "lib", Node::Symlink("usr/lib".into()));
        t.insert(0, "usr/lib/libc-2.28.so", file("elf"));
        t.insert(0, "usr/lib/libc.so.6", Node::Symlink("libc-2.28.so".into()));
        t.insert(
            0,
            "usr/bin/python3",
            Node::Symlink("/usr/bin/python3.11".into()),
        );
        t.insert(0, "usr/bin/python3.11", file(""));
        t.insert(
            0,
            "usr/lib/hard",
            Node::HardLink("usr/lib/libc-2.28.so".into()),
        );
        t.insert(0, "loop", Node::Symlink("loop".into()));
        assert_eq!(t.read("lib/libc.so.6").unwrap(), b"elf");
        assert_eq!(t.read("/usr/lib/hard").unwrap(), b"elf");
        assert!(t.exists("usr/bin/python3"));
        assert!(t.read("loop").is_none());
        assert_eq!(clean("./a/../b//c/"), "b/c");
    }
}
