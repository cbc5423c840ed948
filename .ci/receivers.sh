# Sourced by .ci/test: installs Debian's Alertmanager,
# which the monitoring test forwards alerts to and reads them back from, and
# aiosmtpd, the SMTP server the mail test sends to. Without them those
# tests say they were skipped; everything else still runs.
if [ ! -x /usr/bin/prometheus-alertmanager ] || ! /usr/bin/python3 -c "import aiosmtpd" 2>/dev/null; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "monitoring: installing prometheus-alertmanager and python3-aiosmtpd" >&2
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus-alertmanager python3-aiosmtpd; } >/dev/null 2>&1 \
            || echo "monitoring: install failed; the Alertmanager and mail tests will fail" >&2
    else
        echo "monitoring: cannot install them here; the Alertmanager and mail tests will fail" >&2
    fi
fi
