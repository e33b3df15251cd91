#!/usr/bin/env bash
# Side-by-side benchmarks of hutch and its peers on the same work, in one run.
#   bench/run.sh [start]      (as root it re-runs itself as the test user hutch-sub)
# Needs: tests/host-setup.sh done (bubblewrap, crun, hyperfine), hutch built (cargo build --release).
# Prints each tool's median and its ratio to hutch.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
hutch=${HUTCH_BIN:-$here/../target/release/hutch}
[ -x "$hutch" ] || { echo "bench: build hutch first: cargo build --release" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then
  # The peers measured here, beyond what tests/host-setup.sh installs.
  for p in podman runc; do # also in tests/host-setup.sh
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
      || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
  done
  stage=/var/tmp/hutch-bench; mkdir -p "$stage"; install -m 0755 "$hutch" "$stage/hutch"; install -m 0755 "$0" "$stage/run.sh"
  exec runuser -u hutch-sub -- env -i HOME=/home/hutch-sub PATH=/usr/bin:/bin:/usr/sbin:/sbin HUTCH_BIN="$stage/hutch" bash "$stage/run.sh" "$@"
fi
for tool in hyperfine bwrap crun python3; do
  command -v $tool >/dev/null || { echo "bench: $tool is missing (run tests/host-setup.sh)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/hutch-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export XDG_RUNTIME_DIR=$work/run; mkdir -m 0700 "$XDG_RUNTIME_DIR"
rootfs=$work/rootfs; mkdir -p "$rootfs"/{bin,etc,proc,dev,sys,tmp}
cp /bin/busybox "$rootfs/bin/"; for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"; done
touch "$rootfs"/etc/{hosts,hostname,resolv.conf}

# crun: a rootless spec over the same rootfs, host network like the others.
mkdir -p "$work/crun"
(cd "$work/crun" && crun spec --rootless && python3 - "$rootfs" <<'PY'
import json, sys
c = json.load(open("config.json"))
c["root"] = {"path": sys.argv[1], "readonly": False}
c["process"].update(args=["/bin/true"], terminal=False)
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
c["linux"].pop("resources", None)
json.dump(c, open("config.json", "w"))
PY
)
# crun refuses hybrid cgroup layouts (v1 controllers + a cgroup2 mount), even
# with cgroups disabled; hide the cgroup mounts from it in a mount namespace.
# That wrapper (one unshare + mount, ~1 ms) is part of crun's time here.
crun_cmd="cd $work/crun && crun --cgroup-manager=disabled --root $work/crun/state run bench-\$\$ >/dev/null"
if grep -q ' /sys/fs/cgroup tmpfs' /proc/mounts; then
  crun_cmd="unshare --user --map-current-user --mount --keep-caps sh -c 'mount -t tmpfs none /sys/fs/cgroup && $crun_cmd' 2>/dev/null"
fi

# podman: crun refuses hybrid cgroups, so podman runs with runc where needed.
podman_cmd="podman run --rm --network host --rootfs $rootfs /bin/true"
grep -q ' /sys/fs/cgroup tmpfs' /proc/mounts && podman_cmd="podman --runtime runc run --rm --network host --rootfs $rootfs /bin/true"
peers=(-n bwrap "bwrap --unshare-all --share-net --bind $rootfs / --proc /proc --dev /dev --hostname b -- /bin/true"
       -n crun "sh -c \"$crun_cmd\"")
if command -v podman >/dev/null && $podman_cmd >/dev/null 2>&1; then
  peers+=(-n podman "$podman_cmd")
else
  echo "(podman skipped: not installed or cannot run here)"
fi

echo "== start latency: run /bin/true in a fresh container (busybox rootfs, host network)"
hyperfine -N --warmup 3 --runs ${RUNS:-30} --export-json "$work/start.json" \
  -n hutch "$hutch run --rm --rootfs $rootfs -- /bin/true" "${peers[@]}" >/dev/null
python3 - "$work/start.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
base = r["hutch"]["median"]
print(f"{'tool':8} {'median':>9} {'mean±sd':>16}  ratio to hutch")
for name, x in r.items():
    print(f"{name:8} {x['median']*1e3:7.2f}ms {x['mean']*1e3:8.2f}±{x['stddev']*1e3:5.2f}ms  {x['median']/base:5.2f}x")
PY
