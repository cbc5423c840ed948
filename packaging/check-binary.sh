#!/usr/bin/env bash
# Fails unless each binary runs on glibc 2.17 (CentOS 7): no symbol version
# above GLIBC_2.17, and only the C runtime's libraries as NEEDED.
set -euo pipefail
floor=2.17
allowed='^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libgcc_s\.so\.1|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1)$'
status=0
for binary in "$@"; do
    highest="$(objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
    if [ "$(printf '%s\n%s\n' "$highest" "$floor" | sort -V | tail -1)" != "$floor" ]; then
        echo "glibc floor: $binary needs GLIBC_$highest (> $floor)" >&2
        status=1
    fi
    needed="$(objdump -p "$binary" | awk '$1 == "NEEDED" { print $2 }')"
    extra="$(printf '%s\n' "$needed" | grep -Ev "$allowed" || true)"
    if [ -n "$extra" ]; then
        echo "glibc floor: $binary needs libraries beyond the C runtime: $extra" >&2
        status=1
    fi
    echo "glibc floor: $binary: highest GLIBC_$highest; NEEDED $(echo "$needed" | tr '\n' ' ')" >&2
done
exit "$status"
