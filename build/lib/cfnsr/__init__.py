"""cfnsr: a config-driven framework for audio-visual emotion recognition (CFN-SR and its baselines)."""

__version__ = "0.1.0"
