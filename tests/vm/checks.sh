# The checks of tests/vm.rs, as the unprivileged user `tester`. Each result
# is one "@@ name: value" line; the test asserts on them.
say() { echo "@@ $1: $(echo "$2" | tr '\n' '|')"; }
r=$HOME/rootfs
mkdir -p "$r/bin" "$r/etc"
cp /bin/busybox "$r/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$r/etc/passwd"
run() { "$HUTCH" run --network none --rootfs "$r" "$@"; }
cgroup_of() { "$HUTCH" inspect "$1" | sed -n 's/^ *"Cgroup": "\(.*\)",\{0,1\}$/\1/p'; }

# Without limit flags: no cgroup is asked for, nothing is said.
say plain "$(run --rm -- echo plain 2>&1)"

# A 64 MiB container that allocates 256 MiB is OOM-killed, and says so.
run --name oom --memory 64m -- dd if=/dev/zero of=/dev/null bs=256M count=1 2>"$HOME/oom.err"
say oom-status "$?"
say oom-note "$(grep hutch: "$HOME/oom.err")"
say oom-ps "$("$HUTCH" ps -a | grep ' oom$')"
say oom-inspect "$("$HUTCH" inspect oom | grep '"OOMKilled"')"
say oom-memory "$("$HUTCH" inspect oom | grep '"Memory"')"

# A fork bomb stops at its --pids-limit (the shell counts 1 of the 20);
# the host goes on.
run --name bomb --pids-limit 20 -- sh -c 'i=0; while [ $i -lt 100 ]; do sleep 60 & i=$((i+1)); echo $i; done' \
  >"$HOME/bomb.out" 2>"$HOME/bomb.err"
say bomb-status "$?"
say bomb-forks "$(tail -n 1 "$HOME/bomb.out")"
say bomb-error "$(cat "$HOME/bomb.err")"
say alive "$(run --rm -- echo alive 2>&1)"

# --cpus 0.5 throttles a busy loop; stats and inspect show the limits;
# exec joins the container's cgroup; rm removes it.
"$HUTCH" run -d --name busy --network none --cpus 0.5 --memory 100m --rootfs "$r" -- sh -c 'while :; do :; done' >/dev/null
say busy-start "$?"
sleep 4
cg=$(cgroup_of busy)
say busy-cgroup "$cg"
say busy-cpu-max "$(cat "$cg/container/cpu.max")"
say busy-throttled "$(grep -E '^(nr_throttled|usage_usec)' "$cg/container/cpu.stat")"
say busy-stats "$("$HUTCH" stats --no-stream busy | tail -n 1)"
say busy-inside "$("$HUTCH" exec busy sh -c 'cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max' 2>&1)"
say busy-inspect "$("$HUTCH" inspect busy | grep -E '"(NanoCpus|Enforced)"')"
"$HUTCH" rm -f busy >/dev/null
say busy-rm "$?"
say busy-cgroup-after-rm "$([ -e "$cg" ] && echo present || echo gone)"

# Inside a scope that is delegated already, hutch uses it in place.
say scoped "$(systemd-run --user --scope -p Delegate=yes --quiet "$HUTCH" run --rm --network none --pids-limit 30 \
  --rootfs "$r" -- cat /sys/fs/cgroup/pids.max 2>&1)"

# user@.service delegates cpu, memory and pids only: cpuset is refused in one line.
say cpuset "$(run --rm --cpuset-cpus 0 -- true 2>&1)"
say cpuset-status "$(run --rm --cpuset-cpus 0 -- true >/dev/null 2>&1; echo $?)"
