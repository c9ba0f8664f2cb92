"""HTTP control plane (FastAPI). Calls `recorder.service.RecorderService`, nothing else."""
