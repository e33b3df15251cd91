#!/bin/bash
# Builds hutch_VERSION_ARCH.deb for Debian 12, Ubuntu 22.04 and later (glibc 2.34+):
# hutch and fuse-overlay in /usr/bin, a man page per command, bash, zsh
# and fish completions, and the runtime packages as dependencies.
#
#   packaging/deb.sh                          a release build, into target/deb/
#   packaging/deb.sh --bin-dir DIR --out DIR  binaries already built (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=target/release out=target/deb
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: packaging/deb.sh [--bin-dir DIR] [--out DIR]" >&2; exit 2 ;;
  esac
done
if [ "$bin_dir" = target/release ]; then
  cargo build --release --locked -q --workspace --bins
fi
hutch=$bin_dir/hutch
version=$("$hutch" version --format '{{.Version}}')
arch=$(dpkg --print-architecture)
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$hutch" "$root/usr/bin/hutch"
install -D -m 0755 "$bin_dir/fuse-overlay" "$root/usr/bin/fuse-overlay"
"$hutch" man --output "$root/usr/share/man/man1"
gzip -9n "$root"/usr/share/man/man1/*.1
install -d "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d"
"$hutch" completion bash > "$root/usr/share/bash-completion/completions/hutch"
"$hutch" completion zsh > "$root/usr/share/zsh/vendor-completions/_hutch"
"$hutch" completion fish > "$root/usr/share/fish/vendor_completions.d/hutch.fish"
install -D -m 0644 README.md "$root/usr/share/doc/hutch/README.md"
install -d "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: hutch
Version: $version
Architecture: $arch
Maintainer: hutch developers <hutch@localhost>
Depends: libc6 (>= 2.34), libgcc-s1, libseccomp2, uidmap, fuse3, passt | slirp4netns
Recommends: passt, slirp4netns
Section: admin
Priority: optional
Description: rootless containers with Docker's verbs, no daemon and no root
 hutch runs OCI images and root directories in user namespaces, with
 copy-on-write roots through its own FUSE overlay, user-mode networking
 (pasta, slirp4netns) and cgroup v2 limits where delegated.
CONTROL
mkdir -p "$out"
deb="$out/hutch_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
