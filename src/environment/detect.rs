//! Detecting the machine `thoth-rs config` runs on.
//!
//! Each probe has a pure parser over the text it reads, so it is tested on
//! real file contents; the I/O part reads below a configurable root so tests
//! can point it at a fake file system. Anything not detectable is `null`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::input::thoth_yaml::{Field, Hardware, OperatingSystem, RuntimeEnvironment, Text};

/// CPU facts from /proc/cpuinfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuInfo {
    /// `cpu family`.
    pub family: Option<i64>,
    /// `model`.
    pub model: Option<i64>,
    /// `model name`.
    pub model_name: Option<String>,
    /// Instruction-set flags relevant to optimised builds, sorted.
    pub flags: Vec<String>,
}

/// Where and how to probe.
#[derive(Debug, Clone)]
pub struct Probe {
    /// File-system root (`/` normally).
    pub root: PathBuf,
    /// Python interpreter to ask.
    pub python: String,
    /// Run external commands (`python3`, `nvidia-smi`, `nvcc`)?
    pub run_commands: bool,
}

impl Default for Probe {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/"),
            python: "python3".into(),
            run_commands: true,
        }
    }
}

/// `ID` and `VERSION_ID` from os-release text.
pub fn parse_os_release(text: &str) -> (Option<String>, Option<String>) {
    let mut id = None;
    let mut version = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value
            .trim()
            .trim_matches('"')
            .trim_matches('\'')
            .to_string();
        match key.trim() {
            "ID" => id = Some(value),
            "VERSION_ID" => version = Some(value),
            _ => {}
        }
    }
    (id, version)
}

fn is_interesting_flag(flag: &str) -> bool {
    flag.starts_with("avx")
        || flag.starts_with("amx")
        || flag.starts_with("sse4")
        || matches!(
            flag,
            "fma"
                | "f16c"
                | "ssse3"
                | "sse3"
                | "bmi1"
                | "bmi2"
                | "vnni"
                | "neon"
                | "asimd"
                | "sve"
                | "sve2"
        )
}

/// The first processor's facts from /proc/cpuinfo text.
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    for line in text.lines() {
        if line.trim().is_empty() && (info.family.is_some() || !info.flags.is_empty()) {
            break;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "cpu family" => info.family = value.parse().ok(),
            "model" => info.model = value.parse().ok(),
            "model name" => info.model_name = Some(value.to_string()),
            "flags" | "Features" => {
                info.flags = value
                    .split_whitespace()
                    .filter(|f| is_interesting_flag(f))
                    .map(str::to_string)
                    .collect();
                info.flags.sort();
                info.flags.dedup();
            }
            _ => {}
        }
    }
    info
}

/// CUDA version from `/usr/local/cuda/version.json` (CUDA ≥ 11.1).
pub fn parse_cuda_version_json(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let full = value.get("cuda")?.get("version")?.as_str()?;
    Some(major_minor(full))
}

/// CUDA version from `version.txt` ("CUDA Version 10.2.89") or `nvcc --version`
/// ("release 12.2, V12.2.140") or `nvidia-smi` ("CUDA Version: 12.4").
pub fn parse_cuda_version_text(text: &str) -> Option<String> {
    for marker in ["CUDA Version:", "CUDA Version", "release "] {
        if let Some(pos) = text.find(marker) {
            let rest = text[pos + marker.len()..].trim_start();
            let version: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            if !version.is_empty() {
                return Some(major_minor(&version));
            }
        }
    }
    None
}

/// cuDNN version from `cudnn_version.h` (or the older `cudnn.h`).
pub fn parse_cudnn_header(text: &str) -> Option<String> {
    let get = |name: &str| {
        text.lines().find_map(|line| {
            let rest = line.trim().strip_prefix("#define")?.trim_start();
            let value = rest.strip_prefix(name)?;
            if !value.starts_with(char::is_whitespace) {
                return None;
            }
            value.trim().parse::<u32>().ok()
        })
    };
    let major = get("CUDNN_MAJOR")?;
    let minor = get("CUDNN_MINOR")?;
    match get("CUDNN_PATCHLEVEL") {
        Some(patch) => Some(format!("{major}.{minor}.{patch}")),
        None => Some(format!("{major}.{minor}")),
    }
}

