"""How a trial used its machine, in its MLflow run.

- MLflow's own system-metrics monitor (`system/cpu_utilization_percentage`,
  `system/system_memory_usage_megabytes`, `system/gpu_*` through nvidia-ml-py): machine-wide
  figures, sampled every `interval_s` seconds in a thread of the trial's process.
- Our `system/trial_peak_rss_megabytes`: the peak resident memory of the trial's own process since
  the trial started (the kernel's own peak on Linux, else sampled every second), logged with every
  iteration. Machine-wide memory cannot say which of several trials on a node used it; this can.
  (RLlib's EnvRunner actors are processes of their own and are not included.) With CUDA,
  `system/trial_peak_gpu_megabytes` is torch's peak allocated GPU memory of the trial.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

PEAK_RSS = "system/trial_peak_rss_megabytes"
PEAK_GPU = "system/trial_peak_gpu_megabytes"
MB = 1024 * 1024


class PeakMemory:
    """The peak RSS of this process since the trial started.

    On Linux the kernel keeps it exactly (VmHWM in /proc/self/status) and resets it when "5" is written
    to /proc/self/clear_refs: no thread, no sampling, and a spike between two samples is not missed.
    Elsewhere (or where clear_refs cannot be written) a daemon thread samples the RSS every `every_s`."""

    STATUS, CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")

    def __init__(self, every_s: float = 1.0):
        self._stop = threading.Event()
        self.kernel = self._reset_kernel_peak()
        if not self.kernel:
            import psutil

            self.process = psutil.Process()
            self.every_s = every_s
            self.peak = self.process.memory_info().rss
            threading.Thread(target=self._sample, daemon=True, name="PeakMemory").start()
        self._reset_gpu()

    def _reset_kernel_peak(self) -> bool:
        try:
            self.CLEAR_REFS.write_text("5")
            return self._kernel_peak() is not None
        except OSError:
            return False

    def _kernel_peak(self) -> int | None:
        """VmHWM in bytes."""
        for line in self.STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return None

    def _sample(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, self.process.memory_info().rss)

    @staticmethod
    def _reset_gpu() -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def peak_bytes(self) -> int:
        if self.kernel:
            return self._kernel_peak()
        self.peak = max(self.peak, self.process.memory_info().rss)
        return self.peak

    def metrics(self) -> dict[str, float]:
        import torch

        out = {PEAK_RSS: self.peak_bytes() / MB}
        if torch.cuda.is_available():
            out[PEAK_GPU] = torch.cuda.max_memory_allocated() / MB
        return out

    def stop(self) -> None:
        self._stop.set()


class SystemMetrics:
    """MLflow's monitor plus the trial's peak memory, started and stopped with the trial's run."""

    def __init__(self, run_id: str, tracking_uri: str, interval_s: float, resumed: bool):
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        # MLflow announces each start and stop at INFO, twice per trial: keep the console to Tune's table
        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)
        self.monitor = SystemMetricsMonitor(run_id, sampling_interval=interval_s, resume_logging=resumed,
                                            tracking_uri=tracking_uri)
        self.monitor.start()
        self.memory = PeakMemory()

    def metrics(self) -> dict[str, float]:
        return self.memory.metrics()

    def stop(self) -> None:
        """Stop both, after one last machine sample: MLflow's monitor logs a sample only after a full
        interval, and a trial shorter than that would otherwise have none."""
        self.memory.stop()
        self.monitor.finish()
        self.monitor.collect_metrics()
        self.monitor.publish_metrics(self.monitor.aggregate_metrics())
        self.monitor.mlflow_logger.flush()
