"""Quality metrics (L1, PSNR, SSIM, LPIPS, FID) and model comparison tables."""
from .quality import Evaluator, evaluate, l1, psnr_per_image, ssim_per_image

__all__ = ["Evaluator", "evaluate", "l1", "psnr_per_image", "ssim_per_image"]
