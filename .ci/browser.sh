# Sourced by .ci/test: installs Debian's Chromium and a
# CJK font for the dashboard's browser test. Without them the browser tests fail,
# saying so.
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "zenhei"; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "browser: installing chromium and fonts-wqy-zenhei" >&2
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-wqy-zenhei; } >/dev/null 2>&1 \
            || echo "browser: install failed; the browser tests will fail" >&2
    else
        echo "browser: cannot install chromium here; the browser tests will fail" >&2
    fi
fi
