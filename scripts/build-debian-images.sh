#!/usr/bin/env bash
# build-debian-images.sh -- build real Debian container-image test material.
#
# Usage:  sudo scripts/build-debian-images.sh OUTPUT_DIR
#
# Produces, under OUTPUT_DIR (names use $IMAGE_NAME, default "debian12"):
#   debian12-rootfs/          debootstrap --variant=minbase rootfs (merged /usr)
#                             with python3, python3-requests, python3-yaml, git
#   debian12-rootfs.tar.gz    plain tarball of that rootfs (device nodes included)
#   debian12-oci/             OCI image layout, one gzip layer, tag "latest"
#   debian12-docker.tar       `docker save`-style archive (manifest.json,
#                             <config>.json, <layer>/layer.tar uncompressed)
#   debian12-venvs-rootfs/    second rootfs, same package set + python3-venv,
#                             with /opt/venv-plain and /opt/venv-system
#                             (--system-site-packages)
#   debian12-build-info.txt   package versions, layout facts, digests
#   .build/                   stamps + debootstrap .deb cache (safe to delete)
#
# Idempotent: a rootfs is rebuilt only when its stamp is missing or the build
# parameters changed (or FORCE=1); derived artefacts are rebuilt when missing
# or older than their rootfs.  Partial results are never left in place of
# finished ones (everything is written to a temp name, then renamed).
#
# Environment knobs:
#   DEBIAN_MIRROR   archive URL for debootstrap. Default: the first "deb"
#                   source for $SUITE in this machine's apt configuration
#                   (/etc/apt/sources.list.d/*.sources, *.list, sources.list).
#   SUITE           default: bookworm
#   ARCH            dpkg architecture, default: host architecture
#   IMAGE_NAME      file-name prefix, default: debian12
#   IMAGE_REF       image name:tag for the docker archive, default debian12-python:test
#   INCLUDE         extra packages, default python3,python3-requests,python3-yaml,git
#   FORCE=1         rebuild everything (needed after changing APT_CLEAN to 0)
#   APT_CLEAN=0     keep the .debs debootstrap leaves in /var/cache/apt/archives
#   KEEP_CACHE=0    delete the .deb cache at the end (default keeps it)
#
# Requires: debootstrap, tar, gzip, sha256sum, chroot (coreutils); optional:
# umoci and/or skopeo (used only to validate the results).
# Nothing is downloaded except through debootstrap from the configured mirror;
# no pip/network installs happen inside the venvs.

set -euo pipefail
export LC_ALL=C   # stable sorting, "." as decimal point in $EPOCHREALTIME

# ----------------------------------------------------------------- arguments
if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
OUT=$(realpath -m -- "$1")

SUITE=${SUITE:-bookworm}
IMAGE_NAME=${IMAGE_NAME:-debian12}
IMAGE_REF=${IMAGE_REF:-debian12-python:test}
INCLUDE=${INCLUDE:-python3,python3-requests,python3-yaml,git}
VENV_INCLUDE="${INCLUDE},python3-venv"
VARIANT=minbase
FORCE=${FORCE:-0}
KEEP_CACHE=${KEEP_CACHE:-1}
APT_CLEAN=${APT_CLEAN:-1}

log()  { printf '==> %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# ----------------------------------------------------------------- privileges
# debootstrap (mknod, chown, chroot) needs real root.  Plain fakeroot is not
# enough because the second stage and our checks use chroot(2); running under
# "fakechroot fakeroot" would need --variant=fakechroot, which is a different
# rootfs, so we refuse instead of silently producing something else.
if [[ $EUID -ne 0 ]]; then
    if [[ -n "${FAKEROOTKEY:-}" ]]; then
        die "running under fakeroot: debootstrap's second stage and the chroot checks need real root (try: sudo $0 $*)"
    fi
    die "must run as root (try: sudo $0 $*)"
fi

for t in debootstrap tar gzip sha256sum chroot stat realpath; do
    have "$t" || die "missing required tool: $t (apt-get install debootstrap coreutils tar gzip)"
done

ARCH=${ARCH:-$(dpkg --print-architecture 2>/dev/null || echo amd64)}
# dpkg arch -> OCI platform
case "$ARCH" in
    amd64)   OCI_ARCH=amd64;   OCI_VARIANT= ;;
    arm64)   OCI_ARCH=arm64;   OCI_VARIANT=v8 ;;
    armhf)   OCI_ARCH=arm;     OCI_VARIANT=v7 ;;
    armel)   OCI_ARCH=arm;     OCI_VARIANT=v5 ;;
    i386)    OCI_ARCH=386;     OCI_VARIANT= ;;
    ppc64el) OCI_ARCH=ppc64le; OCI_VARIANT= ;;
    s390x)   OCI_ARCH=s390x;   OCI_VARIANT= ;;
    mips64el) OCI_ARCH=mips64le; OCI_VARIANT= ;;
    *) die "unsupported ARCH=$ARCH" ;;
