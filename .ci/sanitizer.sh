# Sourced by .ci/test: builds the agent with AddressSanitizer on the nightly
# toolchain into target/asan, for the test that loads every vendor stand-in
# into it (tests/tests/accelerators.rs). Without nightly that test fails,
# saying so.
if rustup run nightly rustc --version >/dev/null 2>&1; then
    asan_target=$(rustc -vV | sed -n 's/^host: //p')
    echo "sanitizer: building the agent with AddressSanitizer (nightly, $asan_target)" >&2
    RUSTFLAGS="-Zsanitizer=address" cargo +nightly build --quiet -p suanli-agent \
        --target "$asan_target" --target-dir target/asan
    export SUANLI_ASAN_AGENT="$PWD/target/asan/$asan_target/debug/suanli-agent"
else
    echo "sanitizer: no nightly toolchain; the AddressSanitizer test will fail" >&2
fi
