"""Training-set layout (written by `blendfix synth`) and the Dataset that reads it."""
