# Sourced by .ci/run (and usable by hand): installs Debian's Alertmanager,
# which the monitoring test forwards alerts to and reads them back from.
# Without it that test says it was skipped; everything else still runs.
if [ ! -x /usr/bin/prometheus-alertmanager ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "alertmanager: installing prometheus-alertmanager" >&2
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus-alertmanager; } >/dev/null 2>&1 \
            || echo "alertmanager: install failed; the forwarding test will be skipped" >&2
    else
        echo "alertmanager: cannot install it here; the forwarding test will be skipped" >&2
    fi
fi
