"""OCI hook that makes multi-homed podman containers work with strict rp_filter."""