fn major_minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Probe {
    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(path.trim_start_matches('/'))).ok()
    }

    fn python_facts(&self) -> (Option<String>, Option<String>) {
        if !self.run_commands {
            return (None, None);
        }
        let script = "import sys, sysconfig; print('%d.%d' % sys.version_info[:2]); print(sysconfig.get_platform())";
        match run(&self.python, &["-c", script]) {
            Some(out) => {
                let mut lines = out.lines().map(|l| l.trim().to_string());
                (
                    lines.next().filter(|l| !l.is_empty()),
                    lines.next().filter(|l| !l.is_empty()),
                )
            }
            None => (None, None),
        }
    }

    fn cuda(&self) -> Option<String> {
        if let Some(v) = self
            .read("/usr/local/cuda/version.json")
            .as_deref()
            .and_then(parse_cuda_version_json)
        {
            return Some(v);
        }
        if let Some(v) = self
            .read("/usr/local/cuda/version.txt")
            .as_deref()
            .and_then(parse_cuda_version_text)
        {
            return Some(v);
        }
        if self.run_commands {
            if let Some(v) = run("nvcc", &["--version"])
                .as_deref()
                .and_then(parse_cuda_version_text)
            {
                return Some(v);
            }
            if let Some(v) = run("nvidia-smi", &[])
                .as_deref()
                .and_then(parse_cuda_version_text)
            {
                return Some(v);
            }
        }
        None
    }

    fn cudnn(&self) -> Option<String> {
        [
            "/usr/include/cudnn_version.h",
            "/usr/local/cuda/include/cudnn_version.h",
            "/usr/include/x86_64-linux-gnu/cudnn_version_v8.h",
            "/usr/include/x86_64-linux-gnu/cudnn_version_v9.h",
            "/usr/include/cudnn.h",
            "/usr/local/cuda/include/cudnn.h",
        ]
        .iter()
        .find_map(|p| self.read(p).as_deref().and_then(parse_cudnn_header))
    }

    fn gpu_model(&self) -> Option<String> {
        if !self.run_commands {
            return None;
        }
        let out = run("nvidia-smi", &["--query-gpu=name", "--format=csv,noheader"])?;
        out.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    }

    /// Detect the runtime environment of this machine.
    pub fn detect(&self) -> RuntimeEnvironment {
        let (os_name, os_version) = self
            .read("/etc/os-release")
            .or_else(|| self.read("/usr/lib/os-release"))
            .map(|t| parse_os_release(&t))
            .unwrap_or((None, None));
        let cpu = self
            .read("/proc/cpuinfo")
            .map(|t| parse_cpuinfo(&t))
            .unwrap_or_default();
        let (python_version, python_platform) = self.python_facts();
        let platform = python_platform.unwrap_or_else(default_platform);
        let name = environment_name(
            os_name.as_deref(),
            os_version.as_deref(),
            python_version.as_deref(),
        );
        RuntimeEnvironment {
            name: Field::Value(name),
            operating_system: Field::Value(OperatingSystem {
                name: Field::from_option(os_name.map(Text)),
                version: Field::from_option(os_version.map(Text)),
            }),
            hardware: Field::Value(Hardware {
                cpu_family: Field::from_option(cpu.family),
                cpu_model: Field::from_option(cpu.model),
                cpu_flags: Field::Value(cpu.flags),
                gpu_model: Field::from_option(self.gpu_model().map(Text)),
            }),
            python_version: Field::from_option(python_version.map(Text)),
            cuda_version: Field::from_option(self.cuda().map(Text)),
            cudnn_version: Field::from_option(self.cudnn().map(Text)),
            mkl_version: Field::Null,
            openblas_version: Field::Null,
            openmpi_version: Field::Null,
            base_image: Field::Null,
            base_image_mode: Field::Absent,
            platform: Field::Value(platform),
            recommendation_type: Field::Absent,
            labels: Field::Absent,
        }
    }
}

