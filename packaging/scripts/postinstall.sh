#!/bin/sh
# @NAME@ postinstall (deb postinst, rpm %post). Rendered by packaging/build.sh.
set -e
user=@NAME@
if ! getent passwd "$user" >/dev/null 2>&1; then
    if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers /usr/lib/sysusers.d/@NAME@.conf
    else
        useradd --system --user-group --no-create-home \
            --home-dir /var/lib/@NAME@ --shell /usr/sbin/nologin \
            --comment "Suanli service" "$user"
    fi
fi
# Accelerator device nodes (AMD/Hygon /dev/kfd and /dev/dri, some vendors'
# management nodes) belong to these groups where they exist.
for group in @GROUPS@; do
    if getent group "$group" >/dev/null 2>&1; then
        usermod -a -G "$group" "$user" || true
    fi
done
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    # An upgrade restarts a running service; a first install starts nothing.
    systemctl try-restart @NAME@.service >/dev/null 2>&1 || true
fi
exit 0
