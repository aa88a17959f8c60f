"""The challenge's starting kit, re-created: data, models, training, the baseline and the simple attack."""
