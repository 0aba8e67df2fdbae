"""The ``monai-unet`` command line."""
