#!/usr/bin/env bash
# Side-by-side benchmarks of hutch and its peers on the same work, in one run.
#   bench/run.sh [start|net|life|pull|build|push|all]   (as root it re-runs itself as the test user hutch-sub)
#     start  start latency: hutch vs bwrap, crun, podman, from a root directory and from an
#            image (vs podman, with and without a network), and 16 image starts at once
#     net    iperf3 throughput through slirp4netns and pasta: hutch vs podman vs host loopback
#     life   a container's round trip: run -d, exec true, rm -f: hutch vs podman
#     pull   pull + unpack of a 3-layer image (~185 MB, 10k files) from a local docker-registry:
#            hutch vs podman pull vs skopeo copy to an OCI dir (download only, no unpack)
#     push   push of the pull benchmark's image to an empty local registry, and again:
#            hutch vs podman push vs skopeo copy from an OCI dir
#     build  hutch build vs podman build of the same Dockerfile and 10,000-file context: cold
#            (--no-cache), fully cached, and after one file of the context changed
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
what=${1:-all}
for tool in hyperfine bwrap crun python3 iperf3 skopeo docker-registry; do
  command -v $tool >/dev/null || { echo "bench: $tool is missing (run tests/host-setup.sh)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/hutch-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export XDG_RUNTIME_DIR=$work/run; mkdir -m 0700 "$XDG_RUNTIME_DIR"
rootfs=$work/rootfs; mkdir -p "$rootfs"/{bin,etc,proc,dev,sys,tmp}
cp /bin/busybox "$rootfs/bin/"; for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"; done
touch "$rootfs"/etc/{hosts,hostname,resolv.conf}

podman_runtime=(); grep -q ' /sys/fs/cgroup tmpfs' /proc/mounts && podman_runtime=(--runtime runc)

bench_start() {
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
    -n hutch "$hutch run --rm --network host --rootfs $rootfs -- /bin/true" "${peers[@]}" >/dev/null
  ratios "$work/start.json" hutch

  echo "== start latency with a network of the container's own (namespace + user-mode helper)"
  local net_peers=()
  command -v podman >/dev/null && $podman_cmd >/dev/null 2>&1 && net_peers+=(-n "podman slirp4netns" \
    "podman ${podman_runtime[*]} run --rm --network slirp4netns --rootfs $rootfs /bin/true")
  hyperfine -N --warmup 3 --runs ${RUNS:-30} --export-json "$work/start-net.json" \
    -n "hutch pasta" "$hutch run --rm --network pasta --rootfs $rootfs -- /bin/true" \
    -n "hutch slirp4netns" "$hutch run --rm --network slirp4netns --rootfs $rootfs -- /bin/true" \
    "${net_peers[@]}" >/dev/null
  ratios "$work/start-net.json" "hutch slirp4netns"
  bench_image_start
}

# The same busybox image in hutch's store and in podman's: run --rm IMAGE true.
bench_image_start() {
  local store=$work/image-store img=bench/box:1
  tar -C "$rootfs" -cf "$work/box-rootfs.tar" .
  HUTCH_ROOT=$store "$hutch" import "$work/box-rootfs.tar" $img >/dev/null
  HUTCH_ROOT=$store "$hutch" save -o "$work/box.tar" $img
  local hutch_run="env HUTCH_ROOT=$store $hutch run --rm"
  local podman=(podman "${podman_runtime[@]}") peers=() net_peers=() driver=""
  if command -v podman >/dev/null && podman load -q -i "$work/box.tar" >/dev/null 2>&1 \
      && "${podman[@]}" run --rm --network none docker.io/$img true >/dev/null 2>&1; then
    driver=$(podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null)
    peers+=(-n "podman ($driver)" "${podman[*]} run --rm --network none docker.io/$img true")
    net_peers+=(-n "podman slirp4netns" "${podman[*]} run --rm --network slirp4netns docker.io/$img true")
  else
    echo "(podman skipped: not installed or cannot run the image here)"
  fi
  echo "== image start: run --rm IMAGE true (busybox image), no network; hutch's two storage drivers"
  hyperfine -N --warmup 3 --runs ${RUNS:-30} --export-json "$work/image.json" \
    -n "hutch (overlay)" "$hutch_run --storage-driver overlay --network none $img true" \
    -n "hutch (fuse-overlay)" "$hutch_run --storage-driver fuse-overlay --network none $img true" \
    "${peers[@]}" >/dev/null
  ratios "$work/image.json" "hutch (overlay)"
  echo "== image start with a network of the container's own"
  hyperfine -N --warmup 3 --runs ${RUNS:-30} --export-json "$work/image-net.json" \
    -n "hutch pasta" "$hutch_run --network pasta $img true" \
    -n "hutch slirp4netns" "$hutch_run --network slirp4netns $img true" "${net_peers[@]}" >/dev/null
  ratios "$work/image-net.json" "hutch slirp4netns"
  echo "== 16 image starts at once vs one (no network; $(nproc) cores, so CPU alone makes it $((16 / $(nproc)))x)"
  hyperfine -N --warmup 2 --runs ${RUNS_PARALLEL:-10} --export-json "$work/parallel.json" \
    -n "1 start" "$hutch_run --network none $img true" \
    -n "16 at once" "sh -c 'for i in \$(seq 16); do $hutch_run --network none $img true & done; wait'" >/dev/null
  ratios "$work/parallel.json" "1 start"
  if [ -n "$driver" ]; then
    echo "== the same 16 at once with podman ($driver), against hutch's 16"
    hyperfine -N --warmup 1 --runs ${RUNS_PARALLEL:-5} --export-json "$work/parallel-podman.json" \
      -n "hutch 16 at once" "sh -c 'for i in \$(seq 16); do $hutch_run --network none $img true & done; wait'" \
      -n "podman 16 at once" "sh -c 'for i in \$(seq 16); do ${podman[*]} run --rm --network none docker.io/$img true & done; wait'" >/dev/null
    ratios "$work/parallel-podman.json" "hutch 16 at once"
  fi
  [ -n "$driver" ] && podman rmi -f docker.io/$img >/dev/null 2>&1
  "$hutch" unshare rm -rf "$store" 2>/dev/null || true
}

# Prints each hyperfine result's median and its ratio to BASE's.
ratios() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
base = r[sys.argv[2]]["median"]
print(f"{'tool':18} {'median':>9} {'mean±sd':>16}  ratio to {sys.argv[2]}")
for name, x in r.items():
    print(f"{name:18} {x['median']*1e3:7.2f}ms {x['mean']*1e3:8.2f}±{x['stddev']*1e3:5.2f}ms  {x['median']/base:5.2f}x")
PY
}

