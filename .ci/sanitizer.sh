# Sourced by .ci/test: builds the agent with AddressSanitizer on the nightly
# toolchain into target/asan, for the test that loads every vendor stand-in
# into it (tests/tests/accelerators.rs). The build runs in the background at
# low priority while the rest of the suite (mostly waiting on processes and
# sockets) runs; .ci/test waits for it before that one test. Without nightly
# the test fails, saying so.
asan_test=vendor_libraries_writing_their_newest_layouts_stay_inside_the_agents_buffers
asan_build=
if rustup run nightly rustc --version >/dev/null 2>&1; then
    asan_target=$(rustc -vV | sed -n 's/^host: //p')
    echo "sanitizer: building the agent with AddressSanitizer (nightly, $asan_target) in the background" >&2
    mkdir -p target
    RUSTFLAGS="-Zsanitizer=address" nice -n 19 cargo +nightly build --quiet -p suanli-agent \
        --target "$asan_target" --target-dir target/asan >target/asan-build.log 2>&1 &
    asan_build=$!
    export SUANLI_ASAN_AGENT="$PWD/target/asan/$asan_target/debug/suanli-agent"
else
    echo "sanitizer: no nightly toolchain; the AddressSanitizer test will fail" >&2
fi
