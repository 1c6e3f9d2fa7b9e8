//! Reading `*.dist-info/METADATA` out of a wheel from byte ranges: the end of
//! central directory record, the central directory, then one local entry.
//! Used when an index has no PEP 658 `.metadata` file for a wheel.

use std::io::Read;

/// A window of the remote file.
#[derive(Debug, Clone)]
pub struct Window {
    /// Offset of `bytes[0]` in the file.
    pub offset: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Total file size.
    pub total: u64,
}

impl Window {
    fn slice(&self, start: u64, len: u64) -> Option<&[u8]> {
        let s = start.checked_sub(self.offset)? as usize;
        let e = s.checked_add(len as usize)?;
        self.bytes.get(s..e)
    }
}

/// Why a zip archive (a wheel, an OSV export) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    /// Shorter than an end-of-central-directory record.
    #[error("file too short for a zip archive")]
    TooShort,
    /// No end-of-central-directory record.
    #[error("no end-of-central-directory record (not a zip file?)")]
    NoEnd,
    /// Zip64 offsets.
    #[error("zip64 archives are not supported by the range reader")]
    Zip64,
    /// A central directory entry without its signature.
    #[error("corrupt central directory")]
    CorruptDirectory,
    /// A name running past the directory.
    #[error("truncated central directory")]
    TruncatedDirectory,
    /// No `*.dist-info/METADATA` member.
    #[error("no *.dist-info/METADATA in the wheel")]
    NoMetadata,
    /// A local header without its signature, or past the end.
    #[error("corrupt local file header")]
    CorruptLocalHeader,
    /// Deflate data that does not inflate.
    #[error("inflate: {0}")]
    Inflate(String),
    /// A member over [`INFLATE_CAP`].
    #[error("a member inflates to more than {INFLATE_CAP} bytes")]
    TooLarge,
    /// A compression method other than stored or deflate.
    #[error("unsupported zip compression method {0}")]
    Method(u64),
    /// A part the directory points to lies outside the file.
    #[error("{0} outside the file")]
    Outside(&'static str),
}

fn u16_at(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn u32_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

/// Where the central directory is: (offset, size).
pub fn find_central_directory(tail: &Window) -> Result<(u64, u64), ZipError> {
    let b = &tail.bytes;
    if b.len() < 22 {
        return Err(ZipError::TooShort);
    }
    let eocd = (0..=b.len() - 22)
        .rev()
        .find(|&i| b[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or(ZipError::NoEnd)?;
    let size = u32_at(b, eocd + 12);
    let offset = u32_at(b, eocd + 16);
    if offset == 0xFFFF_FFFF || size == 0xFFFF_FFFF {
        return Err(ZipError::Zip64);
    }
    Ok((offset, size))
}

/// One member of a zip archive, from its central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the archive.
    pub name: String,
    /// Offset of its local header.
    pub local: u64,
    /// Compressed size.
    pub compressed: u64,
    /// Compression method (0 stored, 8 deflate).
    pub method: u64,
}

/// Every member listed in a central directory.
pub fn entries(directory: &[u8]) -> Result<Vec<Entry>, ZipError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 46 <= directory.len() {
        if directory[i..i + 4] != [0x50, 0x4b, 0x01, 0x02] {
            return Err(ZipError::CorruptDirectory);
        }
        let name_len = u16_at(directory, i + 28) as usize;
        let extra_len = u16_at(directory, i + 30) as usize;
        let comment_len = u16_at(directory, i + 32) as usize;
        let name = directory
            .get(i + 46..i + 46 + name_len)
            .ok_or(ZipError::TruncatedDirectory)?;
        out.push(Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            local: u32_at(directory, i + 42),
            compressed: u32_at(directory, i + 20),
            method: u16_at(directory, i + 10),
        });
        i += 46 + name_len + extra_len + comment_len;
    }
    Ok(out)
}

/// Is `name` a wheel's `*.dist-info/METADATA`?
pub fn is_wheel_metadata(name: &str) -> bool {
    let mut parts = name.split('/');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(dir), Some("METADATA"), None) if dir.ends_with(".dist-info")
    )
}

/// The METADATA entry: (local header offset, compressed size, method).
pub fn find_metadata_entry(directory: &[u8]) -> Result<(u64, u64, u64), ZipError> {
    entries(directory)?
        .into_iter()
        .find(|e| is_wheel_metadata(&e.name))
        .map(|e| (e.local, e.compressed, e.method))
        .ok_or(ZipError::NoMetadata)
}

/// Byte range (start, length) needed from a local header to read its data,
/// given the 30-byte header.
pub fn local_data_range(
    header: &[u8],
    local_offset: u64,
    compressed: u64,
) -> Result<(u64, u64), ZipError> {
    if header.len() < 30 || header[..4] != [0x50, 0x4b, 0x03, 0x04] {
        return Err(ZipError::CorruptLocalHeader);
    }
    let name_len = u16_at(header, 26);
    let extra_len = u16_at(header, 28);
    local_offset
        .checked_add(30 + name_len + extra_len)
        .map(|start| (start, compressed))
        .ok_or(ZipError::CorruptLocalHeader)
}

/// Largest member inflated (16 MiB).
pub const INFLATE_CAP: u64 = 16 << 20;

/// Inflate (method 8) or copy (method 0) entry data, up to [`INFLATE_CAP`].
pub fn decompress(data: &[u8], method: u64) -> Result<String, ZipError> {
    let bytes = match method {
        0 => data.to_vec(),
        8 => {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(data)
                .take(INFLATE_CAP + 1)
                .read_to_end(&mut out)
                .map_err(|e| ZipError::Inflate(e.to_string()))?;
            if out.len() as u64 > INFLATE_CAP {
                return Err(ZipError::TooLarge);
            }
            out
        }
        other => return Err(ZipError::Method(other)),
    };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Extract METADATA from a complete wheel held in memory.
pub fn metadata_from_bytes(bytes: &[u8]) -> Result<String, ZipError> {
    let window = Window {
        offset: 0,
        bytes: bytes.to_vec(),
        total: bytes.len() as u64,
    };
    let (cd_offset, cd_size) = find_central_directory(&window)?;
    let directory = window
        .slice(cd_offset, cd_size)
        .ok_or(ZipError::Outside("central directory"))?;
    let (local, compressed, method) = find_metadata_entry(directory)?;
    let header = window
        .slice(local, 30)
        .ok_or(ZipError::Outside("local header"))?;
    let (start, len) = local_data_range(header, local, compressed)?;
    decompress(
        window
            .slice(start, len)
            .ok_or(ZipError::Outside("entry data"))?,
        method,
    )
}