# iperf3 with its libraries, for the containers.
cp --parents $(ldd /usr/bin/iperf3 | awk '/=>/ {print $3} /ld-linux/ {print $1}') "$rootfs"
cp /usr/bin/iperf3 "$rootfs/bin/"

bench_net() {
  local secs=${SECS:-4} port=15201 hp=15202 results=$work/net.txt
  : > "$results"
  gbps() { python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9, 2))'; }
  record() { echo "$1 $2" >> "$results"; }
  # podman 4.3 (Debian 12) has no pasta network (podman 4.4 added it).
  local podman_drivers=""
  if command -v podman >/dev/null; then
    for driver in slirp4netns pasta; do
      podman "${podman_runtime[@]}" run --rm --network $driver --rootfs "$rootfs" true >/dev/null 2>&1 && podman_drivers+=" $driver"
    done
  fi
  iperf3 -s -B 127.0.0.1 -p $port -D --pidfile "$work/iperf.pid"; sleep 0.3
  record "host-loopback" "$(iperf3 -c 127.0.0.1 -p $port -t $secs -J | gbps)"
  for driver in slirp4netns pasta; do
    # container -> host: the server on the host's loopback.
    local to_host=10.0.2.2 allow=slirp4netns:allow_host_loopback=true
    [ $driver = pasta ] && to_host=127.0.0.1 allow=pasta:-T,$port
    record "hutch-$driver-to-host" "$("$hutch" run --rm --network $allow --rootfs "$rootfs" -- iperf3 -c $to_host -p $port -t $secs -J | gbps)"
    if [[ " $podman_drivers " == *" $driver "* ]]; then
      record "podman-$driver-to-host" "$(podman "${podman_runtime[@]}" run --rm --network $allow --rootfs "$rootfs" iperf3 -c $to_host -p $port -t $secs -J 2>/dev/null | gbps)"
    fi
    # host -> container: a published port.
    "$hutch" run --rm --network $driver -p 127.0.0.1:$hp:5201 --rootfs "$rootfs" -- iperf3 -s -1 >/dev/null & sleep 1
    record "hutch-$driver-from-host" "$(iperf3 -c 127.0.0.1 -p $hp -t $secs -J | gbps)"; wait
    if [[ " $podman_drivers " == *" $driver "* ]]; then
      podman "${podman_runtime[@]}" run --rm --network $driver -p 127.0.0.1:$hp:5201 --rootfs "$rootfs" iperf3 -s -1 >/dev/null 2>&1 & sleep 2
      record "podman-$driver-from-host" "$(iperf3 -c 127.0.0.1 -p $hp -t $secs -J | gbps)"; wait
    fi
  done
  kill "$(cat "$work/iperf.pid")" 2>/dev/null || true
  echo "== network throughput (iperf3, ${secs}s each, Gbit/s; ratios to the host loopback and hutch/podman)"
  python3 - "$results" <<'PY'
