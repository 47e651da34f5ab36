"""Adapters: the edges where wgfleet touches processes, SSH, Ansible, databases and the kernel."""