esac

# ----------------------------------------------------------------- mirror
# Find the first "deb" source in apt's configuration that serves $SUITE.
# Handles both deb822 (*.sources) and one-line (*.list) formats.
detect_mirror() {
    local suite=$1 f found=""
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
        found+=$(awk -v suite="$suite" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uris = ""; suites = ""; types = ""; enabled = 1
                for (i = 1; i <= NF; i++) {
                    line = $i
                    if (line ~ /^[ \t]*#/) continue
                    key = tolower(line); sub(/:.*/, "", key)
                    val = line; sub(/^[^:]*:[ \t]*/, "", val)
                    if (key == "uris") uris = val
                    else if (key == "suites") suites = val
                    else if (key == "types") types = val
                    else if (key == "enabled" && tolower(val) ~ /^no/) enabled = 0
                }
                if (!enabled || types !~ /(^|[ \t])deb([ \t]|$)/) next
                n = split(suites, s, /[ \t]+/)
                for (j = 1; j <= n; j++) if (s[j] == suite) {
                    split(uris, u, /[ \t]+/); print u[1]; exit
                }
            }' "$f")$'\n'
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        found+=$(awk -v suite="$suite" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }' "$f")$'\n'
    done
    shopt -u nullglob
    found=$(printf '%s' "$found" | sed '/^$/d')
    printf '%s' "${found%%$'\n'*}"
}

if [[ -z "${DEBIAN_MIRROR:-}" ]]; then
    DEBIAN_MIRROR=$(detect_mirror "$SUITE")
    [[ -n "$DEBIAN_MIRROR" ]] || die "no apt source for suite '$SUITE' found; set DEBIAN_MIRROR"
fi
DEBIAN_MIRROR=${DEBIAN_MIRROR%/}
[[ "$DEBIAN_MIRROR" =~ ^(https?|file):// ]] \
    || die "DEBIAN_MIRROR must be an http(s):// or file:// URL usable by debootstrap"

# ----------------------------------------------------------------- layout
ROOTFS=$OUT/$IMAGE_NAME-rootfs
VENV_ROOTFS=$OUT/$IMAGE_NAME-venvs-rootfs
ROOTFS_TGZ=$OUT/$IMAGE_NAME-rootfs.tar.gz
OCI_DIR=$OUT/$IMAGE_NAME-oci
DOCKER_TAR=$OUT/$IMAGE_NAME-docker.tar
INFO=$OUT/$IMAGE_NAME-build-info.txt
BUILD=$OUT/.build
CACHE=$BUILD/debs
WORK=$BUILD/work
mkdir -p "$OUT" "$BUILD" "$CACHE"
rm -rf "$WORK"; mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

declare -a TIMINGS=()
t_start() { T0=$EPOCHREALTIME; }
t_end()   { TIMINGS+=("$(printf '%-32s %8.1fs' "$1" "$(awk "BEGIN{print $EPOCHREALTIME - $T0}")")"); }
TOTAL0=$EPOCHREALTIME

# Refuse to rm -rf a directory that has something mounted below it.
safe_rm_rootfs() {
    local d=$1
    [[ -e "$d" ]] || return 0
    if awk -v d="$d" '$2 == d || index($2, d "/") == 1 { bad = 1 } END { exit !bad }' /proc/mounts; then
        die "$d has mounts below it; unmount them first"
    fi
    rm -rf --one-file-system -- "$d"
}

# Post-debootstrap tidy-up; idempotent, run on every invocation.  If it
# changes anything it touches the stamp so derived artefacts get rebuilt.
#  * debootstrap copies the build host's /etc/resolv.conf and /etc/hostname
#    into the target; replace them so no host-specific data is shipped.
#  * debootstrap leaves every downloaded .deb in /var/cache/apt/archives
#    (~60 MB); APT_CLEAN=1 (default) removes them, like `apt-get clean`.
#    /var/lib/apt/lists and /var/log/bootstrap.log are kept as debootstrap
#    wrote them.
tidy_rootfs() {
    local d=$1 stamp=$2 changed=0
    if [[ -s "$d/etc/resolv.conf" || -L "$d/etc/resolv.conf" ]]; then
        rm -f "$d/etc/resolv.conf"; : > "$d/etc/resolv.conf"; changed=1
    fi
    if [[ "$(cat "$d/etc/hostname" 2>/dev/null)" != localhost ]]; then
        echo localhost > "$d/etc/hostname"; changed=1
    fi
    if [[ "$APT_CLEAN" == 1 ]] && compgen -G "$d/var/cache/apt/archives/*.deb" >/dev/null; then
        rm -f "$d"/var/cache/apt/archives/*.deb; changed=1
    fi
    if (( changed )); then touch "$stamp"; fi
}

# build_rootfs DIR PACKAGES  -- debootstrap unless a matching stamp exists
build_rootfs() {
    local dir=$1 pkgs=$2 stamp want
    stamp=$BUILD/$(basename "$dir").stamp
    # the stamp records a hash of the parameters (not the mirror URL itself)
    want=$(printf '%s\n' "$SUITE" "$ARCH" "$VARIANT" "$pkgs" "$DEBIAN_MIRROR" | sha256sum | cut -d' ' -f1)
    if [[ "$FORCE" != 1 && -d "$dir" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        log "$(basename "$dir"): up to date, skipping debootstrap"
        return 0
    fi
    log "$(basename "$dir"): debootstrap --variant=$VARIANT --include=$pkgs $SUITE"
    rm -f "$stamp"
    safe_rm_rootfs "$dir"
    t_start
    debootstrap --arch="$ARCH" --variant="$VARIANT" --merged-usr \
        --cache-dir="$CACHE" --include="$pkgs" \
        "$SUITE" "$dir" "$DEBIAN_MIRROR"
    t_end "debootstrap $(basename "$dir")"
    echo "$want" > "$stamp"
    tidy_rootfs "$dir" "$stamp"
}

# ----------------------------------------------------------------- 1. rootfs
build_rootfs "$ROOTFS" "$INCLUDE"
ROOTFS_STAMP=$BUILD/$(basename "$ROOTFS").stamp
tidy_rootfs "$ROOTFS" "$ROOTFS_STAMP"

log "verifying $ROOTFS"
for l in bin sbin lib; do
    [[ -L "$ROOTFS/$l" && "$(readlink "$ROOTFS/$l")" == usr/$l ]] \
        || die "$ROOTFS/$l is not a symlink to usr/$l (merged /usr expected)"
done
shopt -s nullglob
em=("$ROOTFS"/usr/lib/python3.*/EXTERNALLY-MANAGED)
req_meta=("$ROOTFS"/usr/lib/python3/dist-packages/requests-*.egg-info "$ROOTFS"/usr/lib/python3/dist-packages/requests-*.dist-info)
shopt -u nullglob
(( ${#em[@]} )) || die "no /usr/lib/python3.*/EXTERNALLY-MANAGED in rootfs"
(( ${#req_meta[@]} )) || die "no requests metadata in /usr/lib/python3/dist-packages"

# ----------------------------------------------------------------- helpers
# Is artefact $1 missing or older than stamp $2?
stale() { [[ "$FORCE" == 1 || ! -e "$1" || "$2" -nt "$1" ]]; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

CREATED=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(stat -c %Y "$ROOTFS_STAMP")}" +%Y-%m-%dT%H:%M:%SZ)

# ----------------------------------------------------------------- 2. rootfs.tar.gz
if stale "$ROOTFS_TGZ" "$ROOTFS_STAMP"; then
    log "writing $ROOTFS_TGZ"
    t_start
    tar --numeric-owner --sort=name -C "$ROOTFS" -cf - . | gzip -n -6 > "$ROOTFS_TGZ.tmp"
    mv -f "$ROOTFS_TGZ.tmp" "$ROOTFS_TGZ"
    t_end "rootfs.tar.gz"
fi

# ----------------------------------------------------------------- 3. image layer + config
if stale "$OCI_DIR/index.json" "$ROOTFS_STAMP" || stale "$DOCKER_TAR" "$ROOTFS_STAMP"; then
    log "building image layer"
    t_start
    LAYER=$WORK/layer.tar
    # One layer = whole rootfs.  Symlinks/hardlinks stay links; numeric owners.
    # Device nodes under /dev are left out (the runtime provides /dev, and
    # rootless unpackers cannot mknod); the /dev directory itself is kept.
    tar --numeric-owner --sort=name --exclude='./dev/*' -C "$ROOTFS" -cf "$LAYER" .
    gzip -n -6 -c "$LAYER" > "$LAYER.gz"
    DIFF_ID=$(sha "$LAYER")
    LAYER_GZ_SHA=$(sha "$LAYER.gz")
    LAYER_GZ_SIZE=$(size "$LAYER.gz")
    t_end "image layer tar+gzip"

    # Image config (shared by the OCI and docker outputs).  created_by names
    # the package set only, never the mirror.
    variant_json=""
    if [[ -n "$OCI_VARIANT" ]]; then variant_json=",\"variant\":\"$OCI_VARIANT\""; fi
    printf '%s' \
"{\"architecture\":\"$OCI_ARCH\"$variant_json,\"os\":\"linux\",\"created\":\"$CREATED\",\
\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"LANG=C.UTF-8\"],\"Cmd\":[\"/bin/bash\"]},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$DIFF_ID\"]},\
\"history\":[{\"created\":\"$CREATED\",\"created_by\":\"debootstrap --variant=$VARIANT --include=$INCLUDE $SUITE\"}]}" \
        > "$WORK/config.json"
    CONFIG_SHA=$(sha "$WORK/config.json")
    CONFIG_SIZE=$(size "$WORK/config.json")

    # ------------------------------------------------------------- 3a. OCI layout
    log "writing $OCI_DIR"
    t_start
    o=$WORK/oci
    mkdir -p "$o/blobs/sha256"
    printf '{"imageLayoutVersion":"1.0.0"}' > "$o/oci-layout"
    mv "$LAYER.gz" "$o/blobs/sha256/$LAYER_GZ_SHA"
    cp "$WORK/config.json" "$o/blobs/sha256/$CONFIG_SHA"
    printf '%s' \
"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$CONFIG_SHA\",\"size\":$CONFIG_SIZE},\
\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$LAYER_GZ_SHA\",\"size\":$LAYER_GZ_SIZE}]}" \
        > "$WORK/manifest.json"
    MANIFEST_SHA=$(sha "$WORK/manifest.json")
    MANIFEST_SIZE=$(size "$WORK/manifest.json")
    mv "$WORK/manifest.json" "$o/blobs/sha256/$MANIFEST_SHA"
    platform_json="{\"architecture\":\"$OCI_ARCH\",\"os\":\"linux\"$variant_json}"
    printf '%s' \
"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\
\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$MANIFEST_SHA\",\"size\":$MANIFEST_SIZE,\
\"platform\":$platform_json,\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}" \
        > "$o/index.json"
    rm -rf "$OCI_DIR.old"
    if [[ -e "$OCI_DIR" ]]; then mv "$OCI_DIR" "$OCI_DIR.old"; fi
    mv "$o" "$OCI_DIR"
    rm -rf "$OCI_DIR.old"
    t_end "OCI layout"

    # ------------------------------------------------------------- 3b. docker-save archive
    log "writing $DOCKER_TAR"
    t_start
    d=$WORK/docker
    mkdir -p "$d/$DIFF_ID"
    mv "$LAYER" "$d/$DIFF_ID/layer.tar"
    printf '1.0' > "$d/$DIFF_ID/VERSION"
    mv "$WORK/config.json" "$d/$CONFIG_SHA.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
        "$CONFIG_SHA" "$IMAGE_REF" "$DIFF_ID" > "$d/manifest.json"
    printf '{"%s":{"%s":"%s"}}' "${IMAGE_REF%:*}" "${IMAGE_REF##*:}" "$DIFF_ID" > "$d/repositories"
    tar --numeric-owner --owner=0 --group=0 --sort=name -C "$d" \
        -cf "$DOCKER_TAR.tmp" manifest.json repositories "$CONFIG_SHA.json" "$DIFF_ID"
    mv -f "$DOCKER_TAR.tmp" "$DOCKER_TAR"
    t_end "docker-save archive"
fi

# ----------------------------------------------------------------- 4. venvs rootfs
build_rootfs "$VENV_ROOTFS" "$VENV_INCLUDE"
VENV_STAMP=$BUILD/$(basename "$VENV_ROOTFS").stamp
tidy_rootfs "$VENV_ROOTFS" "$VENV_STAMP"
for v in plain system; do
    if [[ "$FORCE" == 1 || ! -f "$VENV_ROOTFS/opt/venv-$v/pyvenv.cfg" || "$VENV_STAMP" -nt "$VENV_ROOTFS/opt/venv-$v/pyvenv.cfg" ]]; then
        log "creating /opt/venv-$v in $(basename "$VENV_ROOTFS")"
        t_start
        rm -rf "$VENV_ROOTFS/opt/venv-$v"
        flags=()
        if [[ $v == system ]]; then flags=(--system-site-packages); fi
        # pip/setuptools come from Debian's bundled wheels (python3-pip-whl,
        # python3-setuptools-whl) via ensurepip -- no network access.
        chroot "$VENV_ROOTFS" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
            python3 -m venv "${flags[@]}" "/opt/venv-$v"
        t_end "venv-$v"
    fi
done

# ----------------------------------------------------------------- 5. validation (optional tools)
if have skopeo; then
    log "skopeo inspect (validation)"
    skopeo inspect --raw "oci:$OCI_DIR:latest" >/dev/null
    skopeo inspect "docker-archive:$DOCKER_TAR" >/dev/null
fi
if have umoci; then
    log "umoci stat (validation)"
    umoci stat --image "$OCI_DIR:latest" >/dev/null
fi

# ----------------------------------------------------------------- 6. build info
ver() { chroot "$1" dpkg-query -W -f='${Version}' "$2" 2>/dev/null || echo "(not installed)"; }
{
    echo "# $IMAGE_NAME build info (suite=$SUITE arch=$ARCH variant=$VARIANT)"
    echo "include: $INCLUDE"
    echo "dpkg packages (ii): $(chroot "$ROOTFS" dpkg -l | grep -c '^ii')"
    for p in python3 python3.11 python3-requests python3-charset-normalizer python3-urllib3 \
             python3-idna python3-certifi python3-chardet python3-yaml git; do
        printf '  %-28s %s\n' "$p" "$(ver "$ROOTFS" "$p")"
    done
    echo "symlinks in /:"
    ls -l "$ROOTFS/" | grep -- '->' | awk '{print "  " $(NF-2), $(NF-1), $NF}'
    for f in "${em[@]}"; do echo "EXTERNALLY-MANAGED: ${f#"$ROOTFS"}"; sed 's/^/  | /' "$f"; done
    for f in "${req_meta[@]}"; do
        echo "requests metadata: ${f#"$ROOTFS"}"
        if [[ -f "$f/requires.txt" ]]; then sed 's/^/  | /' "$f/requires.txt"; fi
    done
    echo "venvs rootfs dpkg packages (ii): $(chroot "$VENV_ROOTFS" dpkg -l | grep -c '^ii')"
    for v in plain system; do
        echo "/opt/venv-$v/pyvenv.cfg:"; sed 's/^/  | /' "$VENV_ROOTFS/opt/venv-$v/pyvenv.cfg"
        echo "  site-packages: $(ls "$VENV_ROOTFS"/opt/venv-$v/lib/python3*/site-packages | tr '\n' ' ')"
    done
    echo "OCI index: $(cat "$OCI_DIR/index.json")"
    echo "docker manifest: $(tar -xOf "$DOCKER_TAR" manifest.json)"
} > "$INFO.tmp"
mv -f "$INFO.tmp" "$INFO"

[[ "$KEEP_CACHE" == 1 ]] || rm -rf "$CACHE"

# ----------------------------------------------------------------- summary
echo
echo "Outputs in $OUT:"
du -sh --apparent-size "$ROOTFS" "$ROOTFS_TGZ" "$OCI_DIR" "$DOCKER_TAR" "$VENV_ROOTFS" "$INFO" \
    | sed 's/^/  /'
echo "Timings:"
if (( ${#TIMINGS[@]} )); then printf '  %s\n' "${TIMINGS[@]}"; else echo "  (nothing rebuilt)"; fi
printf '  %-32s %8.1fs\n' total "$(awk "BEGIN{print $EPOCHREALTIME - $TOTAL0}")"
