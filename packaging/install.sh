#!/bin/sh
# Installs the Suanli agent from this tarball, for hosts without dpkg or rpm:
# the same files, user and unit as the packages. Then join with
#   suanli-agent join '<join string>' --install
#
#   ./install.sh [--root DIR]         install (DIR: into an image's root)
#   ./install.sh --uninstall [--purge] remove it again (--purge: also the
#                                      configuration and the state directory)
set -eu

root=
action=install
purge=no
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root="$2"; shift 2 ;;
        --uninstall) action=uninstall; shift ;;
        --purge) purge=yes; shift ;;
        *) echo "usage: $0 [--root DIR] [--uninstall [--purge]]" >&2; exit 2 ;;
    esac
done
here=$(cd "$(dirname "$0")" && pwd)
unit="$root/etc/systemd/system/suanli-agent.service"

if [ "$action" = uninstall ]; then
    if [ -z "$root" ] && [ -x /usr/bin/suanli-agent ]; then
        if [ "$purge" = yes ]; then
            /usr/bin/suanli-agent uninstall --purge
        else
            /usr/bin/suanli-agent uninstall
        fi
    fi
    rm -f "$root/usr/bin/suanli-agent" "$unit" "$root/usr/lib/sysusers.d/suanli-agent.conf"
    if [ "$purge" = yes ]; then
        rm -f "$root/etc/suanli/agent.toml"
        rmdir "$root/etc/suanli" 2>/dev/null || true
        rm -rf "$root/var/lib/suanli-agent"
    fi
    [ -z "$root" ] && [ -d /run/systemd/system ] && systemctl daemon-reload
    echo "suanli-agent removed${root:+ from $root}"
    exit 0
fi

install -D -m 0755 "$here/bin/suanli-agent" "$root/usr/bin/suanli-agent"
install -D -m 0644 "$here/suanli-agent.service" "$unit"
install -D -m 0644 "$here/suanli-agent.conf" "$root/usr/lib/sysusers.d/suanli-agent.conf"
if [ -e "$root/etc/suanli/agent.toml" ]; then
    echo "keeping $root/etc/suanli/agent.toml"
else
    install -D -m 0644 "$here/agent.toml" "$root/etc/suanli/agent.toml"
fi
if [ -z "$root" ]; then
    # The packages' own postinstall: the user, its device groups, daemon-reload.
    sh "$here/postinstall.sh" configure
elif command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers --root "$root" "$root/usr/lib/sysusers.d/suanli-agent.conf"
else
    useradd --root "$root" --system --user-group --no-create-home \
        --home-dir /var/lib/suanli-agent --shell /usr/sbin/nologin suanli-agent
fi
echo "suanli-agent installed${root:+ into $root}; next: suanli-agent join '<join string>' --install"
