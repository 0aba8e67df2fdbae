"""``python -m monai_unet ...``: the same commands as ``monai-unet ...``."""

from monai_unet.cli.main import main

if __name__ == "__main__":
    main()
