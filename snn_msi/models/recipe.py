"""Model recipes by name, as timm's model names: ``build("small", num_classes=3)``, ``snn-msi train --model small``.

A recipe is a YAML file in ``snn_msi/models/recipes/`` (its name is the file's stem): a partial run
configuration (the form of a run's ``config.yaml``) with a one-line ``description``::

    description: one line (what ``snn-msi recipes`` prints)
    model: {widths: [16, 32], blocks: [1, 1]}       # ModelConfig keys; missing ones: the defaults (the paper's)
    epochs: 8                                       # any other key of a run's config: the schedule, input size,
    data: {image_size: 64}                          # ... this architecture trains with

``model`` is the architecture (what :func:`snn_msi.models.build` builds); the other keys are the settings of the
rest of a run that belong with that architecture (the training layer checks and applies them; the command line
still overrides them). A full run config (a ``config.yaml``, a paper's recipe) is a recipe too. Class and channel
counts a recipe leaves out come from the data.

Shipped: ``paper`` (the IEMF paper's network and schedule), ``small`` (a network that trains on a CPU, with a
schedule for small data sets) and ``demo`` (the digits-av demo, ``--demo``). :func:`register_recipe` adds one
from any YAML file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from neurons.registry import Registry

from ..schema import ConfigError, load_yaml
from .avnet import ModelConfig

__all__ = ["RECIPES", "Recipe", "RECIPE_DIR", "register_recipe", "get_recipe"]

#: the shipped recipes
RECIPE_DIR = Path(__file__).with_name("recipes")
RECIPES = Registry("model recipe")


@dataclass(frozen=True)
class Recipe:
    """One recipe: ``model`` (ModelConfig keys) and ``train`` (the other keys of a run's config), plain values.

    Calling it returns its :class:`ModelConfig` with ``overrides`` on top: ``RECIPES.create("small",
    num_classes=3)``.
    """

    name: str
    description: str
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    source: str = ""

    def __call__(self, **overrides) -> ModelConfig:
        return ModelConfig.from_dict({**self.model, **overrides}, f"recipe {self.name}: model")

    def model_config(self, **overrides) -> ModelConfig:
        """The recipe's :class:`ModelConfig` (``overrides``: ModelConfig keys)."""
        return self(**overrides)

    @property
    def dataset(self) -> str | None:
        """The data set the recipe is bound to (its ``data.dataset``), if any."""
        return (self.train.get("data") or {}).get("dataset")


def _parse(name: str, d: dict, source: str) -> Recipe:
    if not isinstance(d.get("model") or {}, dict):
        raise ConfigError(f"recipe {source}: model must be a mapping, got {type(d['model']).__name__}")
    train = {k: v for k, v in d.items() if k not in ("description", "model")}
    recipe = Recipe(name, str(d.get("description", "")), dict(d.get("model") or {}), train, source)
    recipe()  # its model part is checked when it is registered; the rest when a run applies it
    return recipe


def register_recipe(path: str | Path, name: str | None = None) -> Recipe:
    """Register the recipe in the YAML file ``path`` under ``name`` (default: the file's stem)."""
    path = Path(path)
    recipe = _parse(name or path.stem, load_yaml(path), str(path))
    RECIPES.register(recipe.name, recipe, description=recipe.description)
    return recipe


def get_recipe(name_or_path: str) -> Recipe:
    """A registered recipe by name, or the recipe in a YAML file (a path ending in ``.yaml`` / ``.yml``)."""
    if str(name_or_path).endswith((".yaml", ".yml")):
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"recipe file {path} does not exist")
        return _parse(path.stem, load_yaml(path), str(path))
    return RECIPES.get(name_or_path).factory


for _path in sorted(RECIPE_DIR.glob("*.yaml")):
    register_recipe(_path)
