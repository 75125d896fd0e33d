"""Pure array/tensor operations: colour conversion and MATLAB-exact resizing."""

from srkit.ops.color import rgb_to_ycbcr, ycbcr_to_rgb
from srkit.ops.resize import MatlabResize, imresize_matlab, resize_kernel_names

__all__ = ["MatlabResize", "imresize_matlab", "resize_kernel_names", "rgb_to_ycbcr", "ycbcr_to_rgb"]
