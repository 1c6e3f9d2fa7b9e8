//! Reading an image without a container runtime: an OCI image layout
//! directory, a `docker save` or OCI archive (tar, optionally gzip- or
//! zstd-compressed), or an unpacked root filesystem.
//!
//! Layers are streamed in order into a [`Tree`]; whiteouts (`.wh.NAME`) and
//! opaque directories (`.wh..wh..opq`) remove what lower layers wrote. Only
//! the files the analysis reads keep their contents; nothing is extracted to
//! disk (a compressed outer archive is decompressed once to a temporary file
//! so its members can be read in any order).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::tree::{DirRoot, MAX_TOTAL_KEPT, Node, Root, Tree, clean, kept_limit, wanted};

/// Most entries one image may have (all layers together).
const MAX_ENTRIES: usize = 5_000_000;

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ImageError {
    /// The image (or the file inside it) at fault.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

impl ImageError {
    pub(crate) fn new(path: impl std::fmt::Display, message: impl std::fmt::Display) -> Self {
        Self {
            path: path.to_string(),
            message: message.to_string(),
        }
    }
}

/// An image opened for analysis.
pub struct Loaded {
    /// Its merged root filesystem.
    pub root: Box<dyn Root>,
    /// `oci-layout`, `oci-archive`, `docker-archive` or `rootfs`.
    pub kind: &'static str,
    /// Name and tag recorded in the image, if any.
    pub reference: Option<String>,
    /// CPU architecture from the image configuration.
    pub architecture: Option<String>,
    /// Environment variables from the image configuration.
    pub env: BTreeMap<String, String>,
    /// Number of layers applied.
    pub layers: usize,
}

/// Where an image's blobs are read from.
trait Blobs {
    fn open(&self, name: &str) -> Result<Box<dyn Read + '_>, ImageError>;
    fn has(&self, name: &str) -> bool;
    fn label(&self) -> String;
}

struct DirBlobs(PathBuf);

impl Blobs for DirBlobs {
    fn open(&self, name: &str) -> Result<Box<dyn Read + '_>, ImageError> {
        let path = self.0.join(clean(name));
        let file = File::open(&path).map_err(|e| ImageError::new(path.display(), e))?;
        Ok(Box::new(file))
    }
    fn has(&self, name: &str) -> bool {
        self.0.join(clean(name)).is_file()
    }
    fn label(&self) -> String {
        self.0.display().to_string()
    }
}

/// Members of an uncompressed tar archive, read in place by offset.
struct TarBlobs {
    path: PathBuf,
    file: File,
    members: HashMap<String, (u64, u64)>,
}

impl TarBlobs {
    /// Index the archive open as `file` (`path` names it in messages).
    fn index(path: &Path, mut file: File) -> Result<Self, ImageError> {
        let err = |e: std::io::Error| ImageError::new(path.display(), e);
        file.seek(SeekFrom::Start(0)).map_err(err)?;
        let mut archive = tar::Archive::new(BufReader::new(&file));
        let mut members = HashMap::new();
        let mut links = Vec::new();
        // Seek over member data: indexing reads only the headers.
        for entry in archive.entries_with_seek().map_err(err)? {
            let entry = entry.map_err(err)?;
            let name = clean(&entry.path().map_err(err)?.to_string_lossy());
            match entry.header().entry_type() {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Some(target) = entry.link_name().map_err(err)? {
                        let target = target.to_string_lossy().to_string();
                        let base = name.rsplit_once('/').map_or("", |(p, _)| p);
                        let resolved = if entry.header().entry_type() == tar::EntryType::Link {
                            clean(&target)
                        } else {
                            clean(&format!("{base}/{target}"))
                        };
                        links.push((name, resolved));
                    }
                }
                _ => {
                    members.insert(name, (entry.raw_file_position(), entry.size()));
                }
            }
        }
        for (name, target) in links {
            if let Some(m) = members.get(&target).copied() {
                members.insert(name, m);
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            members,
        })
    }
}

/// A slice of a file read by position, so readers of different members
/// never share a file offset.
struct Slice<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for Slice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = read_at(self.file, &mut buf[..want], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, at)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, at)
}

