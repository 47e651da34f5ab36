"""The lab fleet on one machine: rootfs, network namespaces, nspawn nodes, VPN clients."""
