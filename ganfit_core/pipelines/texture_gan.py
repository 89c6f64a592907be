"""The ``texture_gan`` asset builder: photos -> cleaned UV data set -> the documented GAN training run.

The builder runs the same steps as the documented commands::

    python -m ganfit_core.pipelines.uv_extract --source ../shared/london-faces --out weights/texture_data
    python -m ganfit_core.texture train --data weights/texture_data --out weights/texture_gan_run \
        --config full

so it takes the extraction's few minutes plus the ``full`` training run (about 40 minutes on one
free CPU core; the run is seeded on the CPU). The extracted data set is reused when
``<weights>/texture_data/uv_textures.safetensors`` exists in the current format (skin-only maps,
format 2; built by the first command from the same photos), and an interrupted build resumes from
``<weights>/texture_gan_run``.
Seeded and single-threaded: the same machine gives the same bytes; a file built elsewhere may
differ in its last bits (float reductions), which is why the asset is not pinned.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["build_texture_gan", "DATA_FOLDER", "DATA_FORMAT", "RUN_FOLDER"]

DATA_FOLDER = "texture_data"
RUN_FOLDER = "texture_gan_run"
#: The UV data set format the prior is trained on (2: skin-only maps, see ganfit_core.texture.dataset).
DATA_FORMAT = 2


def build_texture_gan(source_dir: Path, out_path: Path) -> None:
    """Asset builder for ``texture_gan`` (``fn(source_dir, out_path)``; see the module docstring)."""
    from ganfit_core.assets import weights_dir
    from ganfit_core.texture.dataset import DATASET_FILENAME, load_uv_dataset, save_uv_dataset
    from ganfit_core.texture.train import CONFIGS, TrainProgress, train_gan

    data_file = weights_dir() / DATA_FOLDER / DATASET_FILENAME
    data = load_uv_dataset(data_file) if data_file.is_file() else None
    if data is not None and data.info.get("format") == DATA_FORMAT:
        logger.info("texture_gan: training on the extracted data set %s", data_file)
    else:
        from ganfit_core.pipelines.uv_extract import extract_dataset

        logger.info("texture_gan: extracting the UV data set from %s (a few minutes)", source_dir)
        data = extract_dataset(Path(source_dir))
        data_file.parent.mkdir(parents=True, exist_ok=True)
        save_uv_dataset(data, data_file)
    config = CONFIGS["full"]

    def report(p: TrainProgress) -> None:
        if p.step % 250 == 0:
            logger.info("texture_gan: step %d/%d (%.0f s)", p.step, config.steps, p.elapsed_s)

    run = weights_dir() / RUN_FOLDER
    logger.info("texture_gan: training the 'full' config, %d steps, in %s (resumable)", config.steps, run)
    prior = train_gan(data, run, config, resume=True, progress=report)
    shutil.copyfile(prior, out_path)
