"""ganfit: GAN fitting for high-fidelity 3D face reconstruction (Gecer et al., CVPR 2019)."""

from __future__ import annotations

__version__ = "0.1.0"