impl Blobs for TarBlobs {
    fn open(&self, name: &str) -> Result<Box<dyn Read + '_>, ImageError> {
        let name = clean(name);
        let (offset, size) = *self.members.get(&name).ok_or_else(|| {
            ImageError::new(
                self.path.display(),
                format!("the archive has no member `{name}`"),
            )
        })?;
        Ok(Box::new(Slice {
            file: &self.file,
            at: offset,
            end: offset.saturating_add(size),
        }))
    }
    fn has(&self, name: &str) -> bool {
        self.members.contains_key(&clean(name))
    }
    fn label(&self) -> String {
        self.path.display().to_string()
    }
}

/// Wrap a stream in the decompressor its first bytes call for.
fn decompressed<'a>(reader: Box<dyn Read + 'a>) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let magic = buffered.fill_buf()?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?)
    } else {
        Box::new(buffered)
    })
}

fn json(blobs: &dyn Blobs, name: &str) -> Result<Value, ImageError> {
    let mut text = String::new();
    blobs
        .open(name)?
        .take(64 * 1024 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| ImageError::new(format!("{}: {name}", blobs.label()), e))?;
    serde_json::from_str(&text)
        .map_err(|e| ImageError::new(format!("{}: {name}", blobs.label()), e))
}

/// The blob path of `digest` (`alg:hex`), or `None` when it is not one.
fn digest_path(digest: &str) -> Option<String> {
    let (alg, hex) = digest.split_once(':')?;
    if alg.is_empty() || hex.is_empty() || !hex.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(format!("blobs/{alg}/{hex}"))
}

/// Config path, layer paths and reference of the image the blobs hold.
struct Plan {
    config: Option<String>,
    layers: Vec<String>,
    reference: Option<String>,
}

