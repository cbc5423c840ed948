#!/bin/sh
# @NAME@ preremove (deb prerm, rpm %preun). Rendered by packaging/build.sh.
set -e
case "$1" in
    # deb: remove; rpm: 0 packages left. An upgrade keeps the service running.
    remove | 0)
        if [ -d /run/systemd/system ]; then
            systemctl stop @NAME@.service >/dev/null 2>&1 || true
            systemctl disable @NAME@.service >/dev/null 2>&1 || true
        fi
        ;;
esac
exit 0
