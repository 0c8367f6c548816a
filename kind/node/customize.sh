#!/bin/sh
# mmdebstrap customize hook of the offline KIND node image: $1 is the
# rootfs. The harness sets (see harness/labs/src/kind/image.rs):
#   KIND_BASE_FILES   kind's images/base/files from the kind Go module
#   NODE_BIN          kubelet, kubeadm, kubectl, crictl built from Go modules
#   RECIPE            this folder
#   KUBERNETES_VERSION, MIRROR (the lab registry as nodes reach it)
#   MIRRORED          registries whose images the lab registry serves
set -eu
root="$1"

# kind's base files, with kind's modes (scripts 0755, the rest 0644).
cp -a "$KIND_BASE_FILES/." "$root/"
find "$root/kind" "$root/etc/systemd/system" "$root/etc/sysctl.d" "$root/etc/default" \
     "$root/etc/crictl.yaml" "$root/LICENSES" -type f -exec chmod 0644 {} +
chmod 0755 "$root/kind/bin" "$root"/kind/bin/* "$root/usr/local/bin/entrypoint" "$root/usr/local/bin/clean-install"
rm -f "$root/etc/systemd/system/containerd-fuse-overlayfs.service"
install -m 0644 "$RECIPE/containerd-config.toml" "$root/etc/containerd/config.toml"
# kind's unit starts /usr/local/bin/containerd; Debian installs /usr/bin.
ln -sf /usr/bin/containerd "$root/usr/local/bin/containerd"

# The same systemd trimming as kind's base image.
find "$root/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
rm -f "$root"/lib/systemd/system/multi-user.target.wants/* \
      "$root"/etc/systemd/system/*.wants/* \
      "$root"/lib/systemd/system/local-fs.target.wants/* \
      "$root"/lib/systemd/system/sockets.target.wants/*udev* \
      "$root"/lib/systemd/system/sockets.target.wants/*initctl* \
      "$root"/lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> "$root/etc/systemd/journald.conf"
chroot "$root" systemctl enable kubelet.service containerd.service undo-mount-hacks.service
chroot "$root" systemctl mask systemd-binfmt.service
mkdir -p "$root/etc/kubernetes/manifests" "$root/etc/cni/net.d" "$root/opt/cni"
ln -sfn /usr/lib/cni "$root/opt/cni/bin"

# Kubernetes' node binaries and crictl.
for b in kubelet kubeadm kubectl; do install -m 0755 "$NODE_BIN/$b" "$root/usr/bin/$b"; done
install -m 0755 "$NODE_BIN/crictl" "$root/usr/local/bin/crictl"
printf '%s' "$KUBERNETES_VERSION" > "$root/kind/version"

# The runtime spec containerd starts containers from, as kind makes it:
# `ctr oci spec` without rlimits (the node's limits apply).
chroot "$root" ctr oci spec | jq 'del(.process.rlimits)' > "$root/etc/containerd/cri-base.json"

# Every image the cluster pulls comes from the lab registry.
for host in $MIRRORED; do
  mkdir -p "$root/etc/containerd/certs.d/$host"
  cat > "$root/etc/containerd/certs.d/$host/hosts.toml" <<TOML
# The offline KIND lab: $host images are served by the lab registry.
server = "https://$host"
[host."http://$MIRROR"]
  capabilities = ["pull", "resolve"]
TOML
done

# What podman's --tmpfs would copy up, and what a node must not share.
rm -rf "$root"/tmp/* "$root"/run/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
: > "$root/etc/machine-id"