import sys
r = dict(l.split() for l in open(sys.argv[1]) if len(l.split()) == 2)
r = {k: float(v) for k, v in r.items()}
host = r["host-loopback"]
print(f"{'path':34} {'Gbit/s':>7} {'/loopback':>9} {'hutch/podman':>12}")
print(f"{'host loopback':34} {host:7.2f} {1:9.2f}")
for driver in ("slirp4netns", "pasta"):
    for way in ("to-host", "from-host"):
        h, p = r.get(f"hutch-{driver}-{way}"), r.get(f"podman-{driver}-{way}")
        ratio = f"{h/p:12.2f}" if h and p else f"{'-':>12}"
        print(f"{'hutch ' + driver + ' ' + way:34} {h or 0:7.2f} {(h or 0)/host:9.2f} {ratio}")
        if p is not None:
            print(f"{'podman ' + driver + ' ' + way:34} {p:7.2f} {p/host:9.2f}")
        else:
            print(f"{'podman ' + driver + ' ' + way:34}   (podman here has no {driver} network)")
PY
}

# A docker-registry on 127.0.0.1:PORT storing in $work/DIR (no blob cache,
# so emptying DIR empties it); its pid in $registry_pid.
start_registry() { # PORT DIR
  mkdir -p "$work/$2"
  printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
    "$work/$2" "127.0.0.1:$1" > "$work/$2.yml"
  docker-registry serve "$work/$2.yml" >/dev/null 2>&1 & registry_pid=$!
  sleep 1
}

# The pull and push benchmarks' image: busybox, Python's library, the C
# headers, as three gzip layers, in an OCI layout at $work/layout.
make_layers_image() {
  [ -f "$work/layout/index.json" ] && return 0
  # The image: busybox, Python's library, the C headers, as three gzip layers.
  python3 - "$work/layout" "$rootfs" <<'PY'
import hashlib, io, json, os, sys, tarfile, gzip
out, rootfs = sys.argv[1], sys.argv[2]
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return f"sha256:{d}", len(data)
layers, diff_ids = [], []
for src, arc in ((f"{rootfs}/bin", "bin"), ("/usr/lib/python3.11", "usr/lib/python3.11"), ("/usr/include", "usr/include")):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.add(src, arcname=arc)
    diff_ids.append("sha256:" + hashlib.sha256(raw.getvalue()).hexdigest())
    d, n = blob(gzip.compress(raw.getvalue(), 6))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cd, cn = blob(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn}, "layers": layers}).encode()
md, mn = blob(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
    "size": mn, "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
PY
}

bench_pull() {
  local image=127.0.0.1:15300/bench/layers:1 registry_pid
  start_registry 15300 registry
  make_layers_image
  skopeo copy -q --dest-tls-verify=false "oci:$work/layout:1" "docker://$image"
  echo "== pull + unpack of a 3-layer image (~185 MB, 10k files) from a local registry, into an empty store each time"
  local peers=(-n "skopeo copy (no unpack)" --prepare "rm -rf $work/skopeo-out"
               "skopeo copy -q --src-tls-verify=false docker://$image oci:$work/skopeo-out:1")
  # podman with its default storage driver here, and with kernel overlay.
  local podman_vfs=(podman --root "$work/podman-root" --runroot "$work/podman-run")
  local podman_overlay=(podman --root "$work/podman-ovl" --runroot "$work/podman-ovl-run" --storage-driver overlay)
  local p
  for p in vfs overlay; do
    local -n cmd=podman_$p
    if command -v podman >/dev/null && "${cmd[@]}" pull -q --tls-verify=false "$image" >/dev/null 2>&1; then
      peers+=(-n "podman pull ($("${cmd[@]}" info --format '{{.Store.GraphDriverName}}' 2>/dev/null))" --prepare "${cmd[*]} rmi -a -f"
              "${cmd[*]} pull -q --tls-verify=false $image")
    else
      echo "(podman with $p skipped: cannot pull here)"
    fi
  done
  hyperfine -N --warmup 1 --runs ${RUNS_PULL:-5} --export-json "$work/pull.json" \
    -n "hutch pull" --prepare "$hutch unshare rm -rf $work/hutch-store" "env HUTCH_ROOT=$work/hutch-store $hutch pull -q $image" \
    "${peers[@]}" >/dev/null
  ratios "$work/pull.json" "hutch pull"
  kill $registry_pid 2>/dev/null || true
  "${podman_vfs[@]}" rmi -a -f >/dev/null 2>&1 || true
  "${podman_overlay[@]}" rmi -a -f >/dev/null 2>&1 || true
  "$hutch" unshare rm -rf "$work/hutch-store" "$work/podman-root" "$work/podman-ovl" 2>/dev/null || true
}

