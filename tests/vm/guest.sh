# Runs in the guest at boot, as root, from the payload disk (/mnt/hutch):
# waits for the test user's systemd instance, then runs checks.sh as that
# user from a system service, which is not a delegated cgroup: hutch must
# ask the user's systemd for a scope, as it would under cron or Slurm.
for _ in $(seq 1 150); do [ -S /run/user/1001/systemd/private ] && break; sleep 0.2; done
echo "@@ user-manager: $([ -S /run/user/1001/systemd/private ] && echo up || echo missing)"
echo "@@ controllers: $(cat /sys/fs/cgroup/user.slice/user-1001.slice/user@1001.service/cgroup.controllers)"
cd /home/tester
runuser -u tester -- env -i HOME=/home/tester USER=tester PATH=/usr/bin:/bin XDG_RUNTIME_DIR=/run/user/1001 \
  HUTCH=/mnt/hutch/hutch sh /mnt/hutch/checks.sh
