"""GPU telemetry sources: NVML, nvidia-smi, dcgm-exporter/Prometheus, sample files, and the
agent that samples them into the spool."""
