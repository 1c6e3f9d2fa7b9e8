//! Container images: the tests build small images themselves (an OCI image
//! layout with gzip layers, a `docker save` archive, an unpacked root
//! filesystem), analyse them, and resolve on top of them with the bundled
//! snapshot. No network, no container runtime.

mod common;

use std::path::{Path, PathBuf};

use common::bundled::{bundled_kb, lock_versions_of, project_with, roots_of, target_of};
use common::checker::check;
use common::{json_ok, thoth};
use sha2::{Digest, Sha256};
use thoth_rs::image::elf::build_test_object;
use thoth_rs::image::rpmdb::{RpmPackage, build_header};

/// One entry of a test layer.
enum E {
    File(&'static str, Vec<u8>),
    Dir(&'static str),
    Link(&'static str, &'static str),
}

fn text(path: &'static str, body: &str) -> E {
    E::File(path, body.as_bytes().to_vec())
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        match e {
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, data.as_slice()).unwrap();
            }
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn put_blob(dir: &Path, data: &[u8]) -> (String, usize) {
    let hex = hex::encode(Sha256::digest(data));
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&hex), data).unwrap();
    (format!("sha256:{hex}"), data.len())
}

fn config_json(env: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap()
}

/// Write an OCI image layout with gzip-compressed layers.
fn oci_layout(dir: &Path, name: &str, env: &[&str], layers: &[Vec<u8>]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let (config, config_size) = put_blob(dir, &config_json(env));
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|l| {
            let (d, size) = put_blob(dir, &gzip(l));
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": size})
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": layer_descs,
    }))
    .unwrap();
    let (m, m_size) = put_blob(dir, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m, "size": m_size,
            "platform": {"os": "linux", "architecture": "amd64"},
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(':').next().unwrap()},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Write a `docker save` archive with uncompressed layers.
fn docker_archive(path: &Path, name: &str, env: &[&str], layers: &[Vec<u8>]) {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |p: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, p, data).unwrap();
    };
    let config = config_json(env);
    let config_name = format!("{}.json", hex::encode(Sha256::digest(&config)));
    add(&config_name, &config);
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("layer{i}/layer.tar");
        add(&n, l);
        names.push(n);
    }
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": [name], "Layers": names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    std::fs::write(path, b.into_inner().unwrap()).unwrap();
}

fn dist_info(site: &'static str, name: &str, version: &str) -> E {
    let path: &'static str =
        Box::leak(format!("{site}/{name}-{version}.dist-info/METADATA").into_boxed_str());
    text(
        path,
        &format!(
            "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test\n\nlong description\n"
        ),
    )
}

const SITE: &str = "usr/local/lib/python3.11/site-packages";

