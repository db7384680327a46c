"""snn-msi: spiking multisensory learning with inverse-effectiveness driven multimodal fusion (IEMF)."""

__version__ = "0.1.0"
