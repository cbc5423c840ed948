#!/bin/sh
# @NAME@ postremove (deb postrm, rpm %postun). Rendered by packaging/build.sh.
set -e
case "$1" in
    # Purging is asking for nothing to be left: the state directory goes too
    # (dpkg removes the configuration itself). The user stays, as Debian's
    # policy asks: files it owned elsewhere must not pass to a reused uid.
    purge)
        rm -rf /var/lib/@NAME@
        # What `suanli-agent join --install` wrote beside the unit.
        rm -f /etc/systemd/system/@NAME@.service.d/50-network.conf
        rmdir /etc/systemd/system/@NAME@.service.d 2>/dev/null || true
        rmdir /etc/suanli 2>/dev/null || true
        ;;
esac
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
