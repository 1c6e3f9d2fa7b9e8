//! `image inspect` on real images: the Debian 12 root filesystem, OCI
//! layout and `docker save` archive that `scripts/build-debian-images.sh`
//! builds with debootstrap from Debian's own packages. Set
//! `THOTH_BENCH_IMAGES` to the directory it wrote; without it (or without
//! an image) the benchmark says so and measures nothing.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};

fn bench_image(c: &mut Criterion) {
    let Some(dir) = std::env::var_os("THOTH_BENCH_IMAGES").map(PathBuf::from) else {
        eprintln!(
            "THOTH_BENCH_IMAGES is not set: no image to inspect (see scripts/build-debian-images.sh)"
        );
        return;
    };
    let mut group = c.benchmark_group("image_inspect_debian12");
    group.sample_size(10);
    for form in [
        "debian12-rootfs",
        "debian12-docker.tar",
        "debian12-oci",
        "debian12-venvs-rootfs",
    ] {
        let path = dir.join(form);
        if !path.exists() {
            eprintln!("{} is missing; skipped", path.display());
            continue;
        }
        // The analysis the benchmark times is the one the tests check: one
        // interpreter (or three with the venvs), packages once each.
        let a = thoth_rs::image::inspect(&path).expect("a readable image");
        assert!(!a.python_interpreters.is_empty());
        group.bench_function(form, |b| {
            b.iter(|| thoth_rs::image::inspect(black_box(&path)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_image);
criterion_main!(benches);
