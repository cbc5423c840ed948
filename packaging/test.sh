#!/usr/bin/env bash
# The package tests, run by .ci/run, without containers: builds the packages
# (twice, to prove them reproducible), checks the glibc floor, the rpm's
# compatibility facts, the units' exposure and syntax, the scripts with
# ShellCheck, lintian and rpmlint against checked-in allow-lists; installs,
# joins, reinstalls and purges the debs on this machine; installs, upgrades
# and erases the rpms under `rpm --root`; installs the tarball into a
# directory; runs the agent inside a minimal Debian root from debootstrap;
# then boots that root with systemd-nspawn and runs both units under a real
# systemd: join --install starts the agent, its sample reaches the node.
#
# It installs and removes packages on this machine: run it as root on a build
# or CI machine, not on a node. Prints the figures docs/install.md reports.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== packaging: %s\n' "$*" >&2; }
fail() { echo "packaging test FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (it runs dpkg -i, rpm --root and debootstrap)"

tools=(rpm rpmlint lintian shellcheck debootstrap systemd-nspawn)
missing=()
for tool in "${tools[@]}"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        rpm rpmlint lintian shellcheck debootstrap systemd-container; } >/dev/null \
        || fail "could not install ${missing[*]}"
fi

scratch="$(mktemp -d)"
node_pid=""
agent_pid=""
nspawn_pid=""
cleanup() {
    [ -n "$nspawn_pid" ] && kill "$nspawn_pid" 2>/dev/null && wait "$nspawn_pid"
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
    [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null
    for mounted in "$scratch/debian/proc" "$scratch/debian/sys"; do
        mountpoint -q "$mounted" && umount "$mounted"
    done
    # Never leave this machine with the packages installed.
    dpkg --purge suanli-agent suanli-aggregator >/dev/null 2>&1 || true
    rm -rf "$scratch"
}
trap cleanup EXIT

export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
step "build (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
packaging/build.sh
out=target/packages
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
agent_deb="$out/suanli-agent_${version}-1_amd64.deb"
aggregator_deb="$out/suanli-aggregator_${version}-1_amd64.deb"
agent_rpm="$out/suanli-agent-${version}-1.x86_64.rpm"
tarball="$out/suanli-agent-${version}-x86_64-unknown-linux-gnu.tar.gz"
for file in "$agent_deb" "$aggregator_deb" "$agent_rpm" "$tarball"; do
    [ -f "$file" ] || fail "build.sh made no $file"
done

step "reproducible: a second build gives the same bytes"
cp "$out/SHA256SUMS" "$scratch/first.sums"
packaging/build.sh >/dev/null 2>&1
diff "$scratch/first.sums" "$out/SHA256SUMS" || fail "two builds differ"
cat "$out/SHA256SUMS" >&2

step "rpm: SHA-256 file digests, gzip payload, nothing CentOS 7's rpm 4.11 lacks"
for rpm_file in "$out"/*.rpm; do
    facts="$(rpm -qp --qf '%{FILEDIGESTALGO} %{PAYLOADCOMPRESSOR}' "$rpm_file")"
    [ "$facts" = "8 gzip" ] || fail "$rpm_file: digest/payload $facts, want 8 gzip"
    rpmlib="$(rpm -qp --requires "$rpm_file" | grep '^rpmlib(' | sed 's/ .*//' | sort | tr '\n' ' ')"
    [ "$rpmlib" = "rpmlib(CompressedFileNames) rpmlib(FileDigests) rpmlib(PayloadFilesHavePrefix) " ] \
        || fail "$rpm_file needs $rpmlib"
    # (grep -q on a pipe would stop reading early and fail the pipe under pipefail)
    grep -qx 'glibc >= 2.17' <<< "$(rpm -qp --requires "$rpm_file")" || fail "$rpm_file does not require glibc >= 2.17"
    grep -q 'Payload SHA256 digest: OK' <<< "$(rpm -Kv --nosignature "$rpm_file")" || fail "$rpm_file digest"
done

step "units: exposure at most 1.5"
for unit in packaging/systemd/*.service; do
    systemd-analyze security --offline=yes --threshold=15 --no-pager "$unit" | tail -1 >&2 \
        || fail "$unit is above exposure 1.5"
done

step "scripts: shellcheck"
shellcheck -s sh target/packaging/packages/scripts/*/*.sh packaging/install.sh
shellcheck -s bash packaging/build.sh packaging/test.sh packaging/check-binary.sh packaging/tools.sh

step "lintian and rpmlint: no tag outside the allow-lists"
lint_check() {
    local name="$1" allow="$2"
    local unexpected
    unexpected="$(grep -v -x -F -f <(grep -v '^#' "$allow" | grep .) "$scratch/$name.tags" || true)"
    [ -z "$unexpected" ] || fail "$name tags not in $allow:
$unexpected"
}
for deb in "$out"/*.deb; do
    lintian --no-tag-display-limit "$deb" 2>/dev/null | awk '{ print $1, $3 }' | sort -u
done > "$scratch/lintian.tags" || true
lint_check lintian packaging/lint/lintian.allow
for rpm_file in "$out"/*.rpm; do
    rpmlint "$rpm_file" 2>/dev/null | grep -E '^[^ ]+: [WE]: ' | awk '{ print $2, $3 }' | sort -u
done > "$scratch/rpmlint.tags" || true
lint_check rpmlint packaging/lint/rpmlint.allow

step "deb: install, run, join --install, first sample"
start_ms=$(date +%s%3N)
dpkg -i "$agent_deb" "$aggregator_deb" >/dev/null
installed_ms=$(date +%s%3N)
getent passwd suanli-agent >/dev/null || fail "no suanli-agent user after dpkg -i"
getent passwd suanli-aggregator >/dev/null || fail "no suanli-aggregator user after dpkg -i"
suanli-agent --version
suanli-aggregator --version
suanli-agent inventory >/dev/null || fail "suanli-agent inventory failed"
suanli-aggregator check-config --config /etc/suanli/aggregator.toml >/dev/null
systemd-analyze verify /lib/systemd/system/suanli-agent.service /lib/systemd/system/suanli-aggregator.service \
    > "$scratch/verify.log" 2>&1 || true
if grep -E "Unknown (key|section)|Failed to parse|Invalid" "$scratch/verify.log"; then
    fail "systemd-analyze verify found unknown or invalid settings"
fi

# A node from the package, on ports the kernel picks.
node="$scratch/node"
suanli-aggregator serve --data-dir "$node" --quic-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    > "$scratch/node.out" 2> "$scratch/node.log" &
node_pid=$!
until grep -q 'quic=' "$scratch/node.out" 2>/dev/null; do
    kill -0 "$node_pid" 2>/dev/null || fail "aggregator exited: $(tail -5 "$scratch/node.log")"
    sleep 0.1
done
quic="$(grep -o 'quic=[^ ]*' "$scratch/node.out" | head -1 | cut -d= -f2)"
http="$(grep -o 'http=[^ ]*' "$scratch/node.out" | head -1 | cut -d= -f2)"
suanli-aggregator provider create --data-dir "$node" --name 测试算力 --uscc 91350100M000100Y43 \
    --region 110108 --industry I65 >/dev/null
join="$(suanli-aggregator token create --data-dir "$node" --provider 91350100M000100Y43 --address "$quic")"

rm -rf /var/lib/suanli-agent
join_ms=$(date +%s%3N)
suanli-agent join "$join" --install | tee "$scratch/join.out"
[ "$(stat -c '%U %a' /var/lib/suanli-agent)" = "suanli-agent 700" ] \
    || fail "state directory is $(stat -c '%U %a' /var/lib/suanli-agent), want suanli-agent 700"
[ "$(stat -c '%U %a' /var/lib/suanli-agent/agent.key)" = "suanli-agent 600" ] || fail "agent.key owner or mode"
drop_in=/etc/systemd/system/suanli-agent.service.d/50-network.conf
grep -q '^IPAddressAllow=' "$drop_in" || fail "join --install wrote no IPAddressAllow= to $drop_in"
systemd-analyze verify suanli-agent.service > "$scratch/verify-drop-in.log" 2>&1 || true
if grep -E "Unknown (key|section)|Failed to parse|Invalid" "$scratch/verify-drop-in.log"; then
    fail "systemd-analyze verify rejects the unit with its network drop-in"
fi
# systemd is not PID 1 here, so run what the unit runs, as its user, without privileges.
setpriv --reuid suanli-agent --regid suanli-agent --init-groups --no-new-privs --bounding-set=-all \
    suanli-agent run --config /etc/suanli/agent.toml --state-dir /var/lib/suanli-agent \
    2> "$scratch/agent.log" &
agent_pid=$!
token="$(cat "$node/admin.token")"
stored=0
deadline=$(($(date +%s) + 60))
while [ "$stored" -lt 1 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "no sample stored within 60 s: $(tail -5 "$scratch/agent.log")"
    kill -0 "$agent_pid" 2>/dev/null || fail "agent exited: $(tail -5 "$scratch/agent.log")"
    stored="$(curl -sf -H "Authorization: Bearer $token" "http://$http/api/v1/hosts" \
        | python3 -c 'import json, sys; print(sum(h["samples_stored"] for h in json.load(sys.stdin)["hosts"]))' \
        || echo 0)"
    [ "$stored" -ge 1 ] || sleep 0.1
done
sample_ms=$(date +%s%3N)
kill "$agent_pid"
wait "$agent_pid" || true
agent_pid=""

step "deb: an edited configuration survives a reinstall"
echo "# edited by the package test" >> /etc/suanli/agent.toml
dpkg -i "$agent_deb" >/dev/null
grep -q "edited by the package test" /etc/suanli/agent.toml || fail "reinstall replaced the edited agent.toml"

step "agent uninstall keeps the spool; dpkg --purge leaves nothing"
suanli-agent uninstall
[ ! -e /var/lib/suanli-agent/agent.key ] || fail "uninstall kept the key"
[ -d /var/lib/suanli-agent/spool ] || fail "uninstall removed the spool"
[ ! -e "$drop_in" ] || fail "uninstall left $drop_in"
kill "$node_pid"
wait "$node_pid" || true
node_pid=""
dpkg -L suanli-agent suanli-aggregator | sort -u > "$scratch/files"
dpkg --purge suanli-agent suanli-aggregator >/dev/null
while read -r path; do
    case "$path" in /usr | /usr/* | /lib | /lib/* | /etc | /etc/*) ;; *) continue ;; esac
    if [ -f "$path" ] || { [ -d "$path" ] && [ -z "$(ls -A "$path" 2>/dev/null)" ] && ! dpkg -S "$path" >/dev/null 2>&1; }; then
        fail "$path is left after dpkg --purge"
    fi
done < "$scratch/files"
for path in /etc/suanli /var/lib/suanli-agent /var/lib/suanli-aggregator /etc/systemd/system/suanli-agent.service.d; do
    [ ! -e "$path" ] || fail "$path is left after dpkg --purge"
done

step "rpm --root: install, verify, upgrade keeps the edit, erase saves it"
packaging/build.sh --release 2 --out target/packages-release-2 >/dev/null 2>&1
root="$scratch/rpmroot"
mkdir -p "$root"
rpm --root "$root" --initdb
rpm --root "$root" -i --nodeps --noscripts "$agent_rpm"
rpm --root "$root" -V --nodeps suanli-agent || fail "rpm -V after install"
echo "# edited by the package test" >> "$root/etc/suanli/agent.toml"
rpm --root "$root" -U --nodeps --noscripts target/packages-release-2/suanli-agent-"$version"-2.x86_64.rpm
[ "$(rpm --root "$root" -q --qf '%{RELEASE}' suanli-agent)" = 2 ] || fail "upgrade to release 2"
grep -q "edited by the package test" "$root/etc/suanli/agent.toml" || fail "upgrade replaced the edited agent.toml"
[ -x "$root/usr/bin/suanli-agent" ] || fail "rpm: no /usr/bin/suanli-agent"
[ -f "$root/usr/lib/systemd/system/suanli-agent.service" ] || fail "rpm: no unit in /usr/lib/systemd/system"
rpm --root "$root" -e --nodeps --noscripts suanli-agent
grep -q "edited by the package test" "$root/etc/suanli/agent.toml.rpmsave" || fail "erase did not save the edit as .rpmsave"
[ ! -e "$root/usr/bin/suanli-agent" ] || fail "erase left the binary"

step "tarball: install.sh into a root, and out again"
tar -xzf "$tarball" -C "$scratch"
tree="$scratch/suanli-agent-$version-x86_64-unknown-linux-gnu"
troot="$scratch/tarroot"
mkdir -p "$troot/etc"
cp /etc/passwd /etc/group /etc/shadow /etc/gshadow "$troot/etc/"
"$tree/install.sh" --root "$troot"
grep -q '^suanli-agent:' "$troot/etc/passwd" || fail "install.sh created no user"
"$troot/usr/bin/suanli-agent" --version >/dev/null
"$tree/install.sh" --root "$troot" --uninstall --purge
for path in usr/bin/suanli-agent etc/suanli etc/systemd/system/suanli-agent.service; do
    [ ! -e "$troot/$path" ] || fail "install.sh --uninstall --purge left /$path"
done

step "debootstrap: the agent in a minimal Debian root"
debian="$scratch/debian"
cache=target/debootstrap-cache
mkdir -p "$cache"
mirror="$(sed -n 's/^URIs: \(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)"
debootstrap --variant=minbase --cache-dir="$(pwd)/$cache" bookworm "$debian" "${mirror:-http://deb.debian.org/debian}" \
    > "$scratch/debootstrap.log" 2>&1 || fail "debootstrap: $(tail -5 "$scratch/debootstrap.log")"
cp "$agent_deb" "$debian/tmp/"
chroot "$debian" dpkg -i "/tmp/$(basename "$agent_deb")" >/dev/null
chroot "$debian" getent passwd suanli-agent >/dev/null || fail "no user in the Debian root (useradd fallback)"
mount -t proc proc "$debian/proc"
mount -t sysfs sys "$debian/sys"
chroot "$debian" suanli-agent inventory | tee "$scratch/chroot-inventory" | head -5
grep -q . "$scratch/chroot-inventory" || fail "inventory printed nothing in the Debian root"
chroot "$debian" dpkg --purge suanli-agent >/dev/null

step "systemd: both units under a real systemd (the Debian root booted by systemd-nspawn)"
# Its own network namespace, so the aggregator's default ports are its own.
chroot "$debian" sh -c 'DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd systemd-sysv dbus curl' \
    > "$scratch/apt-in-root.log" 2>&1 || fail "installing systemd in the Debian root: $(tail -5 "$scratch/apt-in-root.log")"
umount "$debian/proc" "$debian/sys"
# nspawn gives the container a fresh /tmp.
cp "$agent_deb" "$aggregator_deb" "$debian/root/"
systemd-nspawn --quiet --directory="$debian" --boot --register=no --keep-unit --private-network \
    --machine=suanli-package-test > "$scratch/nspawn.log" 2>&1 &
nspawn_pid=$!
booted=""
deadline=$(($(date +%s) + 60))
until [ -n "$booted" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the Debian root did not boot: $(tail -5 "$scratch/nspawn.log")"
    kill -0 "$nspawn_pid" 2>/dev/null || fail "systemd-nspawn exited: $(tail -5 "$scratch/nspawn.log")"
    container_init="$(pgrep -P "$nspawn_pid" | head -1 || true)"
    if [ -n "$container_init" ]; then
        booted="$(nsenter -t "$container_init" -a systemctl is-system-running 2>/dev/null | grep -E '^(running|degraded)$' || true)"
    fi
    [ -n "$booted" ] || sleep 0.2
done
inside() { nsenter -t "$container_init" -a "$@"; }
inside dpkg -i "/root/$(basename "$agent_deb")" "/root/$(basename "$aggregator_deb")" >/dev/null
inside systemctl enable --now suanli-aggregator.service
deadline=$(($(date +%s) + 60))
until inside test -f /var/lib/suanli-aggregator/admin.token; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the aggregator unit did not start: $(inside journalctl -u suanli-aggregator --no-pager | tail -5)"
    sleep 0.2
done
as_node() { inside runuser -u suanli-aggregator -- suanli-aggregator "$@" --data-dir /var/lib/suanli-aggregator; }
as_node provider create --name 测试算力 --uscc 91350100M000100Y43 --region 110108 --industry I65 >/dev/null
join="$(as_node token create --provider 91350100M000100Y43 --address 127.0.0.1:7443)"
unit_join_ms=$(date +%s%3N)
inside suanli-agent join "$join" --install | tee "$scratch/unit-join.out"
grep -q "enabled and started suanli-agent.service" "$scratch/unit-join.out" || fail "join --install did not start the unit"
token="$(inside cat /var/lib/suanli-aggregator/admin.token)"
stored=0
deadline=$(($(date +%s) + 60))
while [ "$stored" -lt 1 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "no sample from the agent unit within 60 s: $(inside journalctl -u suanli-agent --no-pager | tail -5)"
    stored="$(inside curl -sf -H "Authorization: Bearer $token" http://127.0.0.1:8080/api/v1/hosts \
        | python3 -c 'import json, sys; print(sum(h["samples_stored"] for h in json.load(sys.stdin)["hosts"]))' \
        || echo 0)"
    [ "$stored" -ge 1 ] || sleep 0.1
done
unit_sample_ms=$(date +%s%3N)
for unit in suanli-agent suanli-aggregator; do
    [ "$(inside systemctl show -p ActiveState --value "$unit")" = active ] || fail "$unit is not active"
done
# The sandbox is in force, not merely written down.
inside systemctl show -p User -p PrivateUsers -p DevicePolicy -p IPAddressDeny -p IPAddressAllow suanli-agent
[ "$(inside systemctl show -p PrivateUsers --value suanli-agent)" = yes ] || fail "PrivateUsers is not in force"
inside suanli-agent uninstall
[ "$(inside systemctl show -p ActiveState --value suanli-agent)" = inactive ] || fail "uninstall left the agent running"
[ "$(inside systemctl is-enabled suanli-agent 2>/dev/null || true)" = disabled ] || fail "uninstall left the agent enabled"
inside systemctl disable --now suanli-aggregator.service 2>/dev/null
inside dpkg --purge suanli-agent suanli-aggregator >/dev/null
for path in /usr/bin/suanli-agent /etc/suanli /var/lib/suanli-agent /var/lib/suanli-aggregator /etc/systemd/system/suanli-agent.service.d; do
    inside test ! -e "$path" || fail "$path is left in the booted root after dpkg --purge"
done
inside systemctl poweroff
wait "$nspawn_pid" || true
nspawn_pid=""

step "figures"
for file in "$out"/*.deb "$out"/*.rpm "$out"/*.tar.gz target/x86_64-unknown-linux-gnu/release/suanli-agent target/x86_64-unknown-linux-gnu/release/suanli-aggregator; do
    printf '%10d bytes  %s\n' "$(stat -c %s "$file")" "$(basename "$file")"
done
echo "dpkg -i of both packages: $((installed_ms - start_ms)) ms"
echo "join --install to the first sample stored: $((sample_ms - join_ms)) ms"
echo "dpkg -i to the first sample stored: $((sample_ms - start_ms)) ms"
echo "under systemd: join --install to the first sample stored: $((unit_sample_ms - unit_join_ms)) ms"
step "all package tests passed"
