"""Medical images (`pip install 'srkit[medical]'`: pydicom, nibabel): DICOM files and series folders, NIfTI
volumes. `upscale_file` sends a DICOM file or folder to `srkit.domains.dicom` (needs pydicom only) and a NIfTI
volume to `srkit.domains.nifti` (needs nibabel only); see those modules for what is kept and how.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from srkit.domains import sniff

if TYPE_CHECKING:
    from srkit.domains import DomainOptions
    from srkit.infer.engine import Request
    from srkit.infer.upscaler import Upscaler

__all__ = ["upscale_file"]


def upscale_file(src: Path, dst: Path, up: Upscaler, request: Request, options: DomainOptions) -> Path:
    """Upscale a DICOM file, a DICOM series folder (-> a folder of files) or a NIfTI volume into `dst`."""
    src, dst = Path(src), Path(dst)
    if sniff.is_dicom(src):
        from srkit.domains.dicom import upscale_dicom

        return upscale_dicom(src, dst, up, request, options)
    from srkit.domains.nifti import upscale_nifti

    return upscale_nifti(src, dst, up, request, options)
