//! The version definitions (`GLIBC_2.28`, `GLIBCXX_3.4.29`, …) a shared
//! object provides, read from its ELF `SHT_GNU_verdef` section.

/// Section type of GNU version definitions.
const SHT_GNU_VERDEF: u32 = 0x6fff_fffd;
/// A definition flagged as the object's own name (its soname), not a
/// version.
const VER_FLG_BASE: u16 = 1;

struct Reader<'a> {
    data: &'a [u8],
    little: bool,
    wide: bool,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        self.data.get(at..at.checked_add(N)?)?.try_into().ok()
    }
    fn u16(&self, at: usize) -> Option<u16> {
        let b = self.bytes::<2>(at)?;
        Some(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let b = self.bytes::<4>(at)?;
        Some(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }
    fn u64(&self, at: usize) -> Option<u64> {
        let b = self.bytes::<8>(at)?;
        Some(if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    }
    /// An address-sized field.
    fn addr(&self, at: usize) -> Option<usize> {
        if self.wide {
            usize::try_from(self.u64(at)?).ok()
        } else {
            usize::try_from(self.u32(at)?).ok()
        }
    }
    fn cstr(&self, at: usize) -> Option<String> {
        let rest = self.data.get(at..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        String::from_utf8(rest[..end].to_vec()).ok()
    }
}

/// Section (type, offset, size, link).
fn sections(r: &Reader) -> Option<Vec<(u32, usize, usize, u32)>> {
    let (shoff, shentsize, shnum) = if r.wide {
        (
            r.addr(0x28)?,
            usize::from(r.u16(0x3a)?),
            usize::from(r.u16(0x3c)?),
        )
    } else {
        (
            r.addr(0x20)?,
            usize::from(r.u16(0x2e)?),
            usize::from(r.u16(0x30)?),
        )
    };
    let mut out = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let field = |off: usize| at.saturating_add(off);
        let kind = r.u32(field(4))?;
        let (offset, size, link) = if r.wide {
            (
                r.addr(field(0x18))?,
                r.addr(field(0x20))?,
                r.u32(field(0x28))?,
            )
        } else {
            (
                r.addr(field(0x10))?,
                r.addr(field(0x14))?,
                r.u32(field(0x18))?,
            )
        };
        out.push((kind, offset, size, link));
    }
    Some(out)
}

/// The version names an ELF shared object defines, sorted; empty when
/// `data` is not ELF or defines none.
pub fn version_definitions(data: &[u8]) -> Vec<String> {
    if !data.starts_with(b"\x7fELF") || data.len() < 0x40 {
        return Vec::new();
    }
    let r = Reader {
        data,
        wide: data[4] == 2,
        little: data[5] == 1,
    };
    let mut out = Vec::new();
    let Some(sections) = sections(&r) else {
        return out;
    };
    for &(kind, offset, size, link) in &sections {
        if kind != SHT_GNU_VERDEF {
            continue;
        }
        let Some(&(_, strtab, _, _)) = usize::try_from(link).ok().and_then(|l| sections.get(l))
        else {
            continue;
        };
        let end = offset.saturating_add(size);
        let mut at = offset;
        // Bounded by the section size; each entry is at least 20 bytes.
        for _ in 0..(size / 20 + 1) {
            if at.saturating_add(20) > end {
                break;
            }
            let (Some(flags), Some(aux), Some(next)) =
                (r.u16(at + 2), r.u32(at + 12), r.u32(at + 16))
            else {
                break;
            };
            if flags & VER_FLG_BASE == 0
                && let Some(name_off) = r.u32(at.saturating_add(aux as usize))
                && let Some(name) = r.cstr(strtab.saturating_add(name_off as usize))
            {
                out.push(name);
            }
            if next == 0 {
                break;
            }
            at = at.saturating_add(next as usize);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The highest `GLIBC_X.Y` among `symbols`, as `X.Y`.
pub fn highest_glibc<'a>(symbols: impl IntoIterator<Item = &'a String>) -> Option<String> {
    symbols
        .into_iter()
        .filter_map(|s| s.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.');
            let major = parts.next()?.parse::<u32>().ok()?;
            let minor = parts.next().map_or(Some(0), |m| m.parse::<u32>().ok())?;
            Some((major, minor))
        })
        .max()
        .map(|(a, b)| format!("{a}.{b}"))
}

/// A minimal 64-bit little-endian shared object defining `versions`
/// (after its soname), for tests.
pub fn build_test_object(soname: &str, versions: &[&str]) -> Vec<u8> {
    // Layout: ELF header (64) | strtab | verdef | section headers.
    let mut strtab = vec![0u8];
    let mut names = Vec::new();
    for n in std::iter::once(soname).chain(versions.iter().copied()) {
        names.push(strtab.len() as u32);
        strtab.extend_from_slice(n.as_bytes());
        strtab.push(0);
    }
    let strtab_off = 64usize;
    let verdef_off = strtab_off + strtab.len();
    let mut verdef = Vec::new();
    let count = names.len();
    for (i, name) in names.iter().enumerate() {
        let flags: u16 = if i == 0 { VER_FLG_BASE } else { 0 };
        verdef.extend_from_slice(&1u16.to_le_bytes());
        verdef.extend_from_slice(&flags.to_le_bytes());
        verdef.extend_from_slice(&(i as u16 + 1).to_le_bytes());
        verdef.extend_from_slice(&1u16.to_le_bytes());
        verdef.extend_from_slice(&0u32.to_le_bytes());
        verdef.extend_from_slice(&20u32.to_le_bytes());
        let next: u32 = if i + 1 == count { 0 } else { 28 };
        verdef.extend_from_slice(&next.to_le_bytes());
        verdef.extend_from_slice(&name.to_le_bytes());
        verdef.extend_from_slice(&0u32.to_le_bytes());
    }
    let sh_off = verdef_off + verdef.len();
    let mut out = vec![0u8; 64];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2;
    out[5] = 1;
    out[6] = 1;
    out[0x10..0x12].copy_from_slice(&3u16.to_le_bytes());
    out[0x28..0x30].copy_from_slice(&(sh_off as u64).to_le_bytes());
    out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    out[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
    out.extend_from_slice(&strtab);
    out.extend_from_slice(&verdef);
    let section = |kind: u32, offset: usize, size: usize, link: u32| {
        let mut s = vec![0u8; 64];
        s[4..8].copy_from_slice(&kind.to_le_bytes());
        s[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
        s[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
        s[0x28..0x2c].copy_from_slice(&link.to_le_bytes());
        s
    };
    out.extend(section(0, 0, 0, 0));
    out.extend(section(3, strtab_off, strtab.len(), 0));
    out.extend(section(SHT_GNU_VERDEF, verdef_off, verdef.len(), 1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_definitions_and_skips_the_soname() {
        let so = build_test_object("libc.so.6", &["GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.28"]);
        let v = version_definitions(&so);
        assert_eq!(v, vec!["GLIBC_2.17", "GLIBC_2.2.5", "GLIBC_2.28"]);
        assert_eq!(highest_glibc(&v).as_deref(), Some("2.28"));
    }

    #[test]
    fn garbage_and_truncation_give_nothing() {
        assert!(version_definitions(b"not elf").is_empty());
        let so = build_test_object("libc.so.6", &["GLIBC_2.17"]);
        for cut in [10, 64, 80, so.len() - 1] {
            let _ = version_definitions(&so[..cut]);
        }
        let mut bad = so.clone();
        bad[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(version_definitions(&bad).is_empty());
    }

    #[test]
    fn the_hosts_c_library_if_present() {
        for p in [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
            "/usr/lib64/libc.so.6",
        ] {
            if let Ok(data) = std::fs::read(p) {
                let v = version_definitions(&data);
                assert!(v.iter().any(|s| s == "GLIBC_2.2.5"), "{p}: {v:?}");
                return;
            }
        }
    }
}