/// The platform of this build, in sysconfig spelling.
pub fn default_platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// A name such as `debian-12-py311` (only `[A-Za-z0-9_-]`).
pub fn environment_name(os: Option<&str>, version: Option<&str>, python: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(os) = os {
        parts.push(os.to_string());
    }
    if let Some(v) = version {
        parts.push(v.to_string());
    }
    if let Some(py) = python {
        parts.push(format!("py{}", py.replace('.', "")));
    }
    let joined = if parts.is_empty() {
        "default".to_string()
    } else {
        parts.join("-")
    };
    joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Root used by [`Probe`]; exists so tests can assert on a fake tree.
pub fn probe_at(root: &Path) -> Probe {
    Probe {
        root: root.to_path_buf(),
        python: "python3".into(),
        run_commands: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\nflags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni\n\nprocessor\t: 1\ncpu family\t: 6\n";

    #[test]
    fn cpuinfo_first_processor() {
        let cpu = parse_cpuinfo(CPUINFO);
        assert_eq!(cpu.family, Some(6));
        assert_eq!(cpu.model, Some(85));
        assert!(cpu.flags.contains(&"avx2".to_string()));
        assert!(cpu.flags.contains(&"avx512f".to_string()));
        assert!(!cpu.flags.contains(&"fpu".to_string()));
    }

    #[test]
    fn os_release_quotes() {
        let text = "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"8.6\"\n";
        assert_eq!(
            parse_os_release(text),
            (Some("rhel".into()), Some("8.6".into()))
        );
    }

    #[test]
    fn cuda_sources() {
        assert_eq!(
            parse_cuda_version_json(r#"{"cuda":{"name":"CUDA SDK","version":"11.8.0"}}"#),
            Some("11.8".into())
        );
        assert_eq!(
            parse_cuda_version_text("CUDA Version 10.2.89\n"),
            Some("10.2".into())
        );
        assert_eq!(
            parse_cuda_version_text(
                "nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 12.2, V12.2.140\n"
            ),
            Some("12.2".into())
        );
        assert_eq!(
            parse_cuda_version_text(
                "| NVIDIA-SMI 550.54.15  Driver Version: 550.54.15  CUDA Version: 12.4 |"
            ),
            Some("12.4".into())
        );
    }

    #[test]
    fn cudnn_header() {
        let text = "#define CUDNN_MAJOR 8\n#define CUDNN_MINOR 9\n#define CUDNN_PATCHLEVEL 2\n#define CUDNN_VERSION (CUDNN_MAJOR * 1000)\n";
        assert_eq!(parse_cudnn_header(text), Some("8.9.2".into()));
    }

    #[test]
    fn detect_on_fake_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::create_dir_all(root.join("usr/local/cuda")).unwrap();
        std::fs::write(root.join("etc/os-release"), "ID=fedora\nVERSION_ID=39\n").unwrap();
        std::fs::write(root.join("proc/cpuinfo"), CPUINFO).unwrap();
        std::fs::write(
            root.join("usr/local/cuda/version.json"),
            r#"{"cuda":{"version":"12.1.1"}}"#,
        )
        .unwrap();
        let env = probe_at(root).detect();
        assert_eq!(env.name, Field::Value("fedora-39".into()));
        assert_eq!(env.cuda_version, Field::Value(Text("12.1".into())));
        assert_eq!(env.cudnn_version, Field::Null);
        assert_eq!(env.python_version, Field::Null);
        let hw = env.hardware.value().unwrap();
        assert_eq!(hw.cpu_model, Field::Value(85));
        assert_eq!(hw.gpu_model, Field::Null);
    }
}
