// What the sandbox lets a process do: one line per attack, "name<TAB>result".
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void verdict(const char *attack, long result) {
    if (result < 0)
        printf("%s\tdenied (%s)\n", attack, strerrorname_np(errno));
    else
        printf("%s\tallowed\n", attack);
}

/* A masked file reads empty or not at all. */
static void read_file(const char *attack, const char *path) {
    char buf[64];
    int fd = open(path, O_RDONLY);
    if (fd < 0) { verdict(attack, -1); return; }
    long n = read(fd, buf, sizeof buf);
    if (n <= 0) printf("%s\tdenied (%s)\n", attack, n == 0 ? "empty" : strerrorname_np(errno));
    else verdict(attack, 0);
}

static void list_dir(const char *attack, const char *path) {
    DIR *d = opendir(path);
    if (!d) { verdict(attack, -1); return; }
    int n = 0; struct dirent *e;
    while ((e = readdir(d))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (n == 0) printf("%s\tdenied (empty)\n", attack); else verdict(attack, 0);
}

int main(void) {
    printf("share the caller's terminal\t%s\n", isatty(1) ? "allowed" : "denied (pipe)");
    printf("gain privileges through setuid files\t%s\n",
           prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? "denied (no_new_privs)" : "allowed");
    verdict("use the kernel keyring (keyctl)", syscall(SYS_keyctl, 0, -3, 0));
    struct io_uring_params p; memset(&p, 0, sizeof p);
    verdict("set up io_uring", syscall(SYS_io_uring_setup, 1, &p));
    verdict("create a nested user namespace", unshare(CLONE_NEWUSER));
    verdict("mount a filesystem", mount("none", "/tmp", "tmpfs", 0, NULL));
    verdict("open a raw socket (CAP_NET_RAW)", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    verdict("open /proc/sys for writing", open("/proc/sys/kernel/domainname", O_WRONLY));
    read_file("read /proc/timer_list", "/proc/timer_list");
    read_file("read /proc/keys", "/proc/keys");
    list_dir("list /sys/firmware", "/sys/firmware");
    return 0;
}
