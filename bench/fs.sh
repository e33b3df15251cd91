#!/usr/bin/env bash
# The copy-on-write root filesystems side by side, in one run, rootless:
# the bare directory, kernel overlayfs (userxattr, in a user namespace),
# fuse-overlayfs and fuse-overlay, on the same layers.
#   bench/fs.sh            (as root it re-runs itself as the test user hutch-sub)
# Workloads: metadata walk (find -printf of size+inode), tar of the tree,
# sequential read of a 1 GiB lower file (first read, and a second one from
# the page cache), 10,000 new small files, copy-up of a 512 MiB lower file
# (append one byte), rm -rf of a lower tree, a build (make -j2 of a
# generated 300-file C project whose sources are in the lower layer), and
# 200 MiB written 4 KiB at a time (what logs, databases and compilers do).
# Each is run RUNS times (default 3) on a fresh mount; the median is printed
# with its ratio to fuse-overlay. LOADS="readbig build" picks workloads.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fo=${FUSE_OVERLAY_BIN:-$here/../target/release/fuse-overlay}
[ -x "$fo" ] || { echo "bench: build fuse-overlay first: cargo build --release -p fuse-overlay" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then
  stage=/var/tmp/hutch-bench; mkdir -p "$stage"; install -m 0755 "$fo" "$stage/fuse-overlay"; install -m 0755 "$0" "$stage/fs.sh"
  exec runuser -u hutch-sub -- env -i HOME=/home/hutch-sub PATH=/usr/bin:/bin:/usr/sbin:/sbin FUSE_OVERLAY_BIN="$stage/fuse-overlay" RUNS="${RUNS:-3}" LOADS="${LOADS:-}" bash "$stage/fs.sh" "$@"
fi
command -v fuse-overlayfs >/dev/null || { echo "bench: fuse-overlayfs is missing (apt-get install fuse-overlayfs)" >&2; exit 1; }
work=$(mktemp -d /var/tmp/hutch-fsbench.XXXXXX)
trap 'rm -rf "$work"' EXIT
command -v make >/dev/null && command -v cc >/dev/null || { echo "bench: the build workload needs make and a C compiler (apt-get install build-essential)" >&2; exit 1; }
exec unshare --user --map-root-user --mount bash -s "$work" "$fo" "${RUNS:-3}" "${LOADS:-}" <<'INNER'
set -euo pipefail
work=$1 fo=$2 runs=$3 only=$4
lower=$work/lower; mkdir -p "$lower/usr"
echo "preparing the lower layer (a copy of /usr/lib/python3* and /usr/share/doc, a 1 GiB and a 512 MiB file)…" >&2
cp -a /usr/lib/python3* "$lower/usr/" 2>/dev/null || true
cp -a /usr/share/doc "$lower/usr/" 2>/dev/null || true
mkdir -p "$lower/tree"; cp -a /usr/share/doc/. "$lower/tree/" 2>/dev/null || true
head -c 1G /dev/zero > "$lower/big"; head -c 512M /dev/zero > "$lower/copy512"
mkdir -p "$lower/proj/include"
for h in $(seq 40); do printf '#pragma once\n#include <stdio.h>\n#include <string.h>\nstatic inline int h%d(int x) { return x * %d; }\n' "$h" "$h" > "$lower/proj/include/h$h.h"; done
for c in $(seq 300); do
  { for h in $(seq 40); do echo "#include \"h$h.h\""; done
    printf 'int f%d(const char *s) { char b[64]; snprintf(b, sizeof b, "%%s%d", s); return (int)strlen(b) + h%d(%d); }\n' "$c" "$c" $(( c % 40 + 1 )) "$c"; } > "$lower/proj/f$c.c"
done
printf 'int main(void) { return 0; }\n' > "$lower/proj/main.c"
printf 'SRC := $(wildcard *.c)\nprog: $(SRC:.c=.o)\n\t$(CC) -o $@ $^\n%%.o: %%.c\n\t$(CC) -O1 -Iinclude -c -o $@ $<\n' > "$lower/proj/Makefile"
echo "$(find "$lower" | wc -l) entries, $(du -sh "$lower" | cut -f1)" >&2

mnt=$work/mnt; mkdir -p "$mnt"
fresh_mount() { # KIND
  umount "$mnt" 2>/dev/null || true
  rm -rf "$work/upper" "$work/work" "$work/bare-new"; mkdir -p "$work/upper" "$work/work"
  case $1 in
    bare) mount --bind "$lower" "$mnt" ;;
    kernel) mount -t overlay overlay -o "lowerdir=$lower,upperdir=$work/upper,workdir=$work/work,userxattr" "$mnt" ;;
    fuse-overlayfs) fuse-overlayfs -o "lowerdir=$lower,upperdir=$work/upper,workdir=$work/work" "$mnt" ;;
    fuse-overlay) "$fo" -o "lowerdir=$lower,upperdir=$work/upper,workdir=$work/work" "$mnt" ;;
  esac
}
declare -A result
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
walk() { find "$mnt" -printf '%s %i\n' >/dev/null; }
tarall() { tar cf - -C "$mnt" usr | cat >/dev/null; }
readbig() { dd if="$mnt/big" of=/dev/null bs=1M status=none; }
readwarm() { readbig; }
prepare_readwarm() { readbig; }
build() { make -C "$mnt/proj" -j2 prog; }
create() { python3 -c "
import os; d='$mnt/new'; os.mkdir(d)
for i in range(10000):
    with open(f'{d}/f{i}', 'w') as f: f.write('x')"; }
# ext4 without a journal skips inodes freed in the last 5 s or whose table
# block is still dirty, scanning for others: the previous run's removals
# would slow whichever mount comes next.
prepare_create() { sync; sleep 6; }
copyup() { echo x >> "$mnt/copy512"; }
smallwrites() { dd if=/dev/zero of="$mnt/written" bs=4k count=51200 status=none; }
rmtree() { rm -rf "$mnt/tree"; }
kinds=(bare kernel fuse-overlayfs fuse-overlay)
loads=(walk tarall readbig readwarm create copyup rmtree build smallwrites)
[ -n "$only" ] && read -ra loads <<<"$only"
# The kinds take turns run by run, so a slow spell of this machine hits
# them all rather than one.
declare -A times
for load in "${loads[@]}"; do
  for _ in $(seq "$runs"); do
    for kind in "${kinds[@]}"; do
      case $kind,$load in bare,copyup | bare,rmtree | bare,create | bare,build | bare,smallwrites) continue ;; esac
      fresh_mount "$kind" || continue
      if declare -F "prepare_$load" >/dev/null; then "prepare_$load"; fi
      times[$load,$kind]+="$(ms "$load") "
      umount "$mnt" 2>/dev/null || true
    done
  done
  for kind in "${kinds[@]}"; do
    read -ra t <<<"${times[$load,$kind]:-}"
    [ ${#t[@]} -gt 0 ] && result[$load,$kind]=$(printf '%s\n' "${t[@]}" | sort -n | sed -n "$(( (${#t[@]} + 1) / 2 ))p")
  done
done
printf '%-9s' workload; for k in "${kinds[@]}"; do printf ' %16s' "$k"; done; printf '   fuse-overlayfs/fuse-overlay  fuse-overlay/kernel\n'
for load in "${loads[@]}"; do
  printf '%-9s' "$load"
  for k in "${kinds[@]}"; do printf ' %14sms' "${result[$load,$k]:--}"; done
  f=${result[$load,fuse-overlay]:-0} p=${result[$load,fuse-overlayfs]:-0} k=${result[$load,kernel]:-0}
  python3 -c "f,p,k=$f,$p,$k; print(f'   {p/f if f else 0:27.2f}x  {f/k if k else 0:18.2f}x')"
done
INNER