bench_build() {
  local store=$work/build-store img=bench/box:1 ctx=$work/build-ctx
  tar -C "$rootfs" -cf "$work/box-rootfs.tar" .
  HUTCH_ROOT=$store "$hutch" import "$work/box-rootfs.tar" $img >/dev/null
  HUTCH_ROOT=$store "$hutch" save -o "$work/box.tar" $img
  # A context of 10,000 small files (100 directories of 100), and a Dockerfile
  # with the usual shape: settings, a COPY of the sources, two RUNs.
  mkdir -p "$ctx"
  python3 - "$ctx" <<'PY'
import os, sys
ctx = sys.argv[1]
for d in range(100):
    os.makedirs(f"{ctx}/src/d{d}", exist_ok=True)
    for f in range(100):
        open(f"{ctx}/src/d{d}/f{f}.txt", "w").write(f"file {d}/{f}\n" * 4)
open(f"{ctx}/Dockerfile", "w").write(
    "FROM docker.io/bench/box:1\nENV APP=/app\nWORKDIR /app\nCOPY src /app/src\n"
    "RUN find /app/src -type f | wc -l > /app/count && mkdir -p /out\n"
    "RUN for i in $(seq 100); do echo $i > /out/f$i; done\nLABEL bench=build\nCMD [\"cat\", \"/app/count\"]\n")
PY
  local hb="env HUTCH_ROOT=$store $hutch build -q --network none -t bench/built:1"
  local podman=(podman "${podman_runtime[@]}") peers_cold=() peers_cached=() peers_change=()
  if command -v podman >/dev/null && podman load -q -i "$work/box.tar" >/dev/null 2>&1 \
      && "${podman[@]}" build -q --network none -t bench/built:1 "$ctx" >/dev/null 2>&1; then
    local pb="${podman[*]} build -q --network none -t bench/built:1"
    peers_cold+=(-n "podman build" "$pb --no-cache $ctx")
    peers_cached+=(-n "podman build" "$pb $ctx")
    peers_change+=(-n "podman build" --prepare "sh -c 'date +%N > $ctx/src/d7/f7.txt'" "$pb $ctx")
  else
    echo "(podman skipped: not installed or cannot build here)"
  fi
  $hb "$ctx" >/dev/null
  echo "== cold build (--no-cache): 10,000-file context, COPY + 2 RUNs"
  hyperfine -N --warmup 1 --runs ${RUNS_BUILD:-5} --export-json "$work/build-cold.json" \
    -n "hutch build" "$hb --no-cache $ctx" "${peers_cold[@]}" >/dev/null
  ratios "$work/build-cold.json" "hutch build"
  echo "== fully cached rebuild"
  hyperfine -N --warmup 2 --runs ${RUNS_BUILD:-10} --export-json "$work/build-cached.json" \
    -n "hutch build" "$hb $ctx" "${peers_cached[@]}" >/dev/null
  ratios "$work/build-cached.json" "hutch build"
  echo "== one file of the 10,000 changed: the COPY and what follows run again"
  hyperfine -N --warmup 1 --runs ${RUNS_BUILD:-5} --export-json "$work/build-change.json" \
    -n "hutch build" --prepare "sh -c 'date +%N > $ctx/src/d7/f7.txt'" "$hb $ctx" "${peers_change[@]}" >/dev/null
  ratios "$work/build-change.json" "hutch build"
  podman rmi -f bench/built:1 docker.io/$img >/dev/null 2>&1 || true
  podman image prune -f >/dev/null 2>&1 || true
  "$hutch" unshare rm -rf "$store" 2>/dev/null || true
}

