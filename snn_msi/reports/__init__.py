"""Reports above the library: the energy report of a checkpoint, the inverse-effectiveness study."""
