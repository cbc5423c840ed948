#!/usr/bin/env bash
# Builds the release binaries with a glibc 2.17 floor and packages them:
# deb and rpm for the agent and the aggregator, and the agent's tarball with
# install.sh, all in target/packages/. Two runs with the same
# SOURCE_DATE_EPOCH (default: the last commit's time) give identical files.
#
#   packaging/build.sh [--target TRIPLE] [--release N] [--out DIR]
#
# TRIPLE is x86_64-unknown-linux-gnu (default) or aarch64-unknown-linux-gnu;
# the latter needs that target's Rust standard library (docs/install.md).
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
release=1
out=target/packages
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target="$2"; shift 2 ;;
        --release) release="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "usage: packaging/build.sh [--target TRIPLE] [--release N] [--out DIR]" >&2; exit 2 ;;
    esac
done
case "$target" in
    x86_64-unknown-linux-gnu) arch=amd64 ;;
    aarch64-unknown-linux-gnu) arch=arm64 ;;
    *) echo "packaging: unsupported target $target" >&2; exit 2 ;;
esac

source packaging/tools.sh
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
# No build path, home or registry location in the binaries.
RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$PWD=/suanli --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
export RUSTFLAGS
export CARGO_PROFILE_RELEASE_STRIP=symbols

# The suffix only tells zig which glibc to link against; the standard
# library is the target's own, which already supports glibc 2.17.
cargo zigbuild --release --locked --target "$target.2.17" -p suanli-agent -p suanli-aggregator
bin="target/$target/release"
packaging/check-binary.sh "$bin/suanli-agent" "$bin/suanli-aggregator"

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
work="target/packaging/$(basename "$out")"
rm -rf "$out" "$work"
mkdir -p "$out" "$work"

for package in suanli-agent suanli-aggregator; do
    docs="$work/doc/$package"
    scripts="$work/scripts/$package"
    mkdir -p "$docs" "$scripts"
    cp README.md "$docs/README.md"
    cp packaging/copyright "$docs/copyright"
    python3 packaging/sbom.py "$package" "$target" > "$docs/sbom.cdx.json"
    # Accelerator device nodes' groups, for the agent's user only.
    groups=""
    [ "$package" = suanli-agent ] && groups="video render"
    for script in postinstall preremove postremove; do
        sed -e "s/@NAME@/$package/g" -e "s/@GROUPS@/$groups/" \
            "packaging/scripts/$script.sh" > "$scripts/$script.sh"
    done
    # nfpm expands variables in only some fields, so the description's
    # ${SUANLI_*} are filled in here, all of them.
    SUANLI_ARCH="$arch" SUANLI_VERSION="$version" SUANLI_RELEASE="$release" \
        SUANLI_BIN_DIR="$bin" SUANLI_DOC_DIR="$work/doc" SUANLI_SCRIPTS="$work/scripts" \
        python3 -c 'import os, sys; sys.stdout.write(os.path.expandvars(sys.stdin.read()))' \
        < "packaging/nfpm/$package.yaml" > "$work/$package.yaml"
    if grep -n '[$][{]' "$work/$package.yaml"; then
        echo "packaging: unset variables in packaging/nfpm/$package.yaml" >&2
        exit 1
    fi
    for format in deb rpm; do
        nfpm package --config "$work/$package.yaml" --packager "$format" --target "$out/" >/dev/null
    done
done

# The tarball: the agent for hosts without a package manager.
name="suanli-agent-$version-$target"
tree="$work/$name"
mkdir -p "$tree/bin"
cp "$bin/suanli-agent" "$tree/bin/"
cp packaging/systemd/suanli-agent.service packaging/sysusers/suanli-agent.conf \
    packaging/config/agent.toml packaging/install.sh "$work/scripts/suanli-agent/postinstall.sh" \
    "$work/doc/suanli-agent/sbom.cdx.json" README.md "$tree/"
chmod 0755 "$tree/install.sh" "$tree/bin/suanli-agent"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    -C "$work" -cf - "$name" | gzip -n -9 > "$out/$name.tar.gz"

(cd "$out" && sha256sum -- * > SHA256SUMS)
echo "packaging: $(find "$out" -type f | wc -l) files in $out (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)" >&2
ls -l "$out" >&2
