#!/usr/bin/env bash
# hutch on a fresh Debian 12 machine, as root:
#   tests/ci.sh demo   install, build, and run a container from a busybox image made here
#   tests/ci.sh test   install, build, and run the whole suite as unprivileged users
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}

[ "$(id -u)" = 0 ] || { echo "tests/ci.sh: run as root (sudo): it installs packages and creates the test users" >&2; exit 1; }
bash tests/host-setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || { echo "tests/ci.sh: cargo is missing: install Rust (rustup or apt-get install cargo)" >&2; exit 1; }

# Binaries go where the unprivileged users can run them (the checkout may sit in /root).
stage=/var/tmp/hutch-ci
rm -rf "$stage"; mkdir -p "$stage/bin"; chmod 0755 "$stage" "$stage/bin"

as_user() { # USER CMD… — a login-like environment without root's variables
  local user=$1; shift
  local home; home=$(getent passwd "$user" | cut -d: -f6)
  runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    HUTCH_BIN="$stage/bin/hutch" FUSE_OVERLAY_BIN="$stage/fuse-overlay" HUTCH_VM_SCRIPTS="$stage/vm" \
    HUTCH_TEST_DEB_DIR="$stage/deb" "$@"
}

if [ "$mode" = demo ]; then
  cargo build --release --locked -q
  install -m 0755 target/release/hutch "$stage/bin/hutch"
  as_user hutch-sub bash -c '
    set -e
    r=$(mktemp -d)/rootfs; mkdir -p "$r/bin"; cp /bin/busybox "$r/bin/"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
    mkdir -p "$r/etc"; echo "root:x:0:0:root:/root:/bin/sh" > "$r/etc/passwd"
    echo "+ hutch run --rm --rootfs $r -- sh -c ..."
    "$HUTCH_BIN" run --rm --hostname demo --rootfs "$r" -- /bin/sh -c \
      "echo \"hello from \$(hostname): I am \$(id -un) as PID \$\$\"; cat /proc/self/uid_map"
    rm -rf "$(dirname "$r")"'
  exit 0
fi

# The workspace lints (unsafe only in sys modules, no lossy casts) hold.
cargo clippy --locked -q --workspace --all-targets -- -D warnings
# Build once: the library's unit tests, the integration tests, the binary.
cargo build --locked -q --workspace --bins
cargo test --locked --workspace --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' > "$stage/tests.txt"
install -m 0755 target/debug/hutch "$stage/bin/hutch"
install -m 0755 target/debug/fuse-overlay "$stage/fuse-overlay"
install -d -m 0755 "$stage/vm" && install -m 0644 tests/vm/*.sh "$stage/vm/"
# The release package, made from these binaries (tests/run.rs checks it).
install -d -m 0755 "$stage/deb" && bash packaging/deb.sh --bin-dir target/debug --out "$stage/deb" >/dev/null
chmod 0644 "$stage"/deb/*.deb
while read -r t; do install -m 0755 "$t" "$stage/bin/$(basename "$t")"; done < "$stage/tests.txt"

# podman's results for tests/build.rs, shared by the two users (see there).
install -d -m 1777 /var/tmp/hutch-podman-refs
passed=0; failed=0
log=$stage/log; : > "$log"; chmod 0666 "$log"
run_suite() { # USER SUBIDS
  local user=$1 subids=$2 t
  echo "== the suite as $user (subordinate ids: $subids)"
  for t in "$stage"/bin/*; do
    case "$(basename "$t")" in hutch|vm-*) continue ;; esac
    echo "-- $(basename "$t")"
    # Bounded: a hang fails its binary (no result line) instead of the whole run.
    as_user "$user" env HUTCH_TEST_SUBIDS="$subids" HUTCH_TEST_TMP="/tmp/hutch-test-$user" \
      timeout -k 10 900 "$t" --test-threads=2 2>&1 | tee -a "$log" || true
  done
}
run_suite hutch-sub yes
run_suite hutch-nosub no
# The systemd guest's checks do not depend on the host's user: once.
for t in "$stage"/bin/vm-*; do
  echo "-- $(basename "$t") (a qemu guest with systemd)"
  as_user hutch-sub env HUTCH_TEST_TMP=/tmp/hutch-test-hutch-sub timeout -k 10 900 "$t" 2>&1 | tee -a "$log" || true
done

read -r passed failed < <(awk '/^test result:/ { for (i=1;i<=NF;i++) { if ($(i)=="passed;") p+=$(i-1); if ($(i)=="failed;") f+=$(i-1) } } END { print p+0, f+0 }' "$log")
runs=$(grep -c '^test result:' "$log" || true)
expected=$(( 2 * $(wc -l < "$stage/tests.txt") - 1 ))
if [ "$runs" -ne "$expected" ]; then
  echo "only $runs of $expected test binaries reported a result (one crashed?)"; failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
