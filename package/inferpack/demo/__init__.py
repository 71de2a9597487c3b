"""The embedded demo models and the synthetic shapes images they were trained on."""
