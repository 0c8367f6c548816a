#!/bin/sh
# mmdebstrap customize hook of the offline lab's component images: $1 is
# the rootfs. The harness sets (see harness/labs/src/kind/image.rs):
#   COMPONENT_BIN  kube-apiserver, kube-controller-manager, kube-scheduler,
#                  kube-proxy, etcd, coredns, argocd, helm, pause
#   ARGOCD_SRC     the Argo CD Go module of the same version (its image's
#                  scripts: entrypoint.sh, hack/gpg-wrapper.sh,
#                  hack/git-verify-wrapper.sh)
set -eu
root="$1"

for b in kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd argocd helm; do
  install -m 0755 "$COMPONENT_BIN/$b" "$root/usr/local/bin/$b"
done
# The paths the official images use as entrypoints.
install -m 0755 "$COMPONENT_BIN/coredns" "$root/coredns"
install -m 0755 "$COMPONENT_BIN/pause" "$root/pause"

# Argo CD's image: user 999, its home, the component names of the one
# multi-call binary, and the config folders its Dockerfile makes.
chroot "$root" groupadd -g 999 argocd
chroot "$root" useradd -r -u 999 -g argocd -d /home/argocd argocd
mkdir -p "$root/home/argocd" "$root/app/config/ssh" "$root/app/config/tls" \
         "$root/app/config/gpg/source" "$root/app/config/gpg/keys"
chroot "$root" chown argocd:0 /home/argocd
chmod g=u "$root/home/argocd"
chroot "$root" chown argocd /app/config/gpg/keys
chmod 0700 "$root/app/config/gpg/keys"
touch "$root/app/config/ssh/ssh_known_hosts"
mkdir -p "$root/etc/ssh"
ln -sf /app/config/ssh/ssh_known_hosts "$root/etc/ssh/ssh_known_hosts"
# The scripts Argo CD's Dockerfile copies (the repo-server runs
# gpg-wrapper.sh at start-up).
install -m 0755 "$ARGOCD_SRC/entrypoint.sh" "$root/usr/local/bin/entrypoint.sh"
install -m 0755 "$ARGOCD_SRC/hack/gpg-wrapper.sh" "$root/usr/local/bin/gpg-wrapper.sh"
install -m 0755 "$ARGOCD_SRC/hack/git-verify-wrapper.sh" "$root/usr/local/bin/git-verify-wrapper.sh"
ln -sf /usr/local/bin/entrypoint.sh "$root/usr/local/bin/uid_entrypoint.sh"
for c in server repo-server cmp-server application-controller dex notifications \
         applicationset-controller k8s-auth commit-server; do
  ln -sf /usr/local/bin/argocd "$root/usr/local/bin/argocd-$c"
done

rm -rf "$root"/tmp/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