bench_push() {
  local source=127.0.0.1:15310/bench/layers:1 target=127.0.0.1:15311/bench/pushed:1 registry_pid source_pid
  start_registry 15310 push-source; source_pid=$registry_pid
  make_layers_image
  skopeo copy -q --dest-tls-verify=false "oci:$work/layout:1" "docker://$source"
  start_registry 15311 push-target
  local store=$work/push-store empty="rm -rf $work/push-target/docker"
  HUTCH_ROOT=$store "$hutch" pull -q "$source" >/dev/null
  local peers_fresh=(-n "skopeo copy (OCI dir)" --prepare "$empty" "skopeo copy -q --dest-tls-verify=false oci:$work/layout:1 docker://$target")
  local peers_again=(-n "skopeo copy (OCI dir)" "skopeo copy -q --dest-tls-verify=false oci:$work/layout:1 docker://$target")
  local podman=(podman --root "$work/podman-push" --runroot "$work/podman-push-run")
  if command -v podman >/dev/null && "${podman[@]}" pull -q --tls-verify=false "$source" >/dev/null 2>&1; then
    peers_fresh+=(-n "podman push ($("${podman[@]}" info --format '{{.Store.GraphDriverName}}' 2>/dev/null))" --prepare "$empty"
                  "${podman[*]} push -q --tls-verify=false $source $target")
    peers_again+=(-n "podman push" "${podman[*]} push -q --tls-verify=false $source $target")
  else
    echo "(podman skipped: cannot pull here)"
  fi
  echo "== push of the 3-layer image (~185 MB) to an empty registry"
  hyperfine -N --warmup 1 --runs ${RUNS_PUSH:-5} --export-json "$work/push.json" \
    -n "hutch push" --prepare "$empty" "env HUTCH_ROOT=$store $hutch push -q $source $target" "${peers_fresh[@]}" >/dev/null
  ratios "$work/push.json" "hutch push"
  echo "== the same push again: the registry has every blob"
  hyperfine -N --warmup 1 --runs ${RUNS_PUSH:-10} --export-json "$work/push-again.json" \
    -n "hutch push" "env HUTCH_ROOT=$store $hutch push -q $source $target" "${peers_again[@]}" >/dev/null
  ratios "$work/push-again.json" "hutch push"
  kill "$registry_pid" "$source_pid" 2>/dev/null || true
  "${podman[@]}" rmi -a -f >/dev/null 2>&1 || true
  "$hutch" unshare rm -rf "$store" "$work/podman-push" 2>/dev/null || true
}

bench_life() {
  local store=$work/life-store
  local hutch_life="set -e; id=\$($hutch --root $store run -d --network host --rootfs $rootfs -- sleep 1000); $hutch --root $store exec \$id true; $hutch --root $store rm -f \$id >/dev/null"
  local peers=()
  local podman=(podman "${podman_runtime[@]}")
  if command -v podman >/dev/null && "${podman[@]}" run --rm --network host --rootfs "$rootfs" true >/dev/null 2>&1; then
    peers+=(-n podman "sh -c 'set -e; id=\$(${podman[*]} run -d --network host --rootfs $rootfs sleep 1000); ${podman[*]} exec \$id true; ${podman[*]} rm -f -t 0 \$id >/dev/null'")
  else
    echo "(podman skipped: not installed or cannot run here)"
  fi
  echo "== a container's round trip: run -d sleep, exec true, rm -f (busybox rootfs, host network)"
  hyperfine -N --warmup 2 --runs ${RUNS_LIFE:-15} --export-json "$work/life.json" \
    -n hutch "sh -c '$hutch_life'" "${peers[@]}" >/dev/null
  ratios "$work/life.json" hutch
  "$hutch" unshare rm -rf "$store" 2>/dev/null || true
}

case $what in
  start) bench_start ;;
  net) bench_net ;;
  life) bench_life ;;
  pull) bench_pull ;;
  build) bench_build ;;
  push) bench_push ;;
  all) bench_start; bench_net; bench_life; bench_pull; bench_build; bench_push ;;
  *) echo "bench: unknown benchmark $what (start, net, life, pull, build, push or all)" >&2; exit 1 ;;
esac