fn docker_plan(blobs: &dyn Blobs) -> Result<Plan, ImageError> {
    let manifest = json(blobs, "manifest.json")?;
    let at = |m: &str| ImageError::new(format!("{}: manifest.json", blobs.label()), m);
    let first = manifest
        .as_array()
        .and_then(|a| a.first())
        .ok_or_else(|| at("expected a list with one image"))?;
    let layers = first["Layers"]
        .as_array()
        .ok_or_else(|| at("`Layers` is missing"))?
        .iter()
        .map(|l| {
            l.as_str()
                .map(str::to_string)
                .ok_or_else(|| at("`Layers` holds a non-string"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan {
        config: first["Config"].as_str().map(str::to_string),
        layers,
        reference: first["RepoTags"]
            .as_array()
            .and_then(|t| t.first())
            .and_then(|t| t.as_str())
            .map(str::to_string),
    })
}

fn oci_plan(blobs: &dyn Blobs) -> Result<Plan, ImageError> {
    let index = json(blobs, "index.json")?;
    let at = |name: &str, m: &str| ImageError::new(format!("{}: {name}", blobs.label()), m);
    let blob_of = |digest: &str, name: &str| {
        digest_path(digest).ok_or_else(|| at(name, &format!("`{digest}` is not a digest")))
    };
    let mut descriptor = pick(&index).ok_or_else(|| at("index.json", "no manifests"))?;
    let mut reference = reference_of(&descriptor);
    for _ in 0..4 {
        let digest = descriptor["digest"]
            .as_str()
            .ok_or_else(|| at("index.json", "a manifest has no digest"))?;
        let path = blob_of(digest, "index.json")?;
        let doc = json(blobs, &path)?;
        if doc.get("manifests").is_some() {
            descriptor = pick(&doc).ok_or_else(|| at(&path, "an empty image index"))?;
            reference = reference.or_else(|| reference_of(&descriptor));
            continue;
        }
        let config = doc["config"]["digest"]
            .as_str()
            .map(|d| blob_of(d, &path))
            .transpose()?;
        let layers = doc["layers"]
            .as_array()
            .ok_or_else(|| at(&path, "`layers` is missing"))?
            .iter()
            .map(|l| {
                let digest = l["digest"]
                    .as_str()
                    .ok_or_else(|| at(&path, "a layer has no digest"))?;
                blob_of(digest, &path)
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Plan {
            config,
            layers,
            reference,
        });
    }
    Err(at("index.json", "image indexes nest too deeply"))
}

/// The linux/amd64 manifest of an index, else its first.
fn pick(index: &Value) -> Option<Value> {
    let manifests = index["manifests"].as_array()?;
    manifests
        .iter()
        .find(|m| {
            m["platform"]["os"].as_str() == Some("linux")
                && m["platform"]["architecture"].as_str() == Some("amd64")
        })
        .or_else(|| manifests.first())
        .cloned()
}

fn reference_of(descriptor: &Value) -> Option<String> {
    let a = &descriptor["annotations"];
    a["io.containerd.image.name"]
        .as_str()
        .or_else(|| a["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
}

/// Apply one layer on top of `tree`.
///
/// `kept` counts the bytes kept from every layer so far; past
/// [`MAX_TOTAL_KEPT`] the image is refused.
fn apply_layer(
    tree: &mut Tree,
    index: usize,
    reader: Box<dyn Read + '_>,
    label: &str,
    kept: &mut u64,
) -> Result<(), ImageError> {
    let err = |e: std::io::Error| ImageError::new(label, e);
    let mut archive = tar::Archive::new(decompressed(reader).map_err(err)?);
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let path = clean(&entry.path().map_err(err)?.to_string_lossy());
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        if name == ".wh..wh..opq" {
            tree.opaque(index, dir);
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let target = if dir.is_empty() {
                hidden.to_string()
            } else {
                format!("{dir}/{hidden}")
            };
            tree.whiteout(index, &target);
            continue;
        }
        let node = match entry.header().entry_type() {
            tar::EntryType::Directory => Node::Dir,
            tar::EntryType::Symlink => Node::Symlink(
                entry
                    .link_name()
                    .map_err(err)?
                    .map(|l| l.to_string_lossy().to_string())
                    .unwrap_or_default(),
            ),
            tar::EntryType::Link => Node::HardLink(
                entry
                    .link_name()
                    .map_err(err)?
                    .map(|l| clean(&l.to_string_lossy()))
                    .unwrap_or_default(),
            ),
            tar::EntryType::Regular | tar::EntryType::Continuous
                if wanted(&path) && entry.size() <= kept_limit(&path) =>
            {
                *kept += entry.size();
                if *kept > MAX_TOTAL_KEPT {
                    return Err(ImageError::new(
                        label,
                        format!(
                            "the files the analysis reads add up to more than {} MiB",
                            MAX_TOTAL_KEPT >> 20
                        ),
                    ));
                }
                let size = entry.size();
                let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                (&mut entry)
                    .take(size)
                    .read_to_end(&mut data)
                    .map_err(err)?;
                Node::File(Some(data))
            }
            _ => Node::File(None),
        };
        tree.insert(index, &path, node);
        if tree.len() > MAX_ENTRIES {
            return Err(ImageError::new(
                label,
                format!("more than {MAX_ENTRIES} entries"),
            ));
        }
    }
    Ok(())
}

fn load_blobs(
    blobs: &dyn Blobs,
    kind_oci: &'static str,
    kind_docker: &'static str,
) -> Result<Loaded, ImageError> {
    let (plan, kind) = if blobs.has("manifest.json") {
        (docker_plan(blobs)?, kind_docker)
    } else if blobs.has("index.json") {
        (oci_plan(blobs)?, kind_oci)
    } else {
        return Err(ImageError::new(
            blobs.label(),
            "neither an OCI image layout (index.json) nor a docker save archive (manifest.json)",
        ));
    };
    let mut architecture = None;
    let mut env = BTreeMap::new();
    if let Some(config) = &plan.config {
        let c = json(blobs, config)?;
        architecture = c["architecture"].as_str().map(str::to_string);
        for e in c["config"]["Env"].as_array().into_iter().flatten() {
            if let Some((k, v)) = e.as_str().and_then(|e| e.split_once('=')) {
                env.insert(k.to_string(), v.to_string());
            }
        }
    }
    let mut tree = Tree::default();
    let mut kept = 0;
    for (i, layer) in plan.layers.iter().enumerate() {
        let label = format!("{}: layer {} ({layer})", blobs.label(), i + 1);
        apply_layer(&mut tree, i, blobs.open(layer)?, &label, &mut kept)?;
    }
    Ok(Loaded {
        root: Box::new(tree),
        kind,
        reference: plan.reference,
        architecture,
        env,
        layers: plan.layers.len(),
    })
}

/// Open the image at `path`.
pub fn load(path: &Path) -> Result<Loaded, ImageError> {
    let meta = std::fs::metadata(path).map_err(|e| ImageError::new(path.display(), e))?;
    if meta.is_dir() {
        if path.join("index.json").is_file() || path.join("manifest.json").is_file() {
            return load_blobs(
                &DirBlobs(path.to_path_buf()),
                "oci-layout",
                "docker-archive",
            );
        }
        return Ok(Loaded {
            root: Box::new(DirRoot {
                root: path.to_path_buf(),
            }),
            kind: "rootfs",
            reference: None,
            architecture: None,
            env: BTreeMap::new(),
            layers: 0,
        });
    }
    // An archive. A compressed one is decompressed once to an anonymous
    // temporary file (it has no name, so no exit path, a kill included,
    // can leave it behind) so that its members can be read in any order.
    let err = |e: std::io::Error| ImageError::new(path.display(), e);
    let mut head = [0u8; 4];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(err)?;
    let compressed = head[..n].starts_with(&[0x1f, 0x8b]) || head[..n] == [0x28, 0xb5, 0x2f, 0xfd];
    if !compressed {
        let blobs = TarBlobs::index(path, File::open(path).map_err(err)?)?;
        return load_blobs(&blobs, "oci-archive", "docker-archive");
    }
    let limit = temp_limit();
    let mut reader = decompressed(Box::new(File::open(path).map_err(err)?)).map_err(err)?;
    let mut out = tempfile::tempfile().map_err(|e| {
        ImageError::new(
            path.display(),
            format!("cannot create a temporary file to decompress it: {e}"),
        )
    })?;
    let copied = std::io::copy(&mut (&mut reader).take(limit + 1), &mut out).map_err(err)?;
    if copied > limit {
        return Err(ImageError::new(
            path.display(),
            format!(
                "decompressed, it is larger than {} MiB of temporary space (THOTH_IMAGE_TMP_MAX, at most half the free space of the temporary directory); decompress it yourself or give the image as an OCI layout",
                limit >> 20
            ),
        ));
    }
    let blobs = TarBlobs::index(path, out)?;
    load_blobs(&blobs, "oci-archive", "docker-archive")
}

/// Temporary space one compressed archive may take when decompressed:
/// `THOTH_IMAGE_TMP_MAX` bytes (default 16 GiB), and never more than half
/// of what the temporary directory has free.
fn temp_limit() -> u64 {
    let configured = std::env::var("THOTH_IMAGE_TMP_MAX")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(16 << 30);
    configured.min(free_temp_space() / 2)
}

#[cfg(unix)]
fn free_temp_space() -> u64 {
    rustix::fs::statvfs(std::env::temp_dir())
        .map_or(u64::MAX, |s| s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
fn free_temp_space() -> u64 {
    u64::MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(files: &[(&str, usize)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, size) in files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(*size as u64);
            b.append_data(&mut h, path, vec![b'x'; *size].as_slice())
                .unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn kept_bytes_are_counted_across_layers_against_one_budget() {
        let mut tree = Tree::default();
        let mut kept = MAX_TOTAL_KEPT - (3 << 20);
        let first = layer(&[("a-1.dist-info/METADATA", 2 << 20), ("big.bin", 8 << 20)]);
        apply_layer(
            &mut tree,
            0,
            Box::new(first.as_slice()),
            "layer 1",
            &mut kept,
        )
        .unwrap();
        // Only the wanted file counted: 1 MiB of the budget left.
        assert_eq!(kept, MAX_TOTAL_KEPT - (1 << 20));
        let second = layer(&[("b-1.dist-info/METADATA", 2 << 20)]);
        let err = apply_layer(
            &mut tree,
            1,
            Box::new(second.as_slice()),
            "layer 2",
            &mut kept,
        )
        .unwrap_err();
        assert_eq!(err.path, "layer 2");
        assert!(err.message.contains("more than 1024 MiB"), "{err}");
    }
}