/// A Debian 12 image with Python 3.11 and a few packages; the second layer
/// removes idna (whiteout), replaces /usr/share/doc (opaque) and adds six.
fn debian_layers() -> Vec<Vec<u8>> {
    let glibc: Vec<String> = ["2.2.5", "2.17", "2.28", "2.34", "2.36"]
        .iter()
        .map(|v| format!("GLIBC_{v}"))
        .collect();
    let glibc: Vec<&str> = glibc.iter().map(String::as_str).collect();
    let first = layer(&[
        E::Dir("etc"),
        text(
            "etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        ),
        text(
            "var/lib/dpkg/status",
            "Package: git\nStatus: install ok installed\nVersion: 1:2.39.2-1.1\nArchitecture: amd64\nDescription: fast\n version control\n\n\
             Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\nArchitecture: amd64\n\n\
             Package: vim\nStatus: deinstall ok config-files\nVersion: 2:9.0.1378-2\nArchitecture: amd64\n",
        ),
        E::File(
            "usr/lib/x86_64-linux-gnu/libc-2.36.so",
            build_test_object("libc.so.6", &glibc),
        ),
        E::Link("usr/lib/x86_64-linux-gnu/libc.so.6", "libc-2.36.so"),
        E::File(
            "usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30",
            build_test_object(
                "libstdc++.so.6",
                &["GLIBCXX_3.4", "GLIBCXX_3.4.30", "CXXABI_1.3"],
            ),
        ),
        E::Link(
            "usr/lib/x86_64-linux-gnu/libstdc++.so.6",
            "libstdc++.so.6.0.30",
        ),
        E::Link("lib", "usr/lib"),
        E::File("usr/local/bin/python3.11", vec![0x7f, b'E', b'L', b'F']),
        E::Link("usr/local/bin/python3", "python3.11"),
        E::File("usr/local/bin/python3.11-config", Vec::new()),
        dist_info(SITE, "urllib3", "1.26.20"),
        dist_info(SITE, "certifi", "2024.8.30"),
        dist_info(SITE, "idna", "3.4"),
        dist_info(SITE, "Not_In_Snapshot", "0.1"),
        text(
            "usr/local/lib/python3.11/site-packages/chardet-3.0.4-py3.11.egg-info",
            "Metadata-Version: 1.1\nName: chardet\nVersion: 3.0.4\n",
        ),
        text("usr/share/doc/old/README", "old"),
        text(
            "usr/local/cuda/version.json",
            r#"{"cuda": {"name": "CUDA SDK", "version": "12.2.2"}}"#,
        ),
        text(
            "usr/include/cudnn_version.h",
            "#define CUDNN_MAJOR 8\n#define CUDNN_MINOR 9\n#define CUDNN_PATCHLEVEL 4\n",
        ),
    ]);
    let second = layer(&[
        text(
            "usr/local/lib/python3.11/site-packages/.wh.idna-3.4.dist-info",
            "",
        ),
        text("usr/share/doc/.wh..wh..opq", ""),
        text("usr/share/doc/new/README", "new"),
        dist_info(SITE, "six", "1.16.0"),
    ]);
    vec![first, second]
}

const DEBIAN: &str = "registry.test/team/debian-py:12";

fn debian_image(dir: &Path) -> PathBuf {
    let path = dir.join("debian-oci");
    oci_layout(
        &path,
        DEBIAN,
        &["PATH=/usr/local/bin:/usr/bin", "PYTHON_VERSION=3.11.4"],
        &debian_layers(),
    );
    path
}

fn inspect(path: &Path) -> serde_json::Value {
    json_ok(thoth().args(["image", "inspect", "--json"]).arg(path))
}

fn names(v: &serde_json::Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap(),
                p[key].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn an_oci_layout_is_analysed_with_whiteouts_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let a = inspect(&debian_image(tmp.path()));
    assert_eq!(a["kind"], "oci-layout");
    assert_eq!(a["reference"], DEBIAN);
    assert_eq!(a["layers"], 2);
    assert_eq!(a["architecture"], "amd64");
    assert_eq!(a["os"]["id"], "debian");
    assert_eq!(a["os"]["version_id"], "12");
    // Only installed deb packages (vim has only its configuration left).
    assert_eq!(
        names(&a["deb_packages"], "version"),
        vec!["git 1:2.39.2-1.1", "libc6 2.36-9"]
    );
    assert_eq!(a["rpm"]["readable"], true);
    assert!(a["rpm"]["packages"].as_array().unwrap().is_empty());
    // python3.11-config is not an interpreter; the full version comes from
    // the image's PYTHON_VERSION.
    let pythons = a["python_interpreters"].as_array().unwrap();
    assert_eq!(pythons.len(), 1, "{pythons:?}");
    assert_eq!(pythons[0]["path"], "/usr/local/bin/python3.11");
    assert_eq!(pythons[0]["full_version"], "3.11.4");
    // idna was removed by the second layer's whiteout; six came with it.
    assert_eq!(
        names(&a["python_packages"], "version"),
        vec![
            "certifi 2024.8.30",
            "chardet 3.0.4",
            "not-in-snapshot 0.1",
            "six 1.16.0",
            "urllib3 1.26.20",
        ]
    );
    for p in a["python_packages"].as_array().unwrap() {
        assert_eq!(p["location"], format!("/{SITE}"));
    }
    // Version definitions through the libc.so.6 → libc-2.36.so link, the
    // soname left out.
    let abi: Vec<&str> = a["abi"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for s in ["GLIBC_2.17", "GLIBC_2.36", "GLIBCXX_3.4.30", "CXXABI_1.3"] {
        assert!(abi.contains(&s), "{s} missing from {abi:?}");
    }
    assert!(!abi.contains(&"libc.so.6"));
    assert_eq!(a["glibc"], "2.36");
    assert_eq!(a["cuda_version"], "12.2");
    assert_eq!(a["cudnn_version"], "8.9.4");

    // The human summary says the same.
    let out = thoth()
        .args(["image", "inspect"])
        .arg(tmp.path().join("debian-oci"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(
        summary.contains("Debian GNU/Linux 12 (bookworm)"),
        "{summary}"
    );
    assert!(
        summary.contains("5 in /usr/local/lib/python3.11/site-packages"),
        "{summary}"
    );
    assert!(summary.contains("glibc              2.36"), "{summary}");
}

#[test]
fn docker_archives_and_root_filesystems_give_the_same_analysis() {
    let tmp = tempfile::tempdir().unwrap();
    let oci = inspect(&debian_image(tmp.path()));
    let archive = tmp.path().join("debian.tar");
    docker_archive(
        &archive,
        DEBIAN,
        &["PYTHON_VERSION=3.11.4"],
        &debian_layers(),
    );
    let docker = inspect(&archive);
    assert_eq!(docker["kind"], "docker-archive");
    assert_eq!(docker["reference"], DEBIAN);
    // The same archive compressed.
    let gz = tmp.path().join("debian.tar.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&archive).unwrap())).unwrap();
    let compressed = inspect(&gz);
    // An unpacked root filesystem: the layers extracted in order by tar
    // semantics, whiteouts applied by hand.
    let rootfs = tmp.path().join("rootfs");
    for l in debian_layers() {
        tar::Archive::new(l.as_slice()).unpack(&rootfs).unwrap();
    }
    std::fs::remove_dir_all(rootfs.join(SITE).join("idna-3.4.dist-info")).unwrap();
    std::fs::remove_file(rootfs.join(SITE).join(".wh.idna-3.4.dist-info")).unwrap();
    let fs = json_ok(thoth().args(["image", "inspect", "--json"]).arg(&rootfs));
    assert_eq!(fs["kind"], "rootfs");
    for key in [
        "os",
        "deb_packages",
        "python_packages",
        "abi",
        "glibc",
        "cuda_version",
        "cudnn_version",
        "rpm",
    ] {
        assert_eq!(oci[key], docker[key], "{key}: OCI layout vs docker archive");
        assert_eq!(oci[key], compressed[key], "{key}: plain vs gzip archive");
        assert_eq!(oci[key], fs[key], "{key}: OCI layout vs root filesystem");
    }
}

fn rhel_image(dir: &Path, name: &str, rpms: &[&str], glibc_max: &str) -> PathBuf {
    let db = dir.join(format!("{}.sqlite", name.replace(['/', ':'], "_")));
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);",
    )
    .unwrap();
    for n in rpms {
        let p = RpmPackage {
            name: (*n).to_string(),
            epoch: None,
            version: "1.0".into(),
            release: "1.el9".into(),
            arch: Some("x86_64".into()),
            src: None,
            python_metadata: Vec::new(),
        };
        conn.execute(
            "INSERT INTO Packages (blob) VALUES (?1)",
            [build_header(&p)],
        )
        .unwrap();
    }
    drop(conn);
    let glibc: Vec<String> = ["2.2.5", "2.17", glibc_max]
        .iter()
        .map(|v| format!("GLIBC_{v}"))
        .collect();
    let glibc: Vec<&str> = glibc.iter().map(String::as_str).collect();
    let layers = vec![layer(&[
        text(
            "etc/os-release",
            "ID=\"rhel\"\nVERSION_ID=\"9.2\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.2\"\n",
        ),
        E::File("var/lib/rpm/rpmdb.sqlite", std::fs::read(&db).unwrap()),
        E::File(
            "usr/lib64/libc.so.6",
            build_test_object("libc.so.6", &glibc),
        ),
        E::Link("lib64", "usr/lib64"),
        E::File("usr/bin/python3.11", Vec::new()),
    ])];
    let path = dir.join(format!("{}.tar", name.replace(['/', ':'], "_")));
    docker_archive(&path, name, &[], &layers);
    path
}

#[test]
fn rpm_databases_are_read_without_rpm() {
    let tmp = tempfile::tempdir().unwrap();
    let a = inspect(&rhel_image(
        tmp.path(),
        "rhel/base:9",
        &["git-core", "bash"],
        "2.34",
    ));
    assert_eq!(a["rpm"]["database"], "/var/lib/rpm/rpmdb.sqlite");
    assert_eq!(a["rpm"]["readable"], true);
    assert_eq!(
        names(&a["rpm"]["packages"], "version"),
        vec!["bash 1.0", "git-core 1.0"]
    );
    assert_eq!(a["glibc"], "2.34");
    // A Berkeley DB database is named, not guessed at.
    let rootfs = tmp.path().join("rhel8");
    std::fs::create_dir_all(rootfs.join("var/lib/rpm")).unwrap();
    std::fs::write(rootfs.join("var/lib/rpm/Packages"), b"\0\x06\x15\x61").unwrap();
    let old = inspect(&rootfs);
    assert_eq!(old["rpm"]["readable"], false);
    assert!(old["rpm"]["note"].as_str().unwrap().contains("Berkeley DB"));
}

#[test]
fn broken_images_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.tar");
    std::fs::write(&bad, b"this is not a tar archive at all, just text").unwrap();
    let missing = tmp.path().join("empty-archive.tar");
    std::fs::write(
        &missing,
        tar::Builder::new(Vec::new()).into_inner().unwrap(),
    )
    .unwrap();
    let layout = tmp.path().join("oci");
    std::fs::create_dir_all(&layout).unwrap();
    std::fs::write(
        layout.join("index.json"),
        b"{\"manifests\": [{\"digest\": \"sha256:../../etc\"}]}",
    )
    .unwrap();
    for (path, needle) in [
        (bad.clone(), "bad.tar"),
        (missing.clone(), "neither an OCI image layout"),
        (layout.clone(), "is not a digest"),
        (tmp.path().join("nope"), "nope"),
    ] {
        let out = thoth()
            .args(["image", "inspect"])
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", path.display());
        assert!(err.contains(needle), "{}: {err}", path.display());
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `image inspect PATH --save NAME` into the data directory `data`.
fn save_image(data: &Path, path: &Path, name: &str) {
    let out = thoth()
        .env("THOTH_DATA_DIR", data)
        .args(["image", "inspect", "--save", name])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `advise --json` with `args`, returning (exit code, report, lock).
fn advise_on(dir: &Path, data: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let lock = dir.join("out.lock");
    let _ = std::fs::remove_file(&lock);
    let out = thoth()
        .env("THOTH_DATA_DIR", data)
        .arg("-C")
        .arg(dir)
        .args(["advise", "--json", "--format", "pipfile-lock", "-o"])
        .arg(&lock)
        .args(args)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let code = out.status.code().unwrap_or(-1);
    (code, report, std::fs::read_to_string(&lock).unwrap_or(err))
}

#[test]
fn advise_keeps_what_the_image_has_and_explains_conflicts_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let image = debian_image(tmp.path());
    let data = tmp.path().join("data");
    // Save the analysis under a name; advise finds it offline by that name.
    save_image(&data, &image, "team/debian-py:12");

    let project = project_with("requests\n");
    let (code, report, lock) = advise_on(
        project.path(),
        &data,
        &["--base-image", "team/debian-py:12"],
    );
    assert_eq!(code, 0, "{lock}");
    let env = &report["inputs"]["environment"];
    assert_eq!(env["base_image"], "team/debian-py:12");
    assert_eq!(env["os_name"], "debian");
    assert_eq!(env["os_version"], "12");
    assert_eq!(env["python_full_version"], "3.11.4");
    assert_eq!(env["glibc"], "2.36");
    assert_eq!(env["cuda_version"], "12.2");
    let lock: serde_json::Value = serde_json::from_str(&lock).unwrap();
    let versions = lock_versions_of(&lock);
    // The image's urllib3 and certifi are kept; idna, whited out of the
    // image, is the newest; six is not needed and not added.
    assert_eq!(versions["urllib3"], "1.26.20");
    assert_eq!(versions["certifi"], "2024.8.30");
    assert_eq!(versions["idna"], "3.20");
    assert!(!versions.contains_key("six"));
    let notes: Vec<&str> = report["products"][0]["justification"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["message"].as_str())
        .collect();
    assert!(
        notes.iter().any(|m| m.starts_with(
            "urllib3 1.26.20 comes from the base image (/usr/local/lib/python3.11/site-packages)"
        )),
        "{notes:?}"
    );
    assert!(!notes.iter().any(|m| m.starts_with("idna")), "{notes:?}");
    // The lock is a valid stack for the image's target.
    let kb = bundled_kb(&report);
    let problems = check(
        &kb,
        &target_of(&report),
        &roots_of(&report, false),
        &versions,
    );
    assert!(problems.is_empty(), "{problems:?}");

    // Without the image: urllib3 2.x.
    let (code, _, plain) = advise_on(project.path(), &data, &[]);
    assert_eq!(code, 0);
    let plain: serde_json::Value = serde_json::from_str(&plain).unwrap();
    assert!(lock_versions_of(&plain)["urllib3"].starts_with("2."));

    // A requirement the image's package cannot meet: a conflict naming it.
    let conflicting = project_with("requests\nurllib3>=2\n");
    let (code, report, _) = advise_on(
        conflicting.path(),
        &data,
        &["--base-image", "team/debian-py:12"],
    );
    assert_eq!(code, 1);
    let text = report.to_string();
    assert!(
        text.contains("installed in base image team/debian-py:12"),
        "{text}"
    );
    assert!(text.contains("urllib3"), "{text}");

    // The image path works directly too, and an unknown name is an error.
    let (code, report, _) = advise_on(
        project.path(),
        &data,
        &["--base-image", image.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    assert_eq!(report["inputs"]["environment"]["base_image"], DEBIAN);
    let (code, _, err) = advise_on(project.path(), &data, &["--base-image", "no/such:image"]);
    assert_eq!(code, 2);
    assert!(err.contains("no saved analysis"), "{err}");
}

#[test]
fn base_image_in_thoth_yaml_selects_prescriptions_on_the_images_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    save_image(
        &data,
        &rhel_image(tmp.path(), "ubi/no-git:9", &["bash"], "2.34"),
        "ubi/no-git:9",
    );
    save_image(
        &data,
        &rhel_image(tmp.path(), "ubi/git:9", &["bash", "git"], "2.34"),
        "ubi/git:9",
    );
    save_image(&data, &debian_image(tmp.path()), "debian-py:12");
    // A unit of our own that needs a Python package and a C++ ABI symbol in
    // the image.
    let units = tmp.path().join("units");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(
        units.join("image.yaml"),
        "units:\n  boots:\n  - name: ImageHasSixAndModernLibstdcxx\n    type: boot\n    should_include:\n      adviser_pipeline: true\n      runtime_environments:\n        python_packages:\n        - name: six\n          version: '>=1.16'\n          location: /usr/local/lib/python3.11/site-packages\n        abi:\n        - GLIBCXX_3.4.30\n    match:\n      package_name: gitpython\n    run:\n      stack_info:\n      - type: ERROR\n        message: image has six and GLIBCXX_3.4.30\n        link: https://example.test/units\n",
    )
    .unwrap();
    let errors = |image: &str| {
        let project = project_with("gitpython\n");
        std::fs::write(
            project.path().join(".thoth.yaml"),
            format!("runtime_environments:\n- name: app\n  base_image: {image}\n"),
        )
        .unwrap();
        let (code, report, lock) = advise_on(
            project.path(),
            &data,
            &["--prescriptions", units.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{lock}");
        let os = report["inputs"]["environment"]["os_name"].as_str().unwrap();
        assert!(os == "rhel" || os == "debian", "{os}");
        report["stack_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == "ERROR")
            .map(|m| m["message"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let without = errors("ubi/no-git:9");
    assert!(
        without
            .iter()
            .any(|m| m.contains("GitPython calls the git executable")),
        "{without:?}"
    );
    assert!(
        !without.iter().any(|m| m.contains("image has six")),
        "{without:?}"
    );
    assert!(errors("ubi/git:9").is_empty());
    // On a Debian image the deb package counts; it has six and the symbol.
    assert_eq!(
        errors("debian-py:12"),
        vec!["image has six and GLIBCXX_3.4.30"]
    );
}

#[test]
fn wheels_needing_a_newer_glibc_than_the_images_are_not_candidates() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let old = rhel_image(tmp.path(), "centos:7", &["bash"], "2.17");
    let project = project_with("tbb\n");
    let (code, report, lock) = advise_on(
        project.path(),
        &data,
        &["--base-image", old.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{lock}");
    assert_eq!(report["inputs"]["environment"]["glibc"], "2.17");
    let on_old = lock_versions_of(&serde_json::from_str(&lock).unwrap())["tbb"].clone();
    let (code, _, lock) = advise_on(project.path(), &data, &[]);
    assert_eq!(code, 0);
    let plain = lock_versions_of(&serde_json::from_str(&lock).unwrap())["tbb"].clone();
    assert_ne!(on_old, plain);
    // The release chosen on glibc 2.17 has a wheel for it; the newer one
    // the plain run picks has none.
    let kb = bundled_kb(&report);
    let wheels = |v: &str| -> Vec<String> {
        let Ok(thoth_rs::kb::Lookup::Found(record)) =
            thoth_rs::kb::KnowledgeBase::project(&kb, "tbb")
        else {
            panic!("tbb missing");
        };
        let r = record
            .releases
            .iter()
            .find(|r| r.version.to_string() == v)
            .unwrap();
        r.distributions.iter().map(|d| d.filename.clone()).collect()
    };
    let fits = |f: &String| {
        f.contains("manylinux1_x86_64")
            || f.contains("manylinux2010_x86_64")
            || f.contains("manylinux2014_x86_64")
            || f.contains("manylinux_2_17_x86_64")
            || f.contains("manylinux_2_5_x86_64")
            || f.contains("manylinux_2_12_x86_64")
    };
    assert!(
        wheels(&on_old).iter().any(fits),
        "{on_old}: {:?}",
        wheels(&on_old)
    );
    assert!(
        !wheels(&plain).iter().any(fits),
        "{plain}: {:?}",
        wheels(&plain)
    );
}

/// A Debian 12 base as debootstrap makes it, in miniature but with the
/// real layout: merged /usr (`/bin`, `/lib`, `/lib64`, `/sbin` are links
/// into `/usr`), Python 3.11 marked `EXTERNALLY-MANAGED` (PEP 668), and
/// Debian's own python3-requests, -charset-normalizer, -urllib3, -idna,
/// -certifi and -yaml with their metadata as Debian installs it (egg-info
/// with `requires.txt`, dist-info), dpkg's file lists, and git.
fn debian_merged_usr_layers() -> Vec<Vec<u8>> {
    let dist = "usr/lib/python3/dist-packages";
    let glibc: Vec<String> = ["2.2.5", "2.17", "2.28", "2.34", "2.36"]
        .iter()
        .map(|v| format!("GLIBC_{v}"))
        .collect();
    let glibc: Vec<&str> = glibc.iter().map(String::as_str).collect();
    let debs = [
        ("git", "1:2.39.5-0+deb12u3"),
        ("libc6", "2.36-9+deb12u13"),
        ("python3.11-minimal", "3.11.2-6+deb12u8"),
        ("python3-certifi", "2022.9.24-1"),
        ("python3-charset-normalizer", "3.0.1-2"),
        ("python3-idna", "3.3-1+deb12u1"),
        ("python3-requests", "2.28.1+dfsg-1"),
        ("python3-urllib3", "1.26.12-1+deb12u4"),
        ("python3-yaml", "6.0-3+b2"),
    ];
    let status: String = debs
        .iter()
        .map(|(n, v)| {
            format!(
                "Package: {n}\nStatus: install ok installed\nVersion: {v}\nArchitecture: amd64\n\n"
            )
        })
        .collect();
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut entries = vec![
        E::Link("bin", "usr/bin"),
        E::Link("lib", "usr/lib"),
        E::Link("lib64", "usr/lib64"),
        E::Link("sbin", "usr/sbin"),
        text(
            "etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        ),
        E::File("var/lib/dpkg/status", status.into_bytes()),
        E::File(
            "usr/lib/x86_64-linux-gnu/libc.so.6",
            build_test_object("libc.so.6", &glibc),
        ),
        E::File("usr/bin/python3.11", vec![0x7f, b'E', b'L', b'F']),
        E::Link("usr/bin/python3", "python3.11"),
        E::File("usr/bin/git", vec![0x7f, b'E', b'L', b'F']),
        text(
            "usr/lib/python3.11/EXTERNALLY-MANAGED",
            "[externally-managed]\nError=To install Python packages system-wide, try apt install\n python3-xyz, where xyz is the package you are trying to\n install.\n",
        ),
        text(
            "usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO",
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\nSummary: Python HTTP for Humans.\n",
        ),
        text(
            "usr/lib/python3/dist-packages/requests-2.28.1.egg-info/requires.txt",
            "\n[security]\n\n[socks]\nPySocks!=1.5.7,>=1.5.6\n\n[use_chardet_on_py3]\nchardet<6,>=3.0.2\n",
        ),
        text(
            "usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info/PKG-INFO",
            "Metadata-Version: 2.1\nName: urllib3\nVersion: 1.26.12\n",
        ),
        text(
            "usr/lib/python3/dist-packages/idna-3.3.egg-info/PKG-INFO",
            "Metadata-Version: 2.1\nName: idna\nVersion: 3.3\n",
        ),
        text(
            "usr/lib/python3/dist-packages/certifi-2022.9.24.egg-info/PKG-INFO",
            "Metadata-Version: 2.1\nName: certifi\nVersion: 2022.9.24\n",
        ),
        dist_info(dist, "charset_normalizer", "3.0.1"),
        dist_info(dist, "PyYAML", "6.0"),
    ];
    for (package, dir) in [
        ("python3-requests", "requests-2.28.1.egg-info"),
        ("python3-urllib3", "urllib3-1.26.12.egg-info"),
        ("python3-idna", "idna-3.3.egg-info"),
        ("python3-certifi", "certifi-2022.9.24.egg-info"),
        (
            "python3-charset-normalizer",
            "charset_normalizer-3.0.1.dist-info",
        ),
        ("python3-yaml", "PyYAML-6.0.dist-info"),
    ] {
        entries.push(text(
            leak(format!("var/lib/dpkg/info/{package}.list")),
            &format!("/.\n/usr\n/usr/lib\n/usr/lib/python3\n/{dist}\n/{dist}/{dir}\n"),
        ));
    }
    vec![layer(&entries)]
}

/// The same base with two virtual environments made by `python3 -m venv`
/// (Debian's venv links only `python3` to the base interpreter): one
/// without and one with the system site packages.
fn debian_with_venvs_layers() -> Vec<Vec<u8>> {
    let mut layers = debian_merged_usr_layers();
    let venv = |name: &'static str, system: bool| {
        let cfg = format!(
            "home = /usr/bin\ninclude-system-site-packages = {system}\nversion = 3.11.2\nexecutable = /usr/bin/python3.11\n"
        );
        vec![
            E::File(
                Box::leak(format!("opt/{name}/pyvenv.cfg").into_boxed_str()),
                cfg.into_bytes(),
            ),
            E::Link(
                Box::leak(format!("opt/{name}/bin/python3").into_boxed_str()),
                "/usr/bin/python3",
            ),
            E::Link(
                Box::leak(format!("opt/{name}/bin/python").into_boxed_str()),
                "python3",
            ),
            dist_info(
                Box::leak(format!("opt/{name}/lib/python3.11/site-packages").into_boxed_str()),
                "pip",
                "23.0.1",
            ),
        ]
    };
    let mut entries = venv("venv-plain", false);
    entries.extend(venv("venv-system", true));
    layers.push(layer(&entries));
    layers
}

#[test]
fn a_merged_usr_debian_reports_each_interpreter_and_package_once_in_every_form() {
    let tmp = tempfile::tempdir().unwrap();
    let oci = tmp.path().join("oci");
    oci_layout(
        &oci,
        "team/debian12-python:1",
        &[],
        &debian_merged_usr_layers(),
    );
    let archive = tmp.path().join("debian.tar");
    docker_archive(
        &archive,
        "team/debian12-python:1",
        &[],
        &debian_merged_usr_layers(),
    );
    let rootfs = tmp.path().join("rootfs");
    for l in debian_merged_usr_layers() {
        tar::Archive::new(l.as_slice()).unpack(&rootfs).unwrap();
    }
    let analyses = [inspect(&oci), inspect(&archive), inspect(&rootfs)];
    for a in &analyses {
        let interpreters = a["python_interpreters"].as_array().unwrap();
        assert_eq!(interpreters.len(), 1, "{interpreters:?}");
        let i = &interpreters[0];
        assert_eq!(i["path"], "/usr/bin/python3.11");
        assert_eq!(i["aliases"], serde_json::json!(["/bin/python3.11"]));
        assert_eq!(i["kind"], "system");
        assert_eq!(i["externally_managed"], true);
        assert_eq!(i["full_version"], "3.11.2");
        assert_eq!(
            i["site_dirs"],
            serde_json::json!(["/usr/lib/python3/dist-packages"])
        );
        // Six packages, once each, under their real directory, with the
        // Debian package that installed them.
        let packages = a["python_packages"].as_array().unwrap();
        assert_eq!(packages.len(), 6, "{packages:?}");
        for p in packages {
            assert_eq!(p["location"], "/usr/lib/python3/dist-packages", "{p}");
            assert!(
                p["distro_package"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("python3-")),
                "{p}"
            );
        }
        let requests = packages.iter().find(|p| p["name"] == "requests").unwrap();
        assert_eq!(requests["distro_package"], "python3-requests");
        assert_eq!(
            requests["requires"],
            serde_json::json!([
                "PySocks!=1.5.7,>=1.5.6 ; extra == \"socks\"",
                "chardet<6,>=3.0.2 ; extra == \"use_chardet_on_py3\""
            ])
        );
    }
    for key in [
        "python_interpreters",
        "python_packages",
        "deb_packages",
        "glibc",
    ] {
        assert_eq!(analyses[0][key], analyses[1][key], "{key}: OCI vs docker");
        assert_eq!(analyses[0][key], analyses[2][key], "{key}: OCI vs rootfs");
    }
}

#[test]
fn virtual_environments_are_told_apart_from_the_system_python() {
    let tmp = tempfile::tempdir().unwrap();
    let oci = tmp.path().join("oci");
    oci_layout(&oci, "team/venvs:1", &[], &debian_with_venvs_layers());
    let a = inspect(&oci);
    let interpreters = a["python_interpreters"].as_array().unwrap();
    let by_path = |p: &str| {
        interpreters
            .iter()
            .find(|i| i["path"] == p)
            .unwrap_or_else(|| panic!("{p}: {interpreters:?}"))
    };
    assert_eq!(interpreters.len(), 3, "{interpreters:?}");
    let plain = by_path("/opt/venv-plain/bin/python3");
    assert_eq!(plain["kind"], "virtual-environment");
    assert_eq!(plain["system_site_packages"], false);
    assert_eq!(plain["full_version"], "3.11.2");
    assert_eq!(plain["version"], "3.11");
    let system = by_path("/opt/venv-system/bin/python3");
    assert_eq!(system["system_site_packages"], true);
    assert_eq!(
        system["site_dirs"],
        serde_json::json!(["/opt/venv-system/lib/python3.11/site-packages"])
    );
    assert_eq!(by_path("/usr/bin/python3.11")["externally_managed"], true);
}

/// `advise` on the Debian base for requests, pyyaml, gitpython and flask:
/// (mode, exit code, report, lock versions).
fn advise_debian(
    image: &Path,
    data: &Path,
    mode: Option<&str>,
) -> (
    i32,
    serde_json::Value,
    std::collections::BTreeMap<String, String>,
) {
    let project = project_with("requests\npyyaml\ngitpython\nflask\n");
    let mut args = vec!["--base-image", image.to_str().unwrap()];
    if let Some(m) = mode {
        args.extend(["--base-image-mode", m]);
    }
    let (code, report, lock) = advise_on(project.path(), data, &args);
    assert_eq!(code, 0, "{mode:?}: {lock}");
    let versions = lock_versions_of(&serde_json::from_str(&lock).unwrap());
    // Every lock is a valid stack for the target.
    let problems = check(
        &bundled_kb(&report),
        &target_of(&report),
        &roots_of(&report, false),
        &versions,
    );
    if mode != Some("into-image") {
        assert!(problems.is_empty(), "{mode:?}: {problems:?}");
    }
    (code, report, versions)
}

fn all_messages(report: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in [
        &report["stack_info"],
        &report["products"][0]["justification"],
    ] {
        for m in key.as_array().into_iter().flatten() {
            out.push(m["message"].as_str().unwrap_or_default().to_string());
        }
    }
    out
}

#[test]
fn a_debian_base_resolves_in_every_mode_and_says_which() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("oci");
    oci_layout(
        &image,
        "team/debian12-python:1",
        &[],
        &debian_merged_usr_layers(),
    );
    let data = tmp.path().join("data");

    // Default for an externally managed interpreter: a new virtual
    // environment; the image's packages are not constraints.
    let (_, report, versions) = advise_debian(&image, &data, None);
    assert_eq!(report["inputs"]["base_image"]["mode"], "new-venv");
    assert_eq!(
        report["inputs"]["base_image"]["interpreter"],
        "/usr/bin/python3.11"
    );
    let messages = all_messages(&report);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("mode new-venv (the default for this interpreter")),
        "{messages:?}"
    );
    assert_ne!(versions["requests"], "2.28.1");
    assert!(versions["charset-normalizer"].starts_with("3."));
    // git is installed: our GitPython unit has nothing to say.
    assert!(
        !messages
            .iter()
            .any(|m| m.contains("GitPython calls the git executable")),
        "{messages:?}"
    );
    // The interpreter's patch release is known from Debian's package.
    assert_eq!(
        report["inputs"]["environment"]["python_full_version"],
        "3.11.2"
    );

    // With the system site packages: the image's copies are upgraded, and
    // each replacement is named with its Debian package.
    let (_, report, versions) = advise_debian(&image, &data, Some("system-site-packages"));
    let messages = all_messages(&report);
    assert!(
        messages.iter().any(|m| m.starts_with(&format!(
            "requests {} replaces the base image's requests 2.28.1 (/usr/lib/python3/dist-packages, from the distribution package python3-requests)",
            versions["requests"]
        ))),
        "{messages:?}"
    );

    // Into the image: Debian's requests is kept, and its own requirements
    // (not the index's charset-normalizer<3) are used, so the stack exists.
    let (_, report, versions) = advise_debian(&image, &data, Some("into-image"));
    assert_eq!(versions["requests"], "2.28.1");
    let messages = all_messages(&report);
    assert!(
        messages.iter().any(|m| m.starts_with(
            "requests 2.28.1 comes from the base image (/usr/lib/python3/dist-packages, from the distribution package python3-requests); the stack keeps it; the published requests 2.28.1 requires charset-normalizer"
        )),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("mode into-image (chosen)")),
        "{messages:?}"
    );

    // The mode from .thoth.yaml, and a bad one named with file and key.
    let project = project_with("requests\n");
    std::fs::write(
        project.path().join(".thoth.yaml"),
        "runtime_environments:\n- name: app\n  base_image_mode: system-site-packages\n",
    )
    .unwrap();
    let (code, report, _) = advise_on(
        project.path(),
        &data,
        &["--base-image", image.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    assert_eq!(
        report["inputs"]["base_image"]["mode"],
        "system-site-packages"
    );
    std::fs::write(
        project.path().join(".thoth.yaml"),
        "runtime_environments:\n- name: app\n  base_image_mode: sideways\n",
    )
    .unwrap();
    let (code, _, err) = advise_on(
        project.path(),
        &data,
        &["--base-image", image.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains(".thoth.yaml") && err.contains("base_image_mode") && err.contains("sideways"),
        "{err}"
    );
}

#[test]
fn rpm_file_lists_name_the_package_that_installed_a_python_package() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("rpmdb.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);",
    )
    .unwrap();
    let site = "usr/lib/python3.9/site-packages";
    let p = RpmPackage {
        name: "python3-requests".into(),
        epoch: None,
        version: "2.25.1".into(),
        release: "8.el9".into(),
        arch: Some("noarch".into()),
        src: None,
        python_metadata: vec![format!("/{site}/requests-2.25.1-py3.9.egg-info")],
    };
    conn.execute(
        "INSERT INTO Packages (blob) VALUES (?1)",
        [build_header(&p)],
    )
    .unwrap();
    drop(conn);
    let layers = vec![layer(&[
        text("etc/os-release", "ID=\"rhel\"\nVERSION_ID=\"9.4\"\n"),
        E::File("var/lib/rpm/rpmdb.sqlite", std::fs::read(&db).unwrap()),
        E::Link("lib64", "usr/lib64"),
        E::Link("lib", "usr/lib"),
        E::File("usr/bin/python3.9", vec![0x7f, b'E', b'L', b'F']),
        text(
            "usr/lib/python3.9/site-packages/requests-2.25.1-py3.9.egg-info/PKG-INFO",
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.25.1\n",
        ),
        dist_info(
            "usr/lib/python3.9/site-packages",
            "pip-owned-by-nobody",
            "1.0",
        ),
    ])];
    let path = tmp.path().join("ubi.tar");
    docker_archive(&path, "ubi9/python:1", &[], &layers);
    let a = inspect(&path);
    let packages = a["python_packages"].as_array().unwrap();
    assert_eq!(packages.len(), 2, "{packages:?}");
    let requests = packages.iter().find(|p| p["name"] == "requests").unwrap();
    assert_eq!(requests["distro_package"], "python3-requests");
    assert_eq!(requests["location"], format!("/{site}"));
    let other = packages.iter().find(|p| p["name"] != "requests").unwrap();
    assert!(other.get("distro_package").is_none(), "{other}");
}

/// A gzip stream of `parts` (literal bytes, or MiB of one repeated byte)
/// built from concatenated gzip members: one compressed MiB is reused, so
/// a stream that expands to gigabytes costs the test almost nothing.
enum Gz {
    Bytes(Vec<u8>),
    MiB(usize),
}

fn gz_stream(parts: &[Gz]) -> Vec<u8> {
    let one_mib = gzip(&vec![b'x'; 1 << 20]);
    let mut out = Vec::new();
    for p in parts {
        match p {
            Gz::Bytes(b) => out.extend(gzip(b)),
            Gz::MiB(n) => {
                for _ in 0..*n {
                    out.extend_from_slice(&one_mib);
                }
            }
        }
    }
    out
}

/// A tar header for a regular file of `size` bytes.
fn tar_header(path: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_size(size);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// Run `thoth-rs image inspect --json PATH` with at most `mib` MiB of
/// address space, a 90 s limit, and its own temporary directory `tmp`
/// plus `env`.
fn inspect_bounded(
    path: &Path,
    mib: u64,
    tmp: &Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    let bin = env!("CARGO_BIN_EXE_thoth-rs");
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -v {}; exec timeout 90 '{bin}' image inspect --json '{}'",
            mib * 1024,
            path.display()
        ))
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn huge_metadata_files_in_a_small_layer_are_not_kept() {
    // 16 METADATA files of 40 MiB each in one gzip layer of about 1 MB:
    // keeping them all (640 MiB) would break the 512 MiB address-space
    // limit; a metadata file that large is not one and is skipped.
    let tmp = tempfile::tempdir().unwrap();
    let mut parts = Vec::new();
    for i in 0..16 {
        parts.push(Gz::Bytes(tar_header(
            &format!("usr/lib/python3/site-packages/bomb{i}-1.0.dist-info/METADATA"),
            40 << 20,
        )));
        parts.push(Gz::MiB(40));
    }
    parts.push(Gz::Bytes(vec![0; 1024]));
    let layers = vec![
        layer(&[text("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n")]),
        gz_stream(&parts),
    ];
    let path = tmp.path().join("bomb.tar");
    docker_archive(&path, "bomb:1", &[], &layers);
    let scratch = tempfile::tempdir().unwrap();
    let out = inspect_bounded(&path, 512, scratch.path(), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let a: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(a["os"]["id"], "debian", "{a}");
    assert!(a["python_packages"].as_array().unwrap().is_empty(), "{a}");
}

#[test]
fn a_compressed_archive_is_decompressed_within_a_temporary_space_budget_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // A docker archive whose only member expands to 300 MiB, gzip-compressed
    // as a whole (the outer compression is what needs temporary space).
    let path = tmp.path().join("big.tar.gz");
    std::fs::write(
        &path,
        gz_stream(&[
            Gz::Bytes(tar_header("layer0/layer.tar", 300 << 20)),
            Gz::MiB(300),
            Gz::Bytes(vec![0; 1024]),
        ]),
    )
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let out = inspect_bounded(
        &path,
        1024,
        scratch.path(),
        &[("THOTH_IMAGE_TMP_MAX", "104857600")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("big.tar.gz")
            && err.contains("larger than 100 MiB")
            && err.contains("THOTH_IMAGE_TMP_MAX"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);

    // Killed while decompressing: the temporary file has no name, so
    // nothing is left behind either.
    let bin = env!("CARGO_BIN_EXE_thoth-rs");
    let mut child = std::process::Command::new(bin)
        .args(["image", "inspect", "--json"])
        .arg(&path)
        .env("TMPDIR", scratch.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
}

#[test]
fn an_rpm_database_with_views_or_triggers_is_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, sql) in [
        (
            "view",
            "CREATE TABLE t (hnum INTEGER, blob BLOB);
             CREATE VIEW Packages AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)
               SELECT n AS hnum, zeroblob(16) AS blob FROM r;",
        ),
        (
            "trigger",
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB);
             CREATE TRIGGER tr AFTER INSERT ON Packages BEGIN DELETE FROM Packages; END;",
        ),
    ] {
        let db = tmp.path().join(format!("{name}.sqlite"));
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let layers = vec![layer(&[
            text("etc/os-release", "ID=\"rhel\"\nVERSION_ID=\"9.4\"\n"),
            E::File("var/lib/rpm/rpmdb.sqlite", std::fs::read(&db).unwrap()),
        ])];
        let path = tmp.path().join(format!("{name}.tar"));
        docker_archive(&path, "rhel:9", &[], &layers);
        let scratch = tempfile::tempdir().unwrap();
        let out = inspect_bounded(&path, 1024, scratch.path(), &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        let a: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(a["rpm"]["readable"], false, "{a}");
        let note = a["rpm"]["note"].as_str().unwrap();
        assert!(note.contains(&format!("{name} ")), "{note}");
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
    }
}
