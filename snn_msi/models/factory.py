"""Build an audio-visual network by recipe name, from a :class:`~snn_msi.models.avnet.ModelConfig` or from keyword
overrides of the defaults: above both the network (:mod:`.avnet`) and the recipes (:mod:`.recipe`), which need
only the network's config."""

from __future__ import annotations

from .avnet import AVNet, ModelConfig
from .recipe import get_recipe

#: the channel counts :func:`build` assumes when neither the config nor the call gives them: a spectrogram, RGB
DEFAULT_CHANNELS = {"audio_channels": 1, "visual_channels": 3}


def build(config: str | ModelConfig | dict | None = None, **overrides) -> AVNet:
    """Build an :class:`AVNet` from a recipe name, a :class:`ModelConfig`, a dict, or keyword overrides of the
    defaults (the paper's network).

    ``build("small", num_classes=3)`` is the small recipe (``snn_msi.models.recipe``) for three classes;
    ``build(neuron="relu", num_classes=10)`` is the ANN control of the paper's architecture. Channel counts
    left open are :data:`DEFAULT_CHANNELS` (1 for the spectrogram, 3 for RGB frames); the class count has no
    default.
    """
    if isinstance(config, str):
        config = get_recipe(config).model_config()
    elif config is None:
        config = ModelConfig()
    elif isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    defaults = {k: v for k, v in DEFAULT_CHANNELS.items() if getattr(config, k) is None and k not in overrides}
    if overrides or defaults:
        config = config.replace(**defaults, **overrides)
    return AVNet(config)
